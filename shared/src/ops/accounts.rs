//! Sign-up, sign-in, refresh, revocation and the current user.

use crate::crypto::Scope;
use crate::domain::{
    Address, DisplayName, Email, LoginKey, Password, PhoneNumber, ProviderLink, SecretToken,
    UnixTime, User, Username,
};
use crate::error::{AuthError, AuthResult};
use crate::ports::{AccountChange, ChangeRejected, Spend};

use std::net::IpAddr;

use super::changes::taken;
use super::{
    credentials, new_session, purpose, session_credentials, session_is_alive, start_session, App,
    ClientCount, Credentials, PasswordThrottle, Principal, RefreshToken,
};

/// How many rotations back a retired refresh token is still recognised as this session's.
const RECOGNISED_GENERATIONS: u32 = 2_000;

/// How a new account names itself.
#[derive(Debug)]
pub enum NewIdentity {
    Username(Username),
    /// An address proven by a verification token.
    Address {
        address: Address,
        verification_token: SecretToken,
    },
    /// A provider identity proven by a provider token (after sign-in with it found nobody).
    Provider {
        provider_token: SecretToken,
    },
}

#[derive(Debug)]
pub struct SignUp {
    pub identity: NewIdentity,
    pub password: Option<Password>,
    pub name: Option<DisplayName>,
}

/// What a person types as `username` at sign-in: a username, an email or a phone number.
#[derive(Debug)]
pub struct LoginName(pub LoginKey);

impl LoginName {
    pub fn parse(
        raw: &str,
        default_country_code: &str,
    ) -> Result<Self, crate::domain::InvalidInput> {
        let raw = raw.trim();
        let key = if raw.contains('@') {
            LoginKey::Address(Address::Email(Email::parse(raw)?))
        } else if raw.starts_with('+') || raw.starts_with(|c: char| c.is_ascii_digit()) {
            LoginKey::Address(Address::Phone(PhoneNumber::parse(
                raw,
                default_country_code,
            )?))
        } else {
            LoginKey::Username(Username::parse(raw)?)
        };
        Ok(Self(key))
    }

    /// The `username` the SDK sends beside a verification token: `None` when it leaves the
    /// account to the token (`""`, or a country code alone such as `"+86 "`, what the SDK
    /// makes of an empty phone number), else read as any sign-in name is. A country code
    /// has at most three digits: anything longer after the `+` is a number, in whatever
    /// spelling (`"+8613700001234"` and `"+86 137 0000 1234"` are the same number).
    pub fn parse_beside_token(
        raw: Option<&str>,
        default_country_code: &str,
    ) -> Result<Option<Self>, crate::domain::InvalidInput> {
        let raw = raw.map(str::trim).unwrap_or("");
        let country_code_alone = raw.strip_prefix('+').is_some_and(|code| {
            (1..=3).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_digit())
        });
        if raw.is_empty() || country_code_alone {
            return Ok(None);
        }
        Self::parse(raw, default_country_code).map(Some)
    }
}

pub(crate) fn check_password_policy(app: &App, password: &Password) -> AuthResult<()> {
    if password.char_count() < app.settings.password_min_length {
        return Err(AuthError::InvalidPassword(
            "the password is shorter than the policy allows",
        ));
    }
    Ok(())
}

pub async fn sign_up(
    app: &App,
    request: SignUp,
    client_ip: Option<IpAddr>,
    issuer: &str,
) -> AuthResult<Credentials> {
    let now = app.clock.now();
    if let Some(password) = &request.password {
        check_password_policy(app, password)?;
    }
    let per_client = app.settings.signups_per_ip_per_hour;
    ClientCount::take(app, "signup-ip", client_ip, per_client, now).await?;
    let mut user = User {
        name: request.name,
        ..User::new(now)
    };
    let spend = match request.identity {
        NewIdentity::Username(username) => {
            if request.password.is_none() {
                return Err(AuthError::InvalidArgument(
                    "password is required to sign up with a username".into(),
                ));
            }
            user.username = Some(username);
            None
        }
        NewIdentity::Address {
            address,
            verification_token,
        } => {
            match &address {
                Address::Email(email) => user.email = Some(email.clone()),
                Address::Phone(phone) => user.phone = Some(phone.clone()),
            }
            Some(Spend::Verification {
                hash: app
                    .secrets
                    .token(purpose::VERIFICATION_TOKEN, &verification_token),
                address,
            })
        }
        NewIdentity::Provider { provider_token } => {
            let stored = super::providers::live_provider_token(app, &provider_token).await?;
            user.providers.push(ProviderLink {
                identity: stored.identity.clone(),
                profile: stored.profile,
            });
            Some(Spend::Provider {
                hash: stored.hash,
                identity: stored.identity,
            })
        }
    };
    if let Some(password) = request.password {
        user.password_hash = Some(app.passwords.hash(password).await?);
    }
    // The account and its first session are written together, or neither is.
    let (session, secret) = new_session(app, &user.id, user.session_epoch, now);
    let session_id = session.id.clone();
    let change = AccountChange {
        before: None,
        after: user,
        sudo: None,
        spend,
        session: Some(session),
        keep_session: None,
        now,
        username_held_until: now + app.settings.username_hold_secs,
    };
    match app.store.apply(&change).await? {
        Ok(()) => {}
        Err(ChangeRejected::Taken(key)) => return Err(taken(&key)),
        Err(ChangeRejected::Token) => {
            return Err(AuthError::PermissionDenied(
                "the verification_token or provider_token is invalid, used, expired or for another address",
            ))
        }
        Err(rejected) => {
            return Err(AuthError::Internal(format!(
                "creating a new account was rejected: {rejected:?}"
            )))
        }
    }
    tracing::info!(user = change.after.id.as_str(), "account created");
    credentials(
        app,
        issuer,
        &change.after.id,
        session_id,
        secret,
        Scope::User,
        now,
    )
}

pub async fn sign_in(
    app: &App,
    login: LoginName,
    password: Password,
    client_ip: Option<IpAddr>,
    issuer: &str,
) -> AuthResult<Credentials> {
    let now = app.clock.now();
    // Throttled per login name whether or not an account has it, so the limit reveals nothing;
    // and per client, whatever the names. Both count the attempt before the password is
    // checked, and give it back when it was right.
    let throttle = PasswordThrottle::new(app, &login.0.storage_key());
    let per_client = app.settings.signin_failures_per_ip_per_hour;
    let (by_client, attempt, holder) = tokio::join!(
        ClientCount::take(app, "signin-failures-ip", client_ip, per_client, now),
        throttle.reserve(app, now),
        app.store.login(&login.0),
    );
    let (by_client, attempt) = match (by_client, attempt) {
        (Ok(by_client), Ok(attempt)) => (by_client, attempt),
        (by_client, attempt) => {
            let give_back = async {
                if let Ok(by_client) = &by_client {
                    by_client.give_back(app).await;
                }
            };
            let release = async {
                if let Ok(attempt) = &attempt {
                    throttle.give_back(app, attempt).await;
                }
            };
            tokio::join!(give_back, release);
            return Err(by_client.err().or(attempt.err()).unwrap_or_else(|| {
                AuthError::Internal("a refused sign-in named no refusal".into())
            }));
        }
    };
    let holder = holder?;
    let stored = holder.as_ref().and_then(|h| h.password_hash.as_deref());
    let matched = app.passwords.verify(password, stored).await?;
    match holder {
        Some(holder) if matched => {
            // The counts go back while the session is written: one round trip, not two.
            let (_, _, credentials) = tokio::join!(
                by_client.give_back(app),
                throttle.give_back(app, &attempt),
                start_session(app, issuer, &holder.user_id, holder.session_epoch),
            );
            credentials
        }
        _ => Err(AuthError::InvalidUsernameOrPassword),
    }
}

/// Rotates a refresh token. Each token's successor derives from it (keyed with the server's
/// secret), so that the session stores only its current token's hash and still recognises
/// every token it ever issued: presented again within `AUTH_REFRESH_REUSE_GRACE_SECS` of its
/// rotation (two tabs, a retry), a token gets the successor it already got; later, or older,
/// it ends the session (its holder may be an attacker); a token the session never issued is
/// refused and changes nothing.
pub async fn refresh(app: &App, token: RefreshToken, issuer: &str) -> AuthResult<Credentials> {
    let now = app.clock.now();
    let settings = &app.settings;
    // The session with its account, whose epoch says whether the session is alive.
    let read = || async {
        let (session, user) = match &token.user_id {
            Some(user_id) => {
                app.store
                    .session_and_user(&token.session_id, user_id)
                    .await?
            }
            None => {
                let session = app.store.session(&token.session_id).await?;
                let user = match &session {
                    Some(session) => app.store.user(&session.user_id).await?,
                    None => None,
                };
                (session, user)
            }
        };
        // An anonymous account ends at its expiry, and its sessions with it.
        match (session, user) {
            (Some(session), Some(user)) if session_is_alive(&session, &user, now) => {
                let scope = match user.expires_at {
                    Some(_) => Scope::Anonymous,
                    None => Scope::User,
                };
                Ok((session, scope))
            }
            _ => Err(AuthError::InvalidGrant),
        }
    };
    let (mut session, scope) = read().await?;
    let presented = app.secrets.token(purpose::REFRESH, &token.secret);
    let next = successor(app, &token.secret);
    if presented.matches(&session.refresh_hash) {
        let expires_at = (now + settings.refresh_token_ttl_secs)
            .min(session.created_at + settings.session_max_lifetime_secs)
            .min(session.limits.ends_at.unwrap_or(UnixTime::MAX));
        if expires_at <= now {
            return Err(AuthError::InvalidGrant);
        }
        if app
            .store
            .rotate_refresh_token(
                &session.id,
                &presented,
                &app.secrets.token(purpose::REFRESH, &next),
                session.generation.saturating_add(1),
                expires_at,
                now,
            )
            .await?
        {
            return session_credentials(app, issuer, &session, next, scope, now);
        }
        // Rotated by another request since it was read: judged as a retired token below.
        session = read().await?.0;
    }
    match generations_behind(app, &token.secret, &session) {
        Some(1) if now - session.refreshed_at < settings.refresh_reuse_grace_secs => {
            session_credentials(app, issuer, &session, next, scope, now)
        }
        Some(behind) => {
            app.store.revoke_session(&session.id).await?;
            tracing::warn!(
                session = session.id.as_str(),
                generations_behind = behind,
                "a retired refresh token was presented; the session is revoked"
            );
            Err(AuthError::InvalidGrant)
        }
        None => Err(AuthError::InvalidGrant),
    }
}

fn successor(app: &App, secret: &SecretToken) -> SecretToken {
    app.secrets.derive(purpose::REFRESH_SUCCESSOR, secret)
}

/// How many rotations ago `secret` was this session's refresh token, if it ever was.
fn generations_behind(
    app: &App,
    secret: &SecretToken,
    session: &crate::domain::Session,
) -> Option<u32> {
    let mut token = secret.clone();
    (1..=session.generation.min(RECOGNISED_GENERATIONS)).find(|_| {
        token = successor(app, &token);
        app.secrets
            .token(purpose::REFRESH, &token)
            .matches(&session.refresh_hash)
    })
}

/// Revokes the session of a refresh or access token. Unknown tokens are ignored, as RFC 7009
/// asks, so the answer reveals nothing.
pub async fn revoke(app: &App, token: &str, issuer: &str) -> AuthResult<()> {
    let now = app.clock.now();
    if let Ok(refresh) = RefreshToken::parse(token) {
        if let Some(session) = app.store.session(&refresh.session_id).await? {
            let presented = app.secrets.token(purpose::REFRESH, &refresh.secret);
            if presented.matches(&session.refresh_hash) {
                app.store.revoke_session(&session.id).await?;
            }
        }
    } else if let Ok(claims) = app.access_tokens.verify(token, issuer, now) {
        app.store.revoke_session(&claims.session_id).await?;
    }
    Ok(())
}

pub async fn sign_out(app: &App, principal: &Principal) -> AuthResult<()> {
    app.store.revoke_session(&principal.session.id).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beside_token(raw: &str) -> Option<LoginKey> {
        LoginName::parse_beside_token(Some(raw), "86")
            .unwrap()
            .map(|name| name.0)
    }

    #[test]
    fn a_number_beside_a_token_reads_the_same_in_every_spelling() {
        let spaced = beside_token("+86 13700001234").expect("a number");
        for spelling in [
            "+8613700001234",
            " +86 137 0000 1234 ",
            "13700001234",
            "+86-137-0000-1234",
        ] {
            assert_eq!(
                beside_token(spelling).as_ref(),
                Some(&spaced),
                "{spelling:?}"
            );
        }
        let email = beside_token("alice@example.com").expect("an email");
        assert_eq!(beside_token(" ALICE@Example.COM").as_ref(), Some(&email));
    }

    #[test]
    fn only_nothing_or_a_country_code_alone_leaves_it_to_the_token() {
        for nothing in ["", "  ", "+86 ", "+86", "+1", "+852"] {
            assert_eq!(beside_token(nothing), None, "{nothing:?}");
        }
        assert_eq!(
            LoginName::parse_beside_token(None, "86")
                .unwrap()
                .map(|n| n.0),
            None
        );
        // Four digits are no country code: read as a number, which this one is not.
        assert!(LoginName::parse_beside_token(Some("+8613"), "86").is_err());
    }
}
