//! `PATCH /auth/v1/user/contact`: binds a verified email address or phone number to the
//! bearer's account, under a sudo token.

use lambda_http::Request;
use serde::Deserialize;

use super::{body, principal};
use crate::domain::SecretToken;
use crate::error::AuthResult;
use crate::http::wire::{one_address, required, Empty, SudoTokenField};
use crate::http::RequestContext;
use crate::ops::association::{self, BindContact};
use crate::ops::App;

#[derive(Deserialize)]
pub struct ContactBody {
    pub sudo_token: Option<SudoTokenField>,
    pub verification_token: Option<String>,
    pub email: Option<String>,
    pub phone_number: Option<String>,
}

impl ContactBody {
    /// `default_country_code` reads a phone number given without one.
    pub fn parse(self, default_country_code: &str) -> AuthResult<BindContact> {
        Ok(BindContact {
            sudo_token: SecretToken::parse(
                "sudo_token",
                &required(self.sudo_token, "sudo_token")?.into_inner(),
            )?,
            verification_token: SecretToken::parse(
                "verification_token",
                &required(self.verification_token, "verification_token")?,
            )?,
            address: one_address(self.email, self.phone_number, default_country_code)?,
        })
    }
}

pub(super) async fn handle(app: &App, req: &Request, ctx: &RequestContext) -> AuthResult<Empty> {
    let who = principal(app, ctx, req).await?;
    let request = body::<ContactBody>(req)?.parse(&app.settings.default_country_code)?;
    association::bind_contact(app, &who, request).await?;
    Ok(Empty {})
}
