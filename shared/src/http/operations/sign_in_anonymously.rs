//! `POST /auth/v1/signin/anonymously`: an account with no identifier yet.

use lambda_http::Request;
use serde::Deserialize;

use super::body;
use crate::error::AuthResult;
use crate::http::wire::CredentialsAnswer;
use crate::http::RequestContext;
use crate::ops::{otp, App};

/// `{}` is all the SDK sends (sometimes a `provider_token`, which means nothing here); other
/// keys are ignored, as elsewhere.
#[derive(Deserialize)]
struct AnonymousBody {}

/// The SDK also sends `Authorization: Basic <client id:secret>` when it signs in again after
/// a failed refresh: that names the app, not a user, and is not read.
pub(super) async fn handle(
    app: &App,
    req: &Request,
    ctx: &RequestContext,
) -> AuthResult<CredentialsAnswer> {
    let AnonymousBody {} = body(req)?;
    Ok(otp::sign_in_anonymously(app, ctx.client_ip, ctx.issuer()?)
        .await?
        .into())
}
