//! The operations: each takes typed input and the ports (through `App`) and answers typed
//! output or an `AuthError`. Nothing here knows HTTP, JSON or which adapters run.

pub mod accounts;
pub mod association;
pub mod providers;

use std::sync::Arc;

use crate::config::Settings;
use crate::crypto::{AccessClaims, AccessTokens, PasswordHasher};
use crate::domain::{
    InvalidInput, SecretHasher, SecretToken, Session, SessionId, UnixTime, User, UserId,
};
use crate::error::{AuthError, AuthResult};
use crate::ports::{Clock, Delivery, IdentityProvider, Store};

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

/// A caller whose bearer access token is genuine and unexpired, before its session and account
/// are read: an operation with reads of its own runs them concurrently with `principal`, so
/// that authenticating costs no round trip of its own.
pub struct Caller {
    claims: AccessClaims,
}

impl Caller {
    pub fn from_access_token(app: &App, access_token: &str) -> AuthResult<Self> {
        let claims = app.access_tokens.verify(access_token, app.clock.now())?;
        Ok(Self { claims })
    }

    /// The account the token names (not yet checked against a live session).
    pub fn user_id(&self) -> &UserId {
        &self.claims.user_id
    }

    /// Loads the session and account in one store round trip; both must be alive.
    pub async fn principal(&self, app: &App) -> AuthResult<Principal> {
        let now = app.clock.now();
        let claims = &self.claims;
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
    let (session, secret) = new_session(app, user_id, now);
    app.store.create_session(&session).await?;
    credentials(app, user_id, session.id, secret, now)
}

/// A fresh session for `user_id`, and the refresh secret only its holder gets.
pub(crate) fn new_session(app: &App, user_id: &UserId, now: UnixTime) -> (Session, SecretToken) {
    let secret = SecretToken::generate();
    let session = Session {
        id: SessionId::generate(),
        user_id: user_id.clone(),
        refresh_hash: app.secrets.token(purpose::REFRESH, &secret),
        expires_at: now + app.settings.refresh_token_ttl_secs,
        revoked: false,
        created_at: now,
        refreshed_at: now,
    };
    (session, secret)
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
pub(crate) fn within_limit<T>(decision: Result<T, UnixTime>, now: UnixTime) -> AuthResult<T> {
    decision.map_err(|free_at| AuthError::ResourceExhausted {
        retry_after_secs: (free_at - now).max(1),
    })
}

/// Limits per client address, where the client address is known (API Gateway and the local
/// server always know it).
pub(crate) async fn within_ip_limit(
    app: &App,
    kind: &str,
    client_ip: Option<std::net::IpAddr>,
    per_hour: u32,
    now: UnixTime,
) -> AuthResult<()> {
    if let Some(ip) = client_ip {
        let key = limit_key(app, kind, &ip.to_string());
        within_limit(app.store.count_event(&key, per_hour, 3600, now).await?, now)?;
    }
    Ok(())
}

/// Password guessing: a few failures are free, then each further failure locks the name for
/// a delay that doubles (2 s, 4 s, 8 s, ...), up to `AUTH_PASSWORD_MAX_DELAY_SECS`. Failures
/// count per clock hour.
pub(crate) struct PasswordThrottle {
    lock: String,
    failures: String,
}

impl PasswordThrottle {
    /// `subject` names what is guessed at: a sign-in name, or an account for sudo.
    pub(crate) fn new(app: &App, subject: &str) -> Self {
        Self {
            lock: limit_key(app, "password-lock", subject),
            failures: limit_key(app, "password-failures", subject),
        }
    }

    /// Refuses while a delay from earlier failures runs.
    pub(crate) async fn check(&self, app: &App, now: UnixTime) -> AuthResult<()> {
        within_limit(app.store.acquire_cooldown(&self.lock, now, now).await?, now)
    }

    pub(crate) async fn record_failure(&self, app: &App, now: UnixTime) -> AuthResult<()> {
        let settings = &app.settings;
        let failures = app
            .store
            .count_event(&self.failures, u32::MAX, 3600, now)
            .await?
            .unwrap_or(u32::MAX);
        if let Some(beyond) =
            failures.checked_sub(settings.password_free_failures.saturating_add(1))
        {
            // Two seconds at least: with whole-second clocks a one-second lock could end
            // before the next request arrives.
            let delay = 2i64
                .checked_shl(beyond.min(30))
                .unwrap_or(i64::MAX)
                .min(settings.password_max_delay_secs);
            app.store
                .acquire_cooldown(&self.lock, now + delay, now)
                .await?
                .ok();
        }
        Ok(())
    }
}

/// Limit keys carry a hash of the address or account, never the address itself.
pub(crate) fn limit_key(app: &App, kind: &str, subject: &str) -> String {
    format!(
        "{kind}#{}",
        &app.secrets.hash("limit", subject).to_hex()[..32]
    )
}
