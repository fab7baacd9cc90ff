//! What every change of an account shares: the rule of recent authentication, the answer for a
//! login another account holds, and the retried atomic change itself.

use crate::domain::{Address, LoginKey, User};
use crate::error::{AuthError, AuthResult};
use crate::ports::{AccountChange, ChangeRejected, Spend, SudoCheck};

use super::{App, Principal};

/// Binding or unbinding a provider adds or removes a way in, and a new username changes one,
/// with no sudo token (the SDK sends none): so the session itself must have proven who its user
/// is recently, by signing in or by sudo. An access token seen once is not enough.
pub(crate) fn recently_authenticated(app: &App, principal: &Principal) -> AuthResult<()> {
    let now = app.clock.now();
    if principal.session.authenticated_at + app.settings.recent_auth_secs >= now {
        Ok(())
    } else {
        Err(AuthError::PermissionDenied(
            "this change needs a recent sign-in: call auth.sudo() first (or sign in again), then retry",
        ))
    }
}

pub(crate) fn taken(key: &LoginKey) -> AuthError {
    AuthError::AlreadyExists(match key {
        LoginKey::Username(_) => "the username belongs to another account",
        LoginKey::Address(Address::Email(_)) => "the email belongs to another account",
        LoginKey::Address(Address::Phone(_)) => "the phone number belongs to another account",
        LoginKey::Provider(..) | LoginKey::ProviderApp(..) => {
            "the provider identity belongs to another account"
        }
        LoginKey::Custom(_) => "the custom-login uid belongs to another account",
    })
}

/// Applies `edit` to the caller's account as one atomic change, rereading the account and
/// trying again when another request changed it in between.
pub(crate) async fn change_account<T>(
    app: &App,
    principal: &Principal,
    sudo: Option<SudoCheck>,
    spend: Option<Spend>,
    edit: impl Fn(&mut User) -> AuthResult<T>,
) -> AuthResult<T> {
    const ATTEMPTS: usize = 3;
    let mut before = principal.user.clone();
    for _ in 0..ATTEMPTS {
        let now = app.clock.now();
        let mut after = before.clone();
        let outcome = edit(&mut after)?;
        // An account that gains a way to sign in is no longer anonymous: it stops expiring.
        if !after.login_keys().is_empty() {
            after.expires_at = None;
        }
        after.version = before.version + 1;
        after.updated_at = now;
        let change = AccountChange {
            before: Some(before),
            after,
            sudo: sudo.clone(),
            spend: spend.clone(),
            session: None,
            keep_session: None,
            now,
            username_held_until: now + app.settings.username_hold_secs,
        };
        match app.store.apply(&change).await? {
            Ok(()) => return Ok(outcome),
            Err(ChangeRejected::Sudo) => {
                return Err(AuthError::PermissionDenied(
                    "the sudo_token is invalid, expired or was issued to another session",
                ))
            }
            Err(ChangeRejected::Token) => {
                return Err(AuthError::PermissionDenied(match &spend {
                    Some(Spend::Provider { .. }) => {
                        "the provider_token is invalid, used or expired"
                    }
                    Some(Spend::VerifiedAddress { .. }) => {
                        "no code was verified for this address by this account just now"
                    }
                    _ => "the verification_token is invalid, used, expired or for another address",
                }))
            }
            Err(ChangeRejected::Taken(key)) => return Err(taken(&key)),
            Err(ChangeRejected::Stale) => {
                before = app
                    .store
                    .user(&principal.user.id)
                    .await?
                    .ok_or(AuthError::Unauthenticated("the account no longer exists"))?;
            }
        }
    }
    Err(AuthError::Unavailable(
        "the account kept changing under concurrent requests".into(),
    ))
}
