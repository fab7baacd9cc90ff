//! `GET /auth/v1/user/me`: the bearer's account.

use lambda_http::Request;
use serde::Serialize;

use super::principal;
use crate::domain::{ProviderLink, User};
use crate::error::AuthResult;
use crate::http::wire::rfc3339;
use crate::http::RequestContext;
use crate::ops::App;

#[derive(Serialize)]
pub struct UserAnswer {
    pub sub: String,
    pub name: String,
    pub username: String,
    pub email: String,
    pub phone_number: String,
    pub picture: String,
    pub providers: Vec<ProviderSummary>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Serialize)]
pub struct ProviderSummary {
    pub id: &'static str,
    pub provider_user_id: String,
    pub name: String,
}

impl From<&ProviderLink> for ProviderSummary {
    fn from(link: &ProviderLink) -> Self {
        Self {
            id: link.identity.provider.as_str(),
            provider_user_id: link.identity.subject.clone(),
            name: link.profile.name.clone().unwrap_or_default(),
        }
    }
}

impl From<&User> for UserAnswer {
    fn from(user: &User) -> Self {
        Self {
            sub: user.id.as_str().to_string(),
            name: user
                .name
                .as_ref()
                .map(|n| n.as_str().to_string())
                .or_else(|| user.providers.iter().find_map(|p| p.profile.name.clone()))
                .unwrap_or_default(),
            username: user
                .username
                .as_ref()
                .map(|u| u.as_str().to_string())
                .unwrap_or_default(),
            email: user
                .email
                .as_ref()
                .map(|e| e.as_str().to_string())
                .unwrap_or_default(),
            phone_number: user.phone.as_ref().map(|p| p.display()).unwrap_or_default(),
            picture: user
                .providers
                .iter()
                .find_map(|p| p.profile.picture.clone())
                .unwrap_or_default(),
            providers: user.providers.iter().map(ProviderSummary::from).collect(),
            created_at: rfc3339(user.created_at),
            updated_at: rfc3339(user.updated_at),
        }
    }
}

pub(super) async fn handle(
    app: &App,
    req: &Request,
    ctx: &RequestContext,
) -> AuthResult<UserAnswer> {
    Ok(UserAnswer::from(&principal(app, ctx, req).await?.user))
}
