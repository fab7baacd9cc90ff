//! `POST /auth/v1/user/signout`: ends the bearer's session, or without a bearer token the
//! session of the token in the body.

use lambda_http::Request;

use super::{bearer, body, principal};
use crate::error::AuthResult;
use crate::http::wire::{required, Empty, RevokeBody};
use crate::http::RequestContext;
use crate::ops::accounts;
use crate::ops::App;

pub(super) async fn handle(app: &App, req: &Request, ctx: &RequestContext) -> AuthResult<Empty> {
    let b: RevokeBody = body(req)?;
    match bearer(req) {
        Some(_) => accounts::sign_out(app, &principal(app, ctx, req).await?).await?,
        None => {
            let token = required(b.token, "token")?;
            accounts::revoke(app, &token, ctx.issuer()?).await?
        }
    }
    Ok(Empty {})
}
