//! The operations: each takes typed input and the ports (through `App`) and answers typed
//! output or an `AuthError`. Nothing here knows HTTP, JSON or which adapters run.

pub mod accounts;
pub mod association;
pub mod providers;

use std::sync::Arc;

use crate::config::Settings;
use crate::crypto::{AccessTokens, PasswordHasher};
use crate::domain::{
    InvalidInput, SecretHasher, SecretToken, Session, SessionId, UnixTime, User, UserId,
};
use crate::error::{AuthError, AuthResult};
use crate::ports::{Clock, Delivery, IdentityProvider, LimitDecision, Store};

/// Everything an operation may use: settings, keys and the ports.
pub struct App {
    pub settings: Settings,
    pub store: Arc<dyn Store>,
    pub delivery: Arc<dyn Delivery>,
    pub identity_provider: Arc<dyn IdentityProvider>,
    pub clock: Arc<dyn Clock>,
    pub access_tokens: AccessTokens,
    pub secrets: SecretHasher,
    pub passwords: PasswordHasher,
}

/// Hash domains, so a secret of one kind can never be replayed as another.
pub(crate) mod purpose {
    pub const REFRESH: &str = "refresh-token";
    pub const VERIFICATION_TOKEN: &str = "verification-token";
    pub const SUDO: &str = "sudo-token";
    pub const PROVIDER: &str = "provider-token";
    pub const CODE: &str = "verification-code";
}

/// The signed-in caller: a live session and its account.
#[derive(Clone, Debug)]
pub struct Principal {
    pub user: User,
    pub session: Session,
}

/// Checks a bearer access token and loads its session and account in one store round trip.
pub async fn authenticate(app: &App, access_token: &str) -> AuthResult<Principal> {
    let now = app.clock.now();
    let claims = app.access_tokens.verify(access_token, now)?;
    let (session, user) = app
        .store
        .session_and_user(&claims.session_id, &claims.user_id)
        .await?;
    match (session, user) {
        (Some(session), Some(user))
            if !session.revoked && session.expires_at > now && session.user_id == user.id =>
        {
            Ok(Principal { user, session })
        }
        _ => Err(AuthError::Unauthenticated(
            "the session has ended; sign in again",
        )),
    }
}

/// A refresh token: the session it belongs to and the secret that proves it.
#[derive(Debug)]
pub struct RefreshToken {
    pub session_id: SessionId,
    pub secret: SecretToken,
}

impl RefreshToken {
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let invalid = || InvalidInput::new("refresh_token", "is not a valid refresh token");
        let (session, secret) = raw.trim().split_once('.').ok_or_else(invalid)?;
        Ok(Self {
            session_id: SessionId::parse(session).map_err(|_| invalid())?,
            secret: SecretToken::parse("refresh_token", secret)?,
        })
    }

    pub fn expose(&self) -> String {
        format!("{}.{}", self.session_id.as_str(), self.secret.expose())
    }
}

/// What sign-in, sign-up and refresh answer.
#[derive(Debug)]
pub struct Credentials {
    pub access_token: String,
    pub refresh_token: RefreshToken,
    pub expires_in: i64,
    pub user_id: UserId,
}

pub(crate) async fn start_session(app: &App, user_id: &UserId) -> AuthResult<Credentials> {
    let now = app.clock.now();
    let secret = SecretToken::generate();
    let session = Session {
        id: SessionId::generate(),
        user_id: user_id.clone(),
        refresh_hash: app.secrets.token(purpose::REFRESH, &secret),
        expires_at: now + app.settings.refresh_token_ttl_secs,
        revoked: false,
    };
    app.store.create_session(&session).await?;
    credentials(app, user_id, session.id, secret, now)
}

pub(crate) fn credentials(
    app: &App,
    user_id: &UserId,
    session_id: SessionId,
    secret: SecretToken,
    now: UnixTime,
) -> AuthResult<Credentials> {
    let ttl = app.settings.access_token_ttl_secs;
    Ok(Credentials {
        access_token: app.access_tokens.issue(user_id, &session_id, now, ttl)?,
        refresh_token: RefreshToken { session_id, secret },
        expires_in: ttl,
        user_id: user_id.clone(),
    })
}

/// Turns a limit's answer into `resource_exhausted` with the seconds left to wait.
pub(crate) fn within_limit(decision: LimitDecision, now: UnixTime) -> AuthResult<()> {
    decision.map_err(|free_at| AuthError::ResourceExhausted {
        retry_after_secs: (free_at - now).max(1),
    })
}

/// Limit keys carry a hash of the address or account, never the address itself.
pub(crate) fn limit_key(app: &App, kind: &str, subject: &str) -> String {
    format!(
        "{kind}#{}",
        &app.secrets.hash("limit", subject).to_hex()[..32]
    )
}
