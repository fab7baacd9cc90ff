//! `POST /auth/v1/signin/with/provider`: credentials for the account a provider token's
//! identity is linked to.

use lambda_http::Request;

use super::body;
use crate::error::AuthResult;
use crate::http::wire::{CredentialsAnswer, ProviderTokenOnlyBody};
use crate::http::RequestContext;
use crate::ops::providers;
use crate::ops::App;

pub(super) async fn handle(
    app: &App,
    req: &Request,
    ctx: &RequestContext,
) -> AuthResult<CredentialsAnswer> {
    let token = body::<ProviderTokenOnlyBody>(req)?.parse()?;
    Ok(providers::sign_in_with_provider(app, token, ctx.issuer()?)
        .await?
        .into())
}
