//! Sign-in by code, anonymous accounts, and binding an address this account just verified
//! (`signInWithOtp`/`verifyOtp`, `signInAnonymously`, `updateUser({email | phone})`).

use std::net::IpAddr;

use crate::crypto::Scope;
use crate::domain::{Address, LoginKey, SecretToken, User};
use crate::error::{AuthError, AuthResult};
use crate::ports::{AccountChange, Spend};

use super::accounts::LoginName;
use super::changes::recently_authenticated;
use super::{credentials, new_session, purpose, App, ClientCount, Credentials, Principal};

fn token_refused() -> AuthError {
    AuthError::PermissionDenied("the verification_token is invalid, used or expired")
}

/// Signs in the account that holds the address a verification token proves. `claimed` is the
/// `username` the SDK sends beside the token: `None` when it sent none (`""`, or `"+86 "` for
/// a phone user: "the token says who"), else it must name exactly the token's address.
pub async fn sign_in_with_code(
    app: &App,
    claimed: Option<LoginName>,
    verification_token: SecretToken,
    client_ip: Option<IpAddr>,
    issuer: &str,
) -> AuthResult<Credentials> {
    let now = app.clock.now();
    // Counted with the failed password sign-ins of the client, and given back on success: a
    // token already proves a code, so only refusals (probing tokens or addresses) count.
    let per_client = app.settings.signin_failures_per_ip_per_hour;
    let hash = app
        .secrets
        .token(purpose::VERIFICATION_TOKEN, &verification_token);
    let (by_client, stored) = tokio::join!(
        ClientCount::take(app, "signin-failures-ip", client_ip, per_client, now),
        app.store.verification_token(&hash),
    );
    let by_client = by_client?;
    let signed_in = async {
        let stored = stored?
            .filter(|token| !token.used && token.expires_at > now)
            .ok_or_else(token_refused)?;
        match claimed {
            Some(LoginName(LoginKey::Address(address))) if address == stored.address => {}
            None => {}
            Some(_) => {
                return Err(AuthError::PermissionDenied(
                    "the verification_token is for another address than username",
                ))
            }
        }
        let key = LoginKey::Address(stored.address.clone());
        let holder = app.store.login(&key).await?.ok_or(AuthError::NotFound(
            "no account has this address; sign up with the verification_token instead",
        ))?;
        let (session, secret) = new_session(app, &holder.user_id, holder.session_epoch, now);
        let session_id = session.id.clone();
        // The token is spent in the same step as the session is stored, and only while the
        // address still signs in to that account.
        if !app
            .store
            .exchange_for_session(
                &Spend::Verification {
                    hash,
                    address: stored.address.clone(),
                },
                &key,
                now,
                &session,
            )
            .await?
        {
            return Err(token_refused());
        }
        tracing::info!(
            user = holder.user_id.as_str(),
            to = %stored.address.masked(),
            "signed in by code"
        );
        credentials(
            app,
            issuer,
            &holder.user_id,
            session_id,
            secret,
            Scope::User,
            now,
        )
    }
    .await;
    if signed_in.is_ok() {
        by_client.give_back(app).await;
    }
    signed_in
}

/// Creates an account with nothing to sign in with again, and its first session, in one
/// step. It counts against the client's sign-ups, and ends after
/// `AUTH_ANONYMOUS_ACCOUNT_TTL_SECS` unless it binds an address first.
pub async fn sign_in_anonymously(
    app: &App,
    client_ip: Option<IpAddr>,
    issuer: &str,
) -> AuthResult<Credentials> {
    let now = app.clock.now();
    let per_client = app.settings.signups_per_ip_per_hour;
    ClientCount::take(app, "signup-ip", client_ip, per_client, now).await?;
    let user = User {
        expires_at: Some(now + app.settings.anonymous_account_ttl_secs),
        ..User::new(now)
    };
    let (session, secret) = new_session(app, &user.id, user.session_epoch, now);
    let session_id = session.id.clone();
    let change = AccountChange {
        before: None,
        after: user,
        sudo: None,
        spend: None,
        session: Some(session),
        keep_session: None,
        now,
        username_held_until: now + app.settings.username_hold_secs,
    };
    if let Err(rejected) = app.store.apply(&change).await? {
        return Err(AuthError::Internal(format!(
            "creating an anonymous account was rejected: {rejected:?}"
        )));
    }
    tracing::info!(user = change.after.id.as_str(), "anonymous account created");
    credentials(
        app,
        issuer,
        &change.after.id,
        session_id,
        secret,
        Scope::Anonymous,
        now,
    )
}

/// The proof that binds an email or phone number without a token (`updateUser({email})`
/// sends the address alone): the memory that this account verified a code for exactly that
/// address moments before, spent in the same transaction as the bind (see
/// `profile::edit_profile`); without one the bind is refused there.
///
/// No sudo token: an anonymous account cannot get one, and the SDK sends none. The verified
/// code proves the address; the bearer proves the session, and the memory is this account's
/// alone (recorded only for a code the same account asked for while signed in). An account
/// that already has a way to sign in must also have signed in (or passed sudo) recently, as
/// for binding a provider, so that a stolen access token alone cannot swap in the thief's
/// address; an anonymous account has nothing such a token does not already hold.
pub fn verified_address_proof(
    app: &App,
    principal: &Principal,
    address: &Address,
) -> AuthResult<Spend> {
    if !principal.user.login_keys().is_empty() {
        recently_authenticated(app, principal)?;
    }
    Ok(Spend::VerifiedAddress {
        user_id: principal.user.id.clone(),
        address: address.clone(),
    })
}
