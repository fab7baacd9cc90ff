//! `DELETE /auth/v1/user/revoke/all`: `authApi.revokeAllDevices()`, every session of the
//! caller's account ends, the caller's own included.

use lambda_http::Request;

use super::principal;
use crate::error::AuthResult;
use crate::http::wire::Empty;
use crate::http::RequestContext;
use crate::ops::passwords;
use crate::ops::App;

pub(super) async fn handle(app: &App, req: &Request, ctx: &RequestContext) -> AuthResult<Empty> {
    let who = principal(app, ctx, req).await?;
    passwords::revoke_all(app, &who).await?;
    Ok(Empty {})
}
