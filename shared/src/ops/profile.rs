//! The profile a user edits about themselves: display name, username, picture and gender.

use crate::domain::{Address, DisplayName, Gender, Picture, User, Username};
use crate::error::{AuthError, AuthResult};

use super::association::{change_account, tell_replaced};
use super::otp::verified_address_proof;
use super::{App, Principal};

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
pub async fn edit_profile(app: &App, principal: &Principal, edit: ProfileEdit) -> AuthResult<()> {
    let spend = match &edit.address {
        Some(address) => Some(verified_address_proof(app, principal, address)?),
        None => None,
    };
    let previous = change_account(app, principal, None, spend, |user| {
        if let Some(name) = &edit.name {
            user.name = name.clone();
        }
        if let Some(username) = &edit.username {
            user.username = Some(username.clone());
        }
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
        Ok(previous)
    })
    .await?;
    tracing::info!(user = principal.user.id.as_str(), "profile edited");
    if let Some(address) = &edit.address {
        tell_replaced(app, previous, address).await;
    }
    Ok(())
}

/// The caller's account as stored now (after an edit: its new version and time).
pub async fn current(app: &App, principal: &Principal) -> AuthResult<User> {
    app.store
        .user(&principal.user.id)
        .await?
        .ok_or(AuthError::Unauthenticated("the account no longer exists"))
}
