//! Sign-in with a custom-login ticket: the app's backend vouches for its own user id
//! (`createTicket(uid)` of `@cloudbase/node-sdk`), and the page hands the ticket on
//! (`auth.signInWithCustomTicket`). The first ticket for a uid creates its account.

use std::net::IpAddr;

use crate::crypto::tickets::VerifiedTicket;
use crate::crypto::Scope;
use crate::domain::{CustomTicket, LoginKey, SecretToken, Session, UnixTime, User};
use crate::error::{AuthError, AuthResult};
use crate::ports::{AccountChange, ChangeRejected};

use super::{limit_key, new_limited_session, session_credentials, App, ClientCount, Credentials};

/// Verifies the ticket, spends it, and signs in the account of its uid, creating it for the
/// uid's first ticket. A refused ticket counts against the client's
/// `AUTH_SIGNIN_FAILURES_PER_IP_PER_HOUR`, with the failed sign-ins of every other kind.
pub async fn sign_in_with_ticket(
    app: &App,
    ticket: CustomTicket,
    client_ip: Option<IpAddr>,
    issuer: &str,
) -> AuthResult<Credentials> {
    let keys = app
        .custom_login
        .as_ref()
        .ok_or(AuthError::FailedPrecondition(
            "custom login is not configured on this server (AUTH_ENV_ID, AUTH_CUSTOM_LOGIN_KEYS)",
        ))?;
    let now = app.clock.now();
    let per_client = app.settings.signin_failures_per_ip_per_hour;
    let by_client =
        ClientCount::take(app, "signin-failures-ip", client_ip, per_client, now).await?;
    let signed_in = async {
        let verified = keys.verify(&ticket, now)?;
        let spent = Spent::take(app, &verified, now).await?;
        let signed_in = sign_in_as(app, &verified, issuer, now).await;
        if let Err(AuthError::Unavailable(_)) = &signed_in {
            // Nothing was signed in: the ticket may be presented again.
            spent.give_back(app).await;
        }
        signed_in
    }
    .await;
    if signed_in.is_ok() {
        by_client.give_back(app).await;
    }
    signed_in
}

/// The memory that a ticket was presented, kept until it expires: of any number of
/// presentations of one ticket, simultaneous or not, only the one that takes it goes on.
struct Spent {
    key: String,
    until: UnixTime,
}

impl Spent {
    async fn take(app: &App, ticket: &VerifiedTicket, now: UnixTime) -> AuthResult<Self> {
        let spent = Self {
            key: limit_key(app, "custom-ticket", &ticket.fingerprint),
            until: ticket.expires_at,
        };
        match app
            .store
            .acquire_cooldown(&spent.key, spent.until, now)
            .await?
        {
            Ok(()) => Ok(spent),
            Err(_) => {
                tracing::info!(
                    uid = ticket.uid.as_str(),
                    "a spent custom-login ticket was presented again"
                );
                Err(AuthError::InvalidGrant)
            }
        }
    }

    async fn give_back(&self, app: &App) {
        if let Err(err) = app.store.release_cooldown(&self.key, self.until).await {
            tracing::warn!(error = %err, "a custom-login ticket stays spent after a failed sign-in");
        }
    }
}

async fn sign_in_as(
    app: &App,
    ticket: &VerifiedTicket,
    issuer: &str,
    now: UnixTime,
) -> AuthResult<Credentials> {
    let key = LoginKey::Custom(ticket.uid.clone());
    // Twice at most: when two first tickets of one uid race, the loser signs in to the
    // account the winner created.
    for _ in 0..2 {
        if let Some(holder) = app.store.login(&key).await? {
            let (session, secret) = new_limited_session(
                app,
                &holder.user_id,
                holder.session_epoch,
                now,
                ticket.limits,
            );
            app.store.create_session(&session).await?;
            tracing::info!(user = holder.user_id.as_str(), "signed in by custom ticket");
            return issued(app, issuer, &session, secret, now);
        }
        let user = new_account(ticket, now);
        let (session, secret) =
            new_limited_session(app, &user.id, user.session_epoch, now, ticket.limits);
        let change = AccountChange {
            before: None,
            after: user,
            sudo: None,
            spend: None,
            session: Some(session.clone()),
            keep_session: None,
            now,
            username_held_until: now + app.settings.username_hold_secs,
        };
        match app.store.apply(&change).await? {
            Ok(()) => {
                tracing::info!(
                    user = change.after.id.as_str(),
                    "account created by custom ticket"
                );
                return issued(app, issuer, &session, secret, now);
            }
            Err(ChangeRejected::Taken(LoginKey::Custom(_))) => continue,
            Err(rejected) => {
                return Err(AuthError::Internal(format!(
                    "creating a custom-login account was rejected: {rejected:?}"
                )))
            }
        }
    }
    Err(AuthError::Internal(
        "the custom-login uid was taken and then found free again".into(),
    ))
}

fn issued(
    app: &App,
    issuer: &str,
    session: &Session,
    secret: SecretToken,
    now: UnixTime,
) -> AuthResult<Credentials> {
    session_credentials(app, issuer, session, secret, Scope::User, now)
}

fn new_account(ticket: &VerifiedTicket, now: UnixTime) -> User {
    User {
        custom_uid: Some(ticket.uid.clone()),
        ..User::new(now)
    }
}
