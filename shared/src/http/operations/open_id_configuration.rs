//! `GET /auth/v1/.well-known/openid-configuration`: the OpenID Connect discovery document.

use serde::Serialize;

use crate::error::AuthResult;
use crate::http::RequestContext;
use crate::ops::App;

/// The OpenID Connect discovery document (the part a JWT verifier reads: API Gateway's JWT
/// authorizer needs `issuer` and `jwks_uri`).
#[derive(Serialize)]
pub struct DiscoveryAnswer<'a> {
    pub issuer: &'a str,
    pub jwks_uri: String,
    pub token_endpoint: String,
    pub response_types_supported: &'static [&'static str],
    pub subject_types_supported: &'static [&'static str],
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: &'static [&'static str],
    pub claims_supported: &'static [&'static str],
}

pub(super) fn handle<'a>(app: &App, ctx: &'a RequestContext) -> AuthResult<DiscoveryAnswer<'a>> {
    let issuer = ctx.issuer()?;
    Ok(DiscoveryAnswer {
        issuer,
        jwks_uri: format!("{issuer}/.well-known/jwks.json"),
        token_endpoint: format!("{issuer}/token"),
        response_types_supported: &["token"],
        subject_types_supported: &["public"],
        id_token_signing_alg_values_supported: app.access_tokens.algorithms(),
        token_endpoint_auth_methods_supported: &["none"],
        claims_supported: &["sub", "sid", "iss", "aud", "exp", "iat", "jti", "scope"],
    })
}
