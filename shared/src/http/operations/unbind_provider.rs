//! `DELETE /auth/v1/user/provider/{provider_id}`: unlinks a provider from the bearer's
//! account.

use lambda_http::Request;

use super::principal;
use crate::domain::ProviderId;
use crate::error::AuthResult;
use crate::http::wire::Empty;
use crate::http::RequestContext;
use crate::ops::providers;
use crate::ops::App;

/// `provider_id`: the path's `{provider_id}`.
pub(super) async fn handle(
    app: &App,
    req: &Request,
    ctx: &RequestContext,
    provider_id: Option<&str>,
) -> AuthResult<Empty> {
    let who = principal(app, ctx, req).await?;
    let provider = ProviderId::parse(provider_id.unwrap_or_default())?;
    providers::unbind_provider(app, &who, provider).await?;
    Ok(Empty {})
}
