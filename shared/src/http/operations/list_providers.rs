//! `GET /auth/v1/user/provider`: every provider, and whether the bearer's account is linked
//! to it.

use lambda_http::Request;
use serde::Serialize;

use super::principal;
use crate::error::AuthResult;
use crate::http::RequestContext;
use crate::ops::providers;
use crate::ops::App;

#[derive(Serialize)]
pub struct ProviderListAnswer {
    pub total: usize,
    pub data: Vec<ProviderListItem>,
}

#[derive(Serialize)]
pub struct ProviderListItem {
    pub id: &'static str,
    pub name: &'static str,
    pub provider_user_name: String,
    pub bind: bool,
}

pub(super) async fn handle(
    app: &App,
    req: &Request,
    ctx: &RequestContext,
) -> AuthResult<ProviderListAnswer> {
    let who = principal(app, ctx, req).await?;
    let data: Vec<ProviderListItem> = providers::list_providers(&who)
        .into_iter()
        .map(|state| ProviderListItem {
            id: state.provider.as_str(),
            name: state.provider.display_name(),
            provider_user_name: state
                .link
                .as_ref()
                .and_then(|l| l.profile.name.as_ref().map(|n| n.as_str().to_string()))
                .unwrap_or_default(),
            bind: state.link.is_some(),
        })
        .collect();
    Ok(ProviderListAnswer {
        total: data.len(),
        data,
    })
}
