//! `POST /auth/v1/user/provider/bind`: links the identity of a provider token to the
//! bearer's account.

use lambda_http::Request;

use super::{body, caller};
use crate::error::AuthResult;
use crate::http::wire::{Empty, ProviderTokenOnlyBody};
use crate::http::RequestContext;
use crate::ops::providers;
use crate::ops::App;

pub(super) async fn handle(app: &App, req: &Request, ctx: &RequestContext) -> AuthResult<Empty> {
    let who = caller(app, ctx, req)?;
    let token = body::<ProviderTokenOnlyBody>(req)?.parse()?;
    providers::bind_provider(app, &who, token).await?;
    Ok(Empty {})
}
