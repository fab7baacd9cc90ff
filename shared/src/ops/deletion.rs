//! Deleting an account.

use crate::domain::{Address, SecretToken, User};
use crate::error::{AuthError, AuthResult};
use crate::ports::{AccountDeletion, ChangeRejected, SudoCheck};

use super::messages::notify;
use super::{purpose, App, Principal};

/// Deletes the caller's account with a live sudo token of this session: the account and every
/// login key in one atomic step, so that its username, addresses and provider identities are
/// free for another account at once. The account's sessions end with it (every signed-in call
/// and every refresh needs the account). Its addresses are told afterwards.
pub async fn delete_account(
    app: &App,
    principal: &Principal,
    sudo_token: &SecretToken,
) -> AuthResult<()> {
    let sudo = SudoCheck {
        hash: app.secrets.token(purpose::SUDO, sudo_token),
        user_id: principal.user.id.clone(),
        session_id: principal.session.id.clone(),
    };
    // A change between the read and the deletion (an address bound meanwhile) makes the
    // deletion stale: read again once, so that the keys it releases are the current ones.
    const ATTEMPTS: usize = 2;
    let mut user = principal.user.clone();
    for _ in 0..ATTEMPTS {
        let deletion = AccountDeletion {
            user,
            sudo: sudo.clone(),
            now: app.clock.now(),
        };
        match app.store.delete_account(&deletion).await? {
            Ok(()) => {
                tracing::info!(user = deletion.user.id.as_str(), "account deleted");
                tell_deleted(app, &deletion.user).await;
                return Ok(());
            }
            Err(ChangeRejected::Sudo) => {
                return Err(AuthError::PermissionDenied(
                    "the sudo_token is invalid, expired or was issued to another session",
                ))
            }
            Err(ChangeRejected::Stale) => {
                user = app
                    .store
                    .user(&principal.user.id)
                    .await?
                    .ok_or(AuthError::Unauthenticated("the account no longer exists"))?;
            }
            Err(rejected) => {
                return Err(AuthError::Internal(format!(
                    "deleting an account was rejected: {rejected:?}"
                )))
            }
        }
    }
    Err(AuthError::Unavailable(
        "the account kept changing under concurrent requests".into(),
    ))
}

/// Best effort, after the deletion: a notice to the email and phone the account had (an SMS
/// counts against the deployment's SMS budget); logs name them masked only.
async fn tell_deleted(app: &App, user: &User) {
    notify(
        app,
        [
            user.email.clone().map(Address::Email),
            user.phone.clone().map(Address::Phone),
        ],
        "Your account was deleted",
        "Your account and every way of signing in to it were deleted. If you did not do this, contact support.",
    )
    .await;
}
