//! Sign-up, sign-in, refresh, revocation and the current user.

use crate::domain::{
    Address, DisplayName, Email, LoginKey, Password, PhoneNumber, ProviderLink, SecretToken, User,
    UserId, Username,
};
use crate::error::{AuthError, AuthResult};
use crate::ports::{AccountChange, ChangeRejected, Spend};

use super::{
    credentials, purpose, start_session, App, Credentials, PasswordThrottle, Principal,
    RefreshToken,
};

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
}

pub(crate) fn check_password_policy(app: &App, password: &Password) -> AuthResult<()> {
    if password.char_count() < app.settings.password_min_length {
        return Err(AuthError::InvalidPassword(
            "the password is shorter than the policy allows",
        ));
    }
    Ok(())
}

pub async fn sign_up(app: &App, request: SignUp) -> AuthResult<Credentials> {
    let now = app.clock.now();
    if let Some(password) = &request.password {
        check_password_policy(app, password)?;
    }
    let mut user = User {
        id: UserId::generate(),
        username: None,
        email: None,
        phone: None,
        name: request.name,
        password_hash: None,
        providers: Vec::new(),
        created_at: now,
        updated_at: now,
        version: 1,
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
    let change = AccountChange {
        before: None,
        after: user,
        sudo: None,
        spend,
        now,
    };
    // The session first: should creating the account then fail, what stays behind is a
    // session whose token nobody holds, not an account its creator was never let into.
    let credentials = start_session(app, &change.after.id).await?;
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
    Ok(credentials)
}

pub(crate) fn taken(key: &LoginKey) -> AuthError {
    AuthError::AlreadyExists(match key {
        LoginKey::Username(_) => "the username belongs to another account",
        LoginKey::Address(Address::Email(_)) => "the email belongs to another account",
        LoginKey::Address(Address::Phone(_)) => "the phone number belongs to another account",
        LoginKey::Provider(_) => "the provider identity belongs to another account",
    })
}

pub async fn sign_in(app: &App, login: LoginName, password: Password) -> AuthResult<Credentials> {
    let now = app.clock.now();
    // Throttled per login name whether or not an account has it, so the limit reveals nothing.
    let throttle = PasswordThrottle::new(app, &login.0.storage_key());
    let (allowed, holder) = tokio::join!(throttle.check(app, now), app.store.login(&login.0));
    allowed?;
    let holder = holder?;
    let stored = holder.as_ref().and_then(|h| h.password_hash.as_deref());
    let matched = app.passwords.verify(password, stored).await?;
    match holder {
        Some(holder) if matched => start_session(app, &holder.user_id).await,
        _ => {
            throttle.record_failure(app, now).await?;
            Err(AuthError::InvalidUsernameOrPassword)
        }
    }
}

pub async fn refresh(app: &App, token: RefreshToken) -> AuthResult<Credentials> {
    let now = app.clock.now();
    let session = app
        .store
        .session(&token.session_id)
        .await?
        .ok_or(AuthError::InvalidGrant)?;
    if session.revoked || session.expires_at <= now {
        return Err(AuthError::InvalidGrant);
    }
    let presented = app.secrets.token(purpose::REFRESH, &token.secret);
    let next = SecretToken::generate();
    let rotated = presented.matches(&session.refresh_hash)
        && app
            .store
            .rotate_refresh_token(
                &session.id,
                &presented,
                &app.secrets.token(purpose::REFRESH, &next),
                now + app.settings.refresh_token_ttl_secs,
                now,
            )
            .await?;
    if !rotated {
        // A retired token came back: whoever holds the family may be an attacker. End it.
        app.store.revoke_session(&session.id).await?;
        tracing::warn!(
            session = session.id.as_str(),
            "a retired refresh token was presented; the session is revoked"
        );
        return Err(AuthError::InvalidGrant);
    }
    credentials(app, &session.user_id, session.id, next, now)
}

/// Revokes the session of a refresh or access token. Unknown tokens are ignored, as RFC 7009
/// asks, so the answer reveals nothing.
pub async fn revoke(app: &App, token: &str) -> AuthResult<()> {
    let now = app.clock.now();
    if let Ok(refresh) = RefreshToken::parse(token) {
        if let Some(session) = app.store.session(&refresh.session_id).await? {
            let presented = app.secrets.token(purpose::REFRESH, &refresh.secret);
            if presented.matches(&session.refresh_hash) {
                app.store.revoke_session(&session.id).await?;
            }
        }
    } else if let Ok(claims) = app.access_tokens.verify(token, now) {
        app.store.revoke_session(&claims.session_id).await?;
    }
    Ok(())
}

pub async fn sign_out(app: &App, principal: &Principal) -> AuthResult<()> {
    app.store.revoke_session(&principal.session.id).await?;
    Ok(())
}
