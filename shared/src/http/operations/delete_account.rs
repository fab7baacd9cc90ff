//! `DELETE /auth/v1/user/me?sudo_token=<token>`: the account, gone in one transaction.

use lambda_http::Request;

use super::principal;
use crate::domain::SecretToken;
use crate::error::{AuthError, AuthResult};
use crate::http::wire::Empty;
use crate::http::RequestContext;
use crate::ops::{deletion, App};

/// `DELETE /auth/v1/user/me?sudo_token=<token>`: the token is in the query (the SDK sends no
/// body). A missing, empty or unreadable one (`[object Object]`, when an app passes the whole
/// `auth.sudo()` result) is no proof: `permission_denied`, like a wrong one.
pub(super) async fn handle(app: &App, req: &Request, ctx: &RequestContext) -> AuthResult<Empty> {
    let who = principal(app, ctx, req).await?;
    let sudo_token = query_value(req, "sudo_token")
        .and_then(|raw| SecretToken::parse("sudo_token", raw).ok())
        .ok_or(AuthError::PermissionDenied(
            "a live sudo_token of this session is required in the query",
        ))?;
    deletion::delete_account(app, &who, &sudo_token).await?;
    Ok(Empty {})
}

/// The raw value of a query parameter. Tokens are URL-safe as issued, so no decoding is
/// needed: an encoded value can only be something this service never issued.
fn query_value<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.uri()
        .query()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}
