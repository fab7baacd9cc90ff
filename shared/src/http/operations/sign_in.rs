//! `POST /auth/v1/signin`: a username, email or phone number and its password; or a
//! verification token of a code sent to an address (`verifyOtp`, and
//! `reauthenticate().updateUser({nonce})`).

use lambda_http::Request;
use serde::Deserialize;

use super::body;
use crate::domain::{Password, SecretToken};
use crate::error::{AuthError, AuthResult};
use crate::http::wire::{required, CredentialsAnswer};
use crate::http::RequestContext;
use crate::ops::accounts::{self, LoginName};
use crate::ops::{otp, App};

#[derive(Deserialize)]
pub struct SignInBody {
    /// A username, an email address or a phone number.
    pub username: Option<String>,
    pub password: Option<String>,
    pub verification_token: Option<String>,
}

/// How the caller proves the account is theirs.
pub enum SignInProof {
    Password(LoginName, Password),
    /// `claimed`: the address the SDK names beside the token, `None` when it leaves it to
    /// the token (`""`, or `"+86 "` for a phone user).
    Code {
        claimed: Option<LoginName>,
        verification_token: SecretToken,
    },
}

impl SignInBody {
    /// `default_country_code` reads a phone number given without one.
    pub fn parse(self, default_country_code: &str) -> AuthResult<SignInProof> {
        match (self.password, self.verification_token) {
            (Some(_), Some(_)) => Err(AuthError::InvalidArgument(
                "give either password or verification_token".into(),
            )),
            (None, Some(token)) => {
                let claimed =
                    LoginName::parse_beside_token(self.username.as_deref(), default_country_code)?;
                Ok(SignInProof::Code {
                    claimed,
                    verification_token: SecretToken::parse("verification_token", &token)?,
                })
            }
            (password, None) => {
                // A name that cannot be an account's is the same answer as a wrong password.
                let login =
                    LoginName::parse(&required(self.username, "username")?, default_country_code)
                        .map_err(|_| AuthError::InvalidUsernameOrPassword)?;
                let password = Password::parse(&required(password, "password")?)?;
                Ok(SignInProof::Password(login, password))
            }
        }
    }
}

pub(super) async fn handle(
    app: &App,
    req: &Request,
    ctx: &RequestContext,
) -> AuthResult<CredentialsAnswer> {
    let credentials = match body::<SignInBody>(req)?.parse(&app.settings.default_country_code)? {
        SignInProof::Password(login, password) => {
            accounts::sign_in(app, login, password, ctx.client_ip, ctx.issuer()?).await?
        }
        SignInProof::Code {
            claimed,
            verification_token,
        } => {
            otp::sign_in_with_code(
                app,
                claimed,
                verification_token,
                ctx.client_ip,
                ctx.issuer()?,
            )
            .await?
        }
    };
    Ok(credentials.into())
}
