//! Changing and resetting a password, and signing out everywhere. Each bumps the account's
//! session epoch, which ends every session and sudo token of the account at once (they record
//! the epoch they were made in); a change keeps the calling session by moving it along.

use crate::domain::{Address, LoginKey, Password, SecretToken, User};
use crate::error::{AuthError, AuthResult};
use crate::ports::{AccountChange, ChangeRejected, Spend, SudoCheck};

use super::accounts::check_password_policy;
use super::changes::taken;
use super::messages::notify;
use super::{limit_key, purpose, within_limit, App, Principal};

/// How long a verification token is held by the reset that uses it: past the SDK's 10 s.
const RESET_LOCK_SECS: i64 = 11;

#[derive(Debug)]
pub struct ChangePassword {
    pub sudo_token: SecretToken,
    pub new_password: Password,
}

/// Sets a new password for a caller who passed sudo in this session; every other session of
/// the account ends, and every sudo token (this one too).
pub async fn change_password(
    app: &App,
    principal: &Principal,
    request: ChangePassword,
) -> AuthResult<()> {
    check_password_policy(app, &request.new_password)?;
    let now = app.clock.now();
    let user = &principal.user;
    let hash = app.secrets.token(purpose::SUDO, &request.sudo_token);
    // One read before the hashing: a wrong sudo token costs no Argon2 work. The transaction
    // checks the token again.
    let live = app.store.sudo_token(&hash).await?.is_some_and(|token| {
        token.expires_at > now
            && token.user_id == user.id
            && token.session_id == principal.session.id
            && token.epoch == user.session_epoch
    });
    if !live {
        return Err(sudo_refused());
    }
    let password_hash = app.passwords.hash(request.new_password).await?;
    let sudo = SudoCheck {
        hash,
        user_id: user.id.clone(),
        session_id: principal.session.id.clone(),
    };
    let changed = end_sessions(
        app,
        user.clone(),
        Some(&password_hash),
        Some(sudo),
        None,
        Some(principal),
    )
    .await?;
    tracing::info!(user = changed.id.as_str(), "password changed");
    tell_of_new_password(app, &changed).await;
    Ok(())
}

#[derive(Debug)]
pub struct ResetPassword {
    pub address: Address,
    pub new_password: Password,
    pub verification_token: SecretToken,
}

/// Sets a new password for the account an address is bound to, with a verification token for
/// exactly that address (spent by it); every session of the account ends.
///
/// A token for another address, or spent, or expired, is `permission_denied` before anything
/// else is looked at. Only a live token for this very address can learn that no account holds
/// it (`not_found`): its holder proved they own the address, and `/verification` with
/// `target: USER` tells anyone that much. A token another reset is using is
/// `resource_exhausted`.
pub async fn reset_password(app: &App, request: ResetPassword) -> AuthResult<()> {
    check_password_policy(app, &request.new_password)?;
    let now = app.clock.now();
    let hash = app
        .secrets
        .token(purpose::VERIFICATION_TOKEN, &request.verification_token);
    let address = request.address;
    let login = LoginKey::Address(address.clone());
    let (stored, holder) =
        tokio::join!(app.store.verification_token(&hash), app.store.login(&login));
    let live = stored?
        .is_some_and(|token| !token.used && token.expires_at > now && token.address == address);
    if !live {
        return Err(token_refused());
    }
    let no_account = || AuthError::NotFound("no account has this address");
    let holder = holder?.ok_or_else(no_account)?;
    let user = app
        .store
        .user(&holder.user_id)
        .await?
        .filter(|user| user.has_address(&address))
        .ok_or_else(no_account)?;
    // One reset per token at a time: a burst sharing a live token hashes one password, not
    // one each, before the first spends it. Not released on failure: a retry waits it out.
    let lock = limit_key(app, "reset-token", &hash.to_hex());
    within_limit(
        app.store
            .acquire_cooldown(&lock, now + RESET_LOCK_SECS, now)
            .await?,
        now,
    )?;
    let password_hash = app.passwords.hash(request.new_password).await?;
    let spend = Spend::Verification { hash, address };
    let changed = end_sessions(app, user, Some(&password_hash), None, Some(spend), None).await?;
    tracing::info!(user = changed.id.as_str(), "password reset");
    tell_of_new_password(app, &changed).await;
    Ok(())
}

/// Ends every session of the caller's account, the caller's own included.
pub async fn revoke_all(app: &App, principal: &Principal) -> AuthResult<()> {
    let changed = end_sessions(app, principal.user.clone(), None, None, None, None).await?;
    tracing::info!(user = changed.id.as_str(), "every session ended");
    Ok(())
}

fn sudo_refused() -> AuthError {
    AuthError::PermissionDenied(
        "the sudo_token is missing, invalid, expired, ended or was issued to another session",
    )
}

fn token_refused() -> AuthError {
    AuthError::PermissionDenied(
        "the verification_token is invalid, used, expired or for another address",
    )
}

/// Moves the account to a new session epoch in one atomic change, with the new password hash
/// (which the login keys repeat) when one is given, checking `sudo` and spending `spend`;
/// `keep`'s session moves to the new epoch with it. Rereads the account and tries again when
/// another request changed it in between. Answers the account as changed.
async fn end_sessions(
    app: &App,
    mut before: User,
    password_hash: Option<&str>,
    sudo: Option<SudoCheck>,
    spend: Option<Spend>,
    keep: Option<&Principal>,
) -> AuthResult<User> {
    const ATTEMPTS: usize = 3;
    for _ in 0..ATTEMPTS {
        let now = app.clock.now();
        let mut after = before.clone();
        if let Some(hash) = password_hash {
            after.password_hash = Some(hash.to_string());
        }
        after.session_epoch = before.session_epoch + 1;
        after.version = before.version + 1;
        after.updated_at = now;
        let change = AccountChange {
            before: Some(before),
            after,
            sudo: sudo.clone(),
            spend: spend.clone(),
            session: None,
            keep_session: keep.map(|principal| principal.session.id.clone()),
            now,
            username_held_until: now + app.settings.username_hold_secs,
        };
        let outcome = app.store.apply(&change).await?;
        match outcome {
            Ok(()) => return Ok(change.after),
            Err(ChangeRejected::Sudo) => return Err(sudo_refused()),
            Err(ChangeRejected::Token) => return Err(token_refused()),
            Err(ChangeRejected::Taken(key)) => return Err(taken(&key)),
            Err(ChangeRejected::Stale) => {
                let user_id = &change.after.id;
                let reread = app
                    .store
                    .user(user_id)
                    .await?
                    .ok_or(AuthError::Unauthenticated("the account no longer exists"))?;
                // The caller's session ended meanwhile (another change moved the epoch).
                if keep.is_some_and(|principal| principal.session.epoch != reread.session_epoch) {
                    return Err(AuthError::Unauthenticated(
                        "the session has ended; sign in again",
                    ));
                }
                // The address the reset is for moved to another account meanwhile.
                if let Some(Spend::Verification { address, .. }) = &spend {
                    if !reread.has_address(address) {
                        return Err(token_refused());
                    }
                }
                before = reread;
            }
        }
    }
    Err(AuthError::Unavailable(
        "the account kept changing under concurrent requests".into(),
    ))
}

/// Tells the account's addresses that its password changed: the owner learns of a change they
/// did not make while the addresses are still theirs.
async fn tell_of_new_password(app: &App, user: &User) {
    let body = "The password of your account was changed, and the devices signed in with the old one were signed out. If you did not do this, reset your password now and contact support.";
    notify(
        app,
        [
            user.email.clone().map(Address::Email),
            user.phone.clone().map(Address::Phone),
        ],
        "Your password was changed",
        body,
    )
    .await;
}
