//! `POST /auth/v1/user/sudo`: a short-lived sudo token for the bearer, by password or by a
//! verification token.

use lambda_http::Request;
use serde::{Deserialize, Serialize};

use super::{body, caller};
use crate::domain::{Password, SecretToken};
use crate::error::{AuthError, AuthResult};
use crate::http::RequestContext;
use crate::ops::association::{self, SudoProof};
use crate::ops::App;

#[derive(Deserialize)]
pub struct SudoBody {
    pub password: Option<String>,
    pub verification_token: Option<String>,
}

impl SudoBody {
    pub fn parse(self) -> AuthResult<SudoProof> {
        match (self.password, self.verification_token) {
            (Some(password), None) => Ok(SudoProof::Password(Password::parse(&password)?)),
            (None, Some(token)) => Ok(SudoProof::VerificationToken(SecretToken::parse(
                "verification_token",
                &token,
            )?)),
            _ => Err(AuthError::InvalidArgument(
                "give either password or verification_token".into(),
            )),
        }
    }
}

#[derive(Serialize)]
pub struct SudoAnswer {
    pub sudo_token: String,
    pub expires_in: i64,
}

pub(super) async fn handle(
    app: &App,
    req: &Request,
    ctx: &RequestContext,
) -> AuthResult<SudoAnswer> {
    let who = caller(app, ctx, req)?;
    let proof = body::<SudoBody>(req)?.parse()?;
    let grant = association::sudo(app, &who, proof).await?;
    Ok(SudoAnswer {
        sudo_token: grant.sudo_token.expose().to_string(),
        expires_in: grant.expires_in,
    })
}
