//! External identity providers (WeChat): provider tokens, binding, sign-in, listing, unbinding.

use crate::domain::{
    ProviderId, ProviderIdentity, ProviderLink, ProviderProfile, ProviderToken, SecretToken,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::crypto::Scope;
use crate::error::{AuthError, AuthResult};
use crate::ports::{ProviderError, Spend};

use super::changes::{change_account, recently_authenticated};
use super::messages::notify_account;
use std::net::IpAddr;

use super::{credentials, new_session, purpose, App, Caller, ClientCount, Credentials, Principal};

#[derive(Debug)]
pub struct ProviderGrant {
    pub provider_token: SecretToken,
    pub expires_in: i64,
    pub identity: ProviderIdentity,
    pub profile: ProviderProfile,
}

/// A code as the provider issued it: short, printable, at most 512 bytes.
pub fn parse_provider_code(raw: &str) -> AuthResult<String> {
    let code = raw.trim();
    if code.is_empty() || code.len() > 512 || !code.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AuthError::InvalidArgument(
            "provider_code is not a valid authorization code".into(),
        ));
    }
    Ok(code.to_string())
}

pub async fn grant_provider_token(
    app: &App,
    provider: ProviderId,
    code: &str,
    redirect_uri: Option<&str>,
    client_ip: Option<IpAddr>,
) -> AuthResult<ProviderGrant> {
    let limit = app.settings.provider_grants_per_ip_per_hour;
    ClientCount::take(app, "provider-grant-ip", client_ip, limit, app.clock.now()).await?;
    let (identity, profile) = app
        .identity_provider
        .exchange_code(provider, code, redirect_uri)
        .await
        .map_err(|err| match err {
            ProviderError::InvalidCode(detail) => {
                tracing::info!(provider = provider.as_str(), detail = %detail, "provider code rejected");
                AuthError::InvalidArgument(
                    "the provider_code was rejected by the provider: it is invalid, expired or used"
                        .into(),
                )
            }
            ProviderError::NotConfigured => AuthError::FailedPrecondition(
                "this provider is not configured on the server",
            ),
            ProviderError::Unavailable(detail) => AuthError::Unavailable(detail),
        })?;
    let now = app.clock.now();
    let token = SecretToken::generate_with_suffix(&identity_hint(&identity));
    let ttl = app.settings.provider_token_ttl_secs;
    app.store
        .put_provider_token(&ProviderToken {
            hash: app.secrets.token(purpose::PROVIDER, &token),
            identity: identity.clone(),
            profile: profile.clone(),
            expires_at: now + ttl,
            used: false,
        })
        .await?;
    Ok(ProviderGrant {
        provider_token: token,
        expires_in: ttl,
        identity,
        profile,
    })
}

/// The identity a provider token is for, in the clear at its end (`<secret>.wx_open.<subject
/// in base64url>.<app subject in base64url>`): sign-in reads the token and the identity's
/// login keys together. The grant answer carries the subject anyway (`provider_profile.sub`).
fn identity_hint(identity: &ProviderIdentity) -> String {
    format!(
        "{}.{}.{}",
        identity.provider.as_str(),
        URL_SAFE_NO_PAD.encode(&identity.subject),
        URL_SAFE_NO_PAD.encode(&identity.app_subject)
    )
}

fn hinted_identity(token: &SecretToken) -> Option<ProviderIdentity> {
    let decode = |part: &str| String::from_utf8(URL_SAFE_NO_PAD.decode(part).ok()?).ok();
    let mut parts = token.expose().rsplitn(4, '.');
    let app_subject = decode(parts.next()?)?;
    let subject = decode(parts.next()?)?;
    let provider = ProviderId::parse(parts.next()?).ok()?;
    parts.next()?;
    Some(ProviderIdentity {
        provider,
        subject,
        app_subject,
    })
}

fn invalid_provider_token() -> AuthError {
    AuthError::PermissionDenied("the provider_token is invalid, used or expired")
}

fn live(stored: Option<ProviderToken>, now: crate::domain::UnixTime) -> AuthResult<ProviderToken> {
    match stored {
        Some(stored) if !stored.used && stored.expires_at > now => Ok(stored),
        _ => Err(invalid_provider_token()),
    }
}

pub(crate) async fn live_provider_token(
    app: &App,
    token: &SecretToken,
) -> AuthResult<ProviderToken> {
    let now = app.clock.now();
    let hash = app.secrets.token(purpose::PROVIDER, token);
    live(app.store.provider_token(&hash).await?, now)
}

pub async fn bind_provider(app: &App, caller: &Caller, token: SecretToken) -> AuthResult<()> {
    let (principal, stored) = tokio::join!(caller.principal(app), live_provider_token(app, &token));
    let principal = &principal?;
    recently_authenticated(app, principal)?;
    let stored = stored?;
    let identity = stored.identity.clone();
    let spend = Spend::Provider {
        hash: stored.hash.clone(),
        identity: identity.clone(),
    };
    change_account(app, principal, None, Some(spend), |user| {
        match user.provider(identity.provider) {
            // Bound already, maybe from an answer that named the person by openid alone.
            Some(link) if link.identity.same_person(&identity) => {}
            Some(_) => {
                return Err(AuthError::AlreadyExists(
                    "the account already has an identity of this provider; unbind it first",
                ))
            }
            None => user.providers.push(ProviderLink {
                identity: identity.clone(),
                profile: stored.profile.clone(),
            }),
        }
        Ok(())
    })
    .await?;
    tracing::info!(
        user = principal.user.id.as_str(),
        provider = identity.provider.as_str(),
        "provider bound"
    );
    let name = identity.provider.display_name();
    let body = format!(
        "A {name} account can now sign in to your account. If you did not do this, unbind it and change your password."
    );
    notify_account(
        app,
        &principal.user,
        &format!("{name} was bound to your account"),
        &body,
    )
    .await;
    Ok(())
}

pub async fn sign_in_with_provider(
    app: &App,
    token: SecretToken,
    issuer: &str,
) -> AuthResult<Credentials> {
    let now = app.clock.now();
    let identity = hinted_identity(&token).ok_or_else(invalid_provider_token)?;
    let hash = app.secrets.token(purpose::PROVIDER, &token);
    let (subject_key, app_key) = (identity.subject_key(), identity.app_key());
    let (stored, by_subject, by_app) = tokio::join!(
        app.store.provider_token(&hash),
        app.store.login(&subject_key),
        app.store.login(&app_key)
    );
    let stored = live(stored?, now)?;
    if stored.identity != identity {
        return Err(invalid_provider_token());
    }
    // By unionid, else by openid: an answer that left the unionid out (or an account made
    // from one) is still the same person, never an unknown one to sign up again.
    let (key, holder) = match (by_subject?, by_app?) {
        (Some(holder), _) => (subject_key, holder),
        (None, Some(holder)) => (app_key, holder),
        (None, None) => {
            return Err(AuthError::NotFound(
                "no account is bound to this provider identity",
            ))
        }
    };
    // The token signs in once: spent in the same write that stores the session.
    let (session, secret) = new_session(app, &holder.user_id, holder.session_epoch, now);
    if !app
        .store
        .exchange_for_session(&Spend::Provider { hash, identity }, &key, now, &session)
        .await?
    {
        return Err(invalid_provider_token());
    }
    credentials(
        app,
        issuer,
        &holder.user_id,
        session.id,
        secret,
        Scope::User,
        now,
    )
}

pub struct ProviderState {
    pub provider: ProviderId,
    pub link: Option<ProviderLink>,
}

pub fn list_providers(principal: &Principal) -> Vec<ProviderState> {
    ProviderId::ALL
        .iter()
        .map(|&provider| ProviderState {
            provider,
            link: principal.user.provider(provider).cloned(),
        })
        .collect()
}

pub async fn unbind_provider(
    app: &App,
    principal: &Principal,
    provider: ProviderId,
) -> AuthResult<()> {
    recently_authenticated(app, principal)?;
    change_account(app, principal, None, None, |user| {
        if user.provider(provider).is_none() {
            return Err(AuthError::NotFound(
                "the account has no identity of this provider",
            ));
        }
        if user.sign_in_methods() <= 1 {
            return Err(AuthError::FailedPrecondition(
                "this is the last way to sign in to the account; bind another first",
            ));
        }
        user.providers
            .retain(|link| link.identity.provider != provider);
        Ok(())
    })
    .await?;
    tracing::info!(
        user = principal.user.id.as_str(),
        provider = provider.as_str(),
        "provider unbound"
    );
    let name = provider.display_name();
    let body = format!(
        "A {name} account no longer signs in to your account. If you did not do this, change your password."
    );
    notify_account(
        app,
        &principal.user,
        &format!("{name} was unbound from your account"),
        &body,
    )
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_token_names_its_identity_and_nothing_else_parses_as_one() {
        let identity = ProviderIdentity {
            provider: ProviderId::WxOpen,
            subject: "oUnion-ID_with.dots".to_string(),
            app_subject: "oOpen.ID".to_string(),
        };
        let token = SecretToken::generate_with_suffix(&identity_hint(&identity));
        assert_eq!(hinted_identity(&token), Some(identity));
        for raw in [
            "abc",
            "abc.wx_open",
            "wx_open.b1VuaW9u",
            "abc.github.b1VuaW9u",
            "abc.wx_open.***",
            "abc.wx_open.__8",
            "wx_open.b1VuaW9u.b1VuaW9u",
            "abc.github.b1VuaW9u.b1VuaW9u",
            "abc.wx_open.***.b1VuaW9u",
            "abc.wx_open.b1VuaW9u.__8",
        ] {
            let token = SecretToken::parse("provider_token", raw).unwrap();
            assert_eq!(hinted_identity(&token), None, "{raw}");
        }
    }
}
