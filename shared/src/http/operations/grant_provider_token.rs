//! `POST /auth/v1/provider/token`: trades an identity provider's authorization code for a
//! provider token and the profile it names.

use lambda_http::Request;
use serde::{Deserialize, Serialize};

use super::body;
use crate::domain::ProviderId;
use crate::error::AuthResult;
use crate::http::wire::required;
use crate::http::RequestContext;
use crate::ops::providers;
use crate::ops::App;

#[derive(Deserialize)]
pub struct ProviderTokenBody {
    pub provider_id: Option<String>,
    pub provider_code: Option<String>,
    pub provider_redirect_uri: Option<String>,
}

#[derive(Serialize)]
pub struct ProviderTokenAnswer {
    pub provider_token: String,
    pub expires_in: i64,
    pub provider_profile: ProviderProfileAnswer,
}

#[derive(Serialize)]
pub struct ProviderProfileAnswer {
    pub provider_id: &'static str,
    pub sub: String,
    pub name: String,
    pub picture: String,
}

pub(super) async fn handle(
    app: &App,
    req: &Request,
    ctx: &RequestContext,
) -> AuthResult<ProviderTokenAnswer> {
    let b: ProviderTokenBody = body(req)?;
    let provider = ProviderId::parse(&required(b.provider_id, "provider_id")?)?;
    let code = providers::parse_provider_code(&required(b.provider_code, "provider_code")?)?;
    let grant = providers::grant_provider_token(
        app,
        provider,
        &code,
        b.provider_redirect_uri.as_deref(),
        ctx.client_ip,
    )
    .await?;
    Ok(ProviderTokenAnswer {
        provider_token: grant.provider_token.expose().to_string(),
        expires_in: grant.expires_in,
        provider_profile: ProviderProfileAnswer {
            provider_id: grant.identity.provider.as_str(),
            sub: grant.identity.subject,
            name: grant
                .profile
                .name
                .map(|n| n.as_str().to_string())
                .unwrap_or_default(),
            picture: grant
                .profile
                .picture
                .map(|p| p.as_str().to_string())
                .unwrap_or_default(),
        },
    })
}
