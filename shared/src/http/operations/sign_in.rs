//! `POST /auth/v1/signin`: a username, email or phone number and its password.

use lambda_http::Request;
use serde::Deserialize;

use super::body;
use crate::domain::Password;
use crate::error::{AuthError, AuthResult};
use crate::http::wire::{required, CredentialsAnswer};
use crate::http::RequestContext;
use crate::ops::accounts::{self, LoginName};
use crate::ops::App;

#[derive(Deserialize)]
pub struct SignInBody {
    /// A username, an email address or a phone number.
    pub username: Option<String>,
    pub password: Option<String>,
}

impl SignInBody {
    /// `default_country_code` reads a phone number given without one.
    pub fn parse(self, default_country_code: &str) -> AuthResult<(LoginName, Password)> {
        // A name that cannot be an account's is the same answer as a wrong password.
        let login = LoginName::parse(&required(self.username, "username")?, default_country_code)
            .map_err(|_| AuthError::InvalidUsernameOrPassword)?;
        let password = Password::parse(&required(self.password, "password")?)?;
        Ok((login, password))
    }
}

pub(super) async fn handle(
    app: &App,
    req: &Request,
    ctx: &RequestContext,
) -> AuthResult<CredentialsAnswer> {
    let (login, password) = body::<SignInBody>(req)?.parse(&app.settings.default_country_code)?;
    let credentials = accounts::sign_in(app, login, password, ctx.client_ip, &ctx.issuer).await?;
    Ok(credentials.into())
}
