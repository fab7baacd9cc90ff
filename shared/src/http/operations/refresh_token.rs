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

impl TokenBody {
    pub fn parse(self) -> AuthResult<RefreshToken> {
        match self.grant_type.as_deref() {
            None | Some("refresh_token") => {}
            Some(_) => {
                return Err(AuthError::InvalidArgument(
                    "grant_type must be refresh_token".into(),
                ))
            }
        }
        RefreshToken::parse(&required(self.refresh_token, "refresh_token")?)
            .map_err(|_| AuthError::InvalidGrant)
    }
}

pub(super) async fn handle(
    app: &App,
    req: &Request,
    ctx: &RequestContext,
) -> AuthResult<CredentialsAnswer> {
    let token = body::<TokenBody>(req)?.parse()?;
    Ok(accounts::refresh(app, token, ctx.issuer()?).await?.into())
}
