//! `POST /auth/v1/revoke`: ends the session of a refresh or access token, given in the body
//! or as the bearer token.

use lambda_http::Request;

use super::{bearer, body};
use crate::error::{AuthError, AuthResult};
use crate::http::wire::{Empty, RevokeBody};
use crate::http::RequestContext;
use crate::ops::accounts;
use crate::ops::App;

pub(super) async fn handle(app: &App, req: &Request, ctx: &RequestContext) -> AuthResult<Empty> {
    let b: RevokeBody = body(req)?;
    match b.token.as_deref().or_else(|| bearer(req)) {
        Some(token) => accounts::revoke(app, token, ctx.issuer()?).await?,
        None => return Err(AuthError::InvalidArgument("token is required".into())),
    }
    Ok(Empty {})
}
