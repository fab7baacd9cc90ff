//! `POST /auth/v1/reset`: `resetPasswordForEmail`'s `updateUser`, v1 `resetPassword`. Every
//! session of the account ends.

use lambda_http::Request;
use serde::Deserialize;

use super::body;
use super::change_password::{new_password, token};
use crate::domain::VerificationCode;
use crate::error::{AuthError, AuthResult};
use crate::http::wire::{one_address, Empty};
use crate::http::RequestContext;
use crate::ops::passwords::{self, ResetPassword};
use crate::ops::App;

#[derive(Deserialize)]
struct ResetBody {
    email: Option<String>,
    /// Exactly as the user typed it (the SDK does not format it here).
    phone_number: Option<String>,
    new_password: Option<String>,
    verification_token: Option<String>,
}

pub(super) async fn handle(app: &App, req: &Request, _ctx: &RequestContext) -> AuthResult<Empty> {
    let b: ResetBody = body(req)?;
    let country = app.settings.default_country_code.as_str();
    let address = one_address(b.email, b.phone_number, country)?;
    // `forceResetPwdByPhoneCode` sends the code itself, which proves nothing without the id
    // of the code it answers.
    if let Some(raw) = &b.verification_token {
        if VerificationCode::parse(raw).is_ok() {
            return Err(AuthError::InvalidArgument(
                "verification_token: this is a verification code; exchange it at /verification/verify for a token first".into(),
            ));
        }
    }
    let request = ResetPassword {
        address,
        new_password: new_password(b.new_password)?,
        verification_token: token("verification_token", b.verification_token)?,
    };
    passwords::reset_password(app, request).await?;
    Ok(Empty {})
}
