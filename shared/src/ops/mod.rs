//! The operations: each takes typed input and the ports (through `App`) and answers typed
//! output or an `AuthError`. Nothing here knows HTTP, JSON or which adapters run.

pub mod accounts;
pub mod association;
pub(crate) mod changes;
pub mod custom_login;
pub mod deletion;
pub(crate) mod messages;
pub mod otp;
pub mod passwords;
pub mod profile;
pub mod providers;

use std::sync::Arc;

use crate::config::Settings;
use crate::crypto::tickets::CustomLoginKeys;
use crate::crypto::{AccessClaims, AccessTokens, PasswordHasher, Scope};
use crate::domain::{
    ClientNetwork, InvalidInput, SecretHasher, SecretToken, Session, SessionId, SessionLimits,
    UnixTime, User, UserId,
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
    /// The public keys of custom-login tickets; `None` while custom login is not configured.
    pub custom_login: Option<CustomLoginKeys>,
    pub secrets: SecretHasher,
    pub passwords: PasswordHasher,
}

/// Hash domains, so a secret of one kind can never be replayed as another.
pub(crate) mod purpose {
    pub const REFRESH: &str = "refresh-token";
    pub const REFRESH_SUCCESSOR: &str = "refresh-token-successor";
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
    /// `issuer`: the issuer this request's tokens must name (see `http::RequestContext`).
    pub fn from_access_token(app: &App, access_token: &str, issuer: &str) -> AuthResult<Self> {
        let claims = app
            .access_tokens
            .verify(access_token, issuer, app.clock.now())?;
        Ok(Self { claims })
    }

    /// The account the token names (not yet checked against a live session).
    pub fn user_id(&self) -> &UserId {
        &self.claims.user_id
    }

    /// Loads the session and account in one store round trip; both must be alive, and the
    /// session of the account's current epoch.
    pub async fn principal(&self, app: &App) -> AuthResult<Principal> {
        let now = app.clock.now();
        let claims = &self.claims;
        let (session, user) = app
            .store
            .session_and_user(&claims.session_id, &claims.user_id)
            .await?;
        match (session, user) {
            (Some(session), Some(user)) if session_is_alive(&session, &user, now) => {
                Ok(Principal { user, session })
            }
            _ => Err(AuthError::Unauthenticated(
                "the session has ended; sign in again",
            )),
        }
    }
}

/// Whether `session` still lets its holder in: not revoked, not expired, and of `user`'s
/// current session epoch.
pub(crate) fn session_is_alive(session: &Session, user: &User, now: UnixTime) -> bool {
    !session.revoked
        && session.expires_at > now
        && session.user_id == user.id
        && session.epoch == user.session_epoch
        && user.alive_at(now)
}

/// A refresh token: the session it belongs to, its account, and the secret that proves it.
/// Written `<session>.<user>.<secret>`: naming the account lets refresh read the session and
/// the account (whose epoch decides whether the session is alive) in one round trip.
#[derive(Debug)]
pub struct RefreshToken {
    pub session_id: SessionId,
    /// Absent in tokens issued before they named the account (`<session>.<secret>`).
    pub user_id: Option<UserId>,
    pub secret: SecretToken,
}

impl RefreshToken {
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let invalid = || InvalidInput::new("refresh_token", "is not a valid refresh token");
        let (session, rest) = raw.trim().split_once('.').ok_or_else(invalid)?;
        // The secrets this service issues never contain a `.`: an account id before a second
        // one is the new form.
        let (user_id, secret) = match rest.split_once('.') {
            Some((user, secret)) if UserId::parse(user).is_ok() => {
                (UserId::parse(user).ok(), secret)
            }
            _ => (None, rest),
        };
        Ok(Self {
            session_id: SessionId::parse(session).map_err(|_| invalid())?,
            user_id,
            secret: SecretToken::parse("refresh_token", secret)?,
        })
    }

    pub fn expose(&self) -> String {
        match &self.user_id {
            Some(user) => format!(
                "{}.{}.{}",
                self.session_id.as_str(),
                user.as_str(),
                self.secret.expose()
            ),
            None => format!("{}.{}", self.session_id.as_str(), self.secret.expose()),
        }
    }
}

/// What sign-in, sign-up and refresh answer.
#[derive(Debug)]
pub struct Credentials {
    pub access_token: String,
    pub refresh_token: RefreshToken,
    pub expires_in: i64,
    pub user_id: UserId,
    /// Anonymous or not: the access token and the credentials say so.
    pub scope: Scope,
}

/// `epoch`: the account's session epoch as read with it (a session of an older one is dead).
pub(crate) async fn start_session(
    app: &App,
    issuer: &str,
    user_id: &UserId,
    epoch: u64,
) -> AuthResult<Credentials> {
    let now = app.clock.now();
    let (session, secret) = new_session(app, user_id, epoch, now);
    app.store.create_session(&session).await?;
    credentials(app, issuer, user_id, session.id, secret, Scope::User, now)
}

/// A fresh session for `user_id` in session epoch `epoch`, and the refresh secret only its
/// holder gets.
pub(crate) fn new_session(
    app: &App,
    user_id: &UserId,
    epoch: u64,
    now: UnixTime,
) -> (Session, SecretToken) {
    new_limited_session(app, user_id, epoch, now, SessionLimits::default())
}

/// `new_session`, with lives the sign-in shortened (never lengthened) by `limits`.
pub(crate) fn new_limited_session(
    app: &App,
    user_id: &UserId,
    epoch: u64,
    now: UnixTime,
    limits: SessionLimits,
) -> (Session, SecretToken) {
    let secret = SecretToken::generate();
    let settings = &app.settings;
    let deployment_end = now
        + settings
            .refresh_token_ttl_secs
            .min(settings.session_max_lifetime_secs);
    let session = Session {
        id: SessionId::generate(),
        user_id: user_id.clone(),
        refresh_hash: app.secrets.token(purpose::REFRESH, &secret),
        expires_at: limits
            .ends_at
            .map_or(deployment_end, |end| end.min(deployment_end)),
        revoked: false,
        created_at: now,
        refreshed_at: now,
        generation: 0,
        authenticated_at: now,
        epoch,
        limits,
    };
    (session, secret)
}

/// The life of `session`'s access tokens: the deployment's, or shorter when its sign-in said so.
pub(crate) fn access_token_ttl(app: &App, limits: &SessionLimits) -> i64 {
    let deployment = app.settings.access_token_ttl_secs;
    limits
        .access_token_ttl_secs
        .map_or(deployment, |ttl| ttl.min(deployment))
}

pub(crate) fn credentials(
    app: &App,
    issuer: &str,
    user_id: &UserId,
    session_id: SessionId,
    secret: SecretToken,
    scope: Scope,
    now: UnixTime,
) -> AuthResult<Credentials> {
    let ttl = app.settings.access_token_ttl_secs;
    let access_token = app
        .access_tokens
        .issue(issuer, user_id, &session_id, scope, now, ttl)?;
    Ok(Credentials {
        access_token,
        refresh_token: RefreshToken {
            session_id,
            user_id: Some(user_id.clone()),
            secret,
        },
        expires_in: ttl,
        user_id: user_id.clone(),
        scope,
    })
}

/// `credentials` for `session`, whose access tokens may live shorter than the deployment's.
pub(crate) fn session_credentials(
    app: &App,
    issuer: &str,
    session: &Session,
    secret: SecretToken,
    scope: Scope,
    now: UnixTime,
) -> AuthResult<Credentials> {
    let ttl = access_token_ttl(app, &session.limits);
    let user_id = &session.user_id;
    let access_token = app
        .access_tokens
        .issue(issuer, user_id, &session.id, scope, now, ttl)?;
    Ok(Credentials {
        access_token,
        refresh_token: RefreshToken {
            session_id: session.id.clone(),
            user_id: Some(user_id.clone()),
            secret,
        },
        expires_in: ttl,
        user_id: user_id.clone(),
        scope,
    })
}

/// Turns a limit's answer into `resource_exhausted` with the seconds left to wait.
pub(crate) fn within_limit<T>(decision: Result<T, UnixTime>, now: UnixTime) -> AuthResult<T> {
    decision.map_err(|free_at| AuthError::ResourceExhausted {
        retry_after_secs: (free_at - now).max(1),
    })
}

pub(crate) const HOUR: i64 = 3600;

/// One event counted against an hourly limit of a client (its IPv4 address, or the /64 of
/// its IPv6 address: see `ClientNetwork`), where the address is known (API Gateway and the
/// local server always know it).
pub(crate) struct ClientCount {
    key: Option<String>,
    counted_at: UnixTime,
}

impl ClientCount {
    /// Counts the event, or refuses it when the client used up its hour.
    pub(crate) async fn take(
        app: &App,
        kind: &str,
        client_ip: Option<std::net::IpAddr>,
        per_hour: u32,
        now: UnixTime,
    ) -> AuthResult<Self> {
        // Keyed by the client's network (an IPv6 customer's whole /64), not its address.
        let key = client_ip.map(|ip| limit_key(app, kind, &ClientNetwork::of(ip).to_string()));
        if let Some(key) = &key {
            within_limit(app.store.count_event(key, per_hour, HOUR, now).await?, now)?;
        }
        Ok(Self {
            key,
            counted_at: now,
        })
    }

    /// Takes the event back: it turned out not to be one the limit counts.
    pub(crate) async fn give_back(&self, app: &App) {
        if let Some(key) = &self.key {
            give_back_count(app, key, self.counted_at).await;
        }
    }
}

pub(crate) async fn give_back_count(app: &App, key: &str, counted_at: UnixTime) {
    if let Err(err) = app.store.uncount_event(key, HOUR, counted_at).await {
        // Errs on the side of the limit: one event too many stays counted.
        tracing::warn!(error = %err, "a counted event was not given back");
    }
}

/// Password guessing: a few failures are free, then each further attempt locks the name for
/// a delay that doubles (2 s, 4 s, 8 s, ...), up to `AUTH_PASSWORD_MAX_DELAY_SECS`. Attempts
/// count per clock hour, and are counted before the password is checked: an attempt is a
/// failure until it turns out right. So of a burst released together, the free ones and one
/// more (the one that takes the lock) are checked, and the rest refused before any hashing.
pub(crate) struct PasswordThrottle {
    lock: String,
    failures: String,
}

/// An attempt the throttle let through, until it turns out right or wrong.
pub(crate) struct PasswordAttempt {
    counted_at: UnixTime,
    /// The lock this attempt took, when it came after the free ones.
    locked_until: Option<UnixTime>,
}

impl PasswordThrottle {
    /// `subject` names what is guessed at: a sign-in name, or an account for sudo.
    pub(crate) fn new(app: &App, subject: &str) -> Self {
        Self {
            lock: limit_key(app, "password-lock", subject),
            failures: limit_key(app, "password-failures", subject),
        }
    }

    /// Counts an attempt before the password is checked, or refuses it while a delay runs.
    pub(crate) async fn reserve(&self, app: &App, now: UnixTime) -> AuthResult<PasswordAttempt> {
        let settings = &app.settings;
        let store = &app.store;
        let (unlocked, counted) = tokio::join!(
            store.acquire_cooldown(&self.lock, now, now),
            store.count_event(&self.failures, u32::MAX, HOUR, now),
        );
        let counted = counted?;
        let refuse = |free_at: UnixTime| async move {
            if counted.is_ok() {
                give_back_count(app, &self.failures, now).await;
            }
            within_limit(Err(free_at), now)
        };
        if let Err(free_at) = unlocked? {
            return refuse(free_at).await;
        }
        let attempts = counted.unwrap_or(u32::MAX);
        let Some(beyond) = attempts.checked_sub(settings.password_free_failures.saturating_add(1))
        else {
            return Ok(PasswordAttempt {
                counted_at: now,
                locked_until: None,
            });
        };
        // Two seconds at least: with whole-second clocks a one-second lock could end before
        // the next request arrives.
        let delay = 2i64
            .checked_shl(beyond.min(30))
            .unwrap_or(i64::MAX)
            .min(settings.password_max_delay_secs);
        // Only one attempt holds the lock: the others of a burst are refused here.
        match store.acquire_cooldown(&self.lock, now + delay, now).await? {
            Ok(()) => Ok(PasswordAttempt {
                counted_at: now,
                locked_until: Some(now + delay),
            }),
            Err(free_at) => refuse(free_at).await,
        }
    }

    /// The attempt was no failure (the password was right, or none was judged): it is not
    /// counted, and holds no lock.
    pub(crate) async fn give_back(&self, app: &App, attempt: &PasswordAttempt) {
        let release = async {
            if let Some(until) = attempt.locked_until {
                if let Err(err) = app.store.release_cooldown(&self.lock, until).await {
                    tracing::warn!(error = %err, "a password lock was not released");
                }
            }
        };
        tokio::join!(
            give_back_count(app, &self.failures, attempt.counted_at),
            release
        );
    }
}

/// Limit keys carry a hash of the address or account, never the address itself.
pub(crate) fn limit_key(app: &App, kind: &str, subject: &str) -> String {
    format!(
        "{kind}#{}",
        &app.secrets.hash("limit", subject).to_hex()[..32]
    )
}
