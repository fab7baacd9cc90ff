//! The profile a user edits about themselves: display name, username, picture and gender.

use std::net::IpAddr;

use crate::domain::{Address, DisplayName, Gender, Picture, User, Username};
use crate::error::{AuthError, AuthResult};

use super::changes::{change_account, recently_authenticated};
use super::messages::{notify_account, tell_replaced};
use super::otp::verified_address_proof;
use super::{give_back_count, limit_key, within_limit, App, ClientCount, Principal, HOUR};

/// One field of an edit: absent (`None`) leaves it as it is; `Some(None)` clears it.
pub type Edit<T> = Option<Option<T>>;

/// What an edit changes, parsed at the edge.
#[derive(Debug, Default)]
pub struct ProfileEdit {
    pub name: Edit<DisplayName>,
    pub username: Option<Username>,
    pub picture: Edit<Picture>,
    pub gender: Edit<Gender>,
    /// A new sign-in address (`updateUser({email})` / `({phone})`), sent without any proof.
    pub address: Option<Address>,
}

/// Applies the edit as one version-conditional change of the account (read again and retried
/// when another request changed it in between). A new username is reserved in the same change.
///
/// A username is a way to sign in, so taking a new one is guarded like one: an anonymous
/// account gets none (the upgrade of LIFECYCLE.md makes it permanent first), the session
/// must have signed in or passed sudo recently (a stolen access token alone renames nobody),
/// each attempt counts against the account's and the client's hourly attempts whether the
/// name is free or not (no probing which names exist), and the account's email and phone are
/// told. The name given up stays reserved for this account for `AUTH_USERNAME_HOLD_SECS`.
pub async fn edit_profile(
    app: &App,
    principal: &Principal,
    edit: ProfileEdit,
    client_ip: Option<IpAddr>,
) -> AuthResult<()> {
    let rename = edit
        .username
        .as_ref()
        .filter(|name| principal.user.username.as_ref() != Some(*name));
    if rename.is_some() {
        if principal.user.expires_at.is_some() {
            return Err(AuthError::FailedPrecondition(
                "an anonymous account takes no username: bind an email or phone number first (see the upgrade of an anonymous account)",
            ));
        }
        recently_authenticated(app, principal)?;
        count_username_attempt(app, principal, client_ip).await?;
    }
    let spend = match &edit.address {
        Some(address) => Some(verified_address_proof(app, principal, address)?),
        None => None,
    };
    let (previous, renamed_from) = change_account(app, principal, None, spend, |user| {
        if let Some(name) = &edit.name {
            user.name = name.clone();
        }
        let renamed_from = match &edit.username {
            Some(username) if user.username.as_ref() != Some(username) => {
                user.username.replace(username.clone())
            }
            _ => None,
        };
        if let Some(picture) = &edit.picture {
            user.picture = picture.clone();
        }
        if let Some(gender) = edit.gender {
            user.gender = gender;
        }
        let previous = edit.address.as_ref().and_then(|a| user.address(a.kind()));
        match &edit.address {
            Some(Address::Email(email)) => user.email = Some(email.clone()),
            Some(Address::Phone(phone)) => user.phone = Some(phone.clone()),
            None => {}
        }
        Ok((previous, renamed_from))
    })
    .await?;
    tracing::info!(user = principal.user.id.as_str(), "profile edited");
    if let Some(address) = &edit.address {
        tell_replaced(app, previous, address).await;
    }
    if let (Some(old), Some(new)) = (renamed_from, &edit.username) {
        tell_renamed(app, principal, &old, new).await;
    }
    Ok(())
}

/// Tells the account's email and phone (as they were before the edit, in case the same edit
/// replaced one) that its username changed.
async fn tell_renamed(app: &App, principal: &Principal, old: &Username, new: &Username) {
    let days = (app.settings.username_hold_secs + 86_399) / 86_400;
    let body = format!(
        "The username of your account was changed from {} to {}: the old one no longer signs in, and stays reserved for your account for {days} days. If you did not do this, sign in another way, change your password and take the old username back.",
        old.as_str(),
        new.as_str()
    );
    notify_account(app, &principal.user, "Your username was changed", &body).await;
}

/// Counts one attempt to take a username, per account and per client, before the name is
/// looked at: of a burst released together, `AUTH_USERNAME_ATTEMPTS_PER_HOUR` are judged and
/// the rest refused unseen. An attempt one of the two refuses is given back to the other.
async fn count_username_attempt(
    app: &App,
    principal: &Principal,
    client_ip: Option<IpAddr>,
) -> AuthResult<()> {
    let now = app.clock.now();
    let per_hour = app.settings.username_attempts_per_hour;
    let by_account = limit_key(app, "username-attempt-user", principal.user.id.as_str());
    let (account, client) = tokio::join!(
        app.store.count_event(&by_account, per_hour, HOUR, now),
        ClientCount::take(app, "username-attempt-ip", client_ip, per_hour, now),
    );
    let account = account
        .map_err(AuthError::from)
        .and_then(|decision| within_limit(decision, now));
    match (account, client) {
        (Ok(_), Ok(_)) => Ok(()),
        (Ok(_), Err(refused)) => {
            give_back_count(app, &by_account, now).await;
            Err(refused)
        }
        (Err(refused), Ok(client)) => {
            client.give_back(app).await;
            Err(refused)
        }
        (Err(refused), Err(_)) => Err(refused),
    }
}

/// The caller's account as stored now (after an edit: its new version and time).
pub async fn current(app: &App, principal: &Principal) -> AuthResult<User> {
    app.store
        .user(&principal.user.id)
        .await?
        .ok_or(AuthError::Unauthenticated("the account no longer exists"))
}
