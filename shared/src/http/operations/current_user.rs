//! `GET /auth/v1/user/me`: the bearer's account.

use lambda_http::Request;

use super::principal;
use crate::error::AuthResult;
use crate::http::wire::UserAnswer;
use crate::http::RequestContext;
use crate::ops::App;

pub(super) async fn handle(
    app: &App,
    req: &Request,
    ctx: &RequestContext,
) -> AuthResult<UserAnswer> {
    Ok(UserAnswer::from(&principal(app, ctx, req).await?.user))
}
