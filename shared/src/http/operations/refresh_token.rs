//! `POST /auth/v1/token`: new credentials for a refresh token.

use lambda_http::Request;
use serde::Deserialize;

use super::body;
use crate::error::{AuthError, AuthResult};
use crate::http::wire::{required, CredentialsAnswer};
use crate::http::RequestContext;
use crate::ops::accounts;
use crate::ops::{App, RefreshToken};

#[derive(Deserialize)]
pub struct TokenBody {
    /// `refresh_token`, the only grant, or absent.
    pub grant_type: Option<String>,
    pub refresh_token: Option<String>,
}

pub(super) async fn handle(
    app: &App,
    req: &Request,
    ctx: &RequestContext,
) -> AuthResult<CredentialsAnswer> {
    let b: TokenBody = body(req)?;
    match b.grant_type.as_deref() {
        None | Some("refresh_token") => {}
        Some(_) => {
            return Err(AuthError::InvalidArgument(
                "grant_type must be refresh_token".into(),
            ))
        }
    }
    let token = RefreshToken::parse(&required(b.refresh_token, "refresh_token")?)
        .map_err(|_| AuthError::InvalidGrant)?;
    Ok(accounts::refresh(app, token, &ctx.issuer).await?.into())
}
