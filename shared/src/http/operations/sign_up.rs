//! `POST /auth/v1/signup`: a new account by username, by a verified address, or by a
//! provider token.

use lambda_http::Request;
use serde::Deserialize;

use super::body;
use crate::domain::{DisplayName, Password, SecretToken, Username};
use crate::error::{AuthError, AuthResult};
use crate::http::wire::{one_address, required, CredentialsAnswer};
use crate::http::RequestContext;
use crate::ops::accounts::{self, NewIdentity, SignUp};
use crate::ops::App;

#[derive(Deserialize)]
pub struct SignUpBody {
    pub username: Option<String>,
    pub email: Option<String>,
    pub phone_number: Option<String>,
    pub verification_token: Option<String>,
    pub provider_token: Option<String>,
    pub password: Option<String>,
    pub name: Option<String>,
}

impl SignUpBody {
    /// `default_country_code` reads a phone number given without one.
    pub fn parse(self, default_country_code: &str) -> AuthResult<SignUp> {
        let identity = match (self.username, self.email, self.phone_number) {
            (None, None, None) if self.provider_token.is_some() => NewIdentity::Provider {
                provider_token: SecretToken::parse(
                    "provider_token",
                    &required(self.provider_token, "provider_token")?,
                )?,
            },
            (Some(username), None, None) => NewIdentity::Username(Username::parse(&username)?),
            (None, email, phone) if email.is_some() || phone.is_some() => NewIdentity::Address {
                address: one_address(email, phone, default_country_code)?,
                verification_token: SecretToken::parse(
                    "verification_token",
                    &required(self.verification_token, "verification_token")?,
                )?,
            },
            (None, None, None) => {
                return Err(AuthError::InvalidArgument(
                    "username, email, phone_number or provider_token is required".into(),
                ))
            }
            _ => {
                return Err(AuthError::InvalidArgument(
                    "give one of username, email and phone_number".into(),
                ))
            }
        };
        Ok(SignUp {
            identity,
            password: self.password.as_deref().map(Password::parse).transpose()?,
            name: self.name.as_deref().map(DisplayName::parse).transpose()?,
        })
    }
}

pub(super) async fn handle(
    app: &App,
    req: &Request,
    ctx: &RequestContext,
) -> AuthResult<CredentialsAnswer> {
    let request = body::<SignUpBody>(req)?.parse(&app.settings.default_country_code)?;
    let credentials = accounts::sign_up(app, request, ctx.client_ip, ctx.issuer()?).await?;
    Ok(credentials.into())
}
