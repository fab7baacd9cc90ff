//! Wire bodies, parsing and answers of the password operations: change, reset, and ending
//! every session of the caller.

use lambda_http::Request;
use serde::Deserialize;

use super::wire::{one_address, required, Empty, SudoTokenField};
use super::{body, json, principal, RequestContext};
use crate::domain::{Password, SecretToken, VerificationCode};
use crate::error::{AuthError, AuthResult};
use crate::ops::passwords::{self, ChangePassword, ResetPassword};
use crate::ops::App;

/// `PATCH /user/password`: `setPassword`, and `updatePasswordByOld` after its sudo.
#[derive(Deserialize)]
struct ChangePasswordBody {
    sudo_token: Option<SudoTokenField>,
    new_password: Option<String>,
}

/// `POST /reset`: `resetPasswordForEmail`'s `updateUser`, v1 `resetPassword`.
#[derive(Deserialize)]
struct ResetBody {
    email: Option<String>,
    /// Exactly as the user typed it (the SDK does not format it here).
    phone_number: Option<String>,
    new_password: Option<String>,
    verification_token: Option<String>,
}

/// A missing or unreadable sudo or verification token is `permission_denied`, as the
/// contract names a missing token.
fn token(field: &'static str, raw: Option<String>) -> AuthResult<SecretToken> {
    raw.and_then(|raw| SecretToken::parse(field, &raw).ok())
        .ok_or(AuthError::PermissionDenied(match field {
            "sudo_token" => "a sudo_token from /user/sudo is required",
            _ => "a verification_token from /verification/verify is required",
        }))
}

fn new_password(raw: Option<String>) -> AuthResult<Password> {
    Ok(Password::parse(&required(raw, "new_password")?)?)
}

pub(super) async fn change_password(
    app: &App,
    _param: Option<String>,
    req: &Request,
    ctx: &RequestContext,
) -> AuthResult<serde_json::Value> {
    let who = principal(app, ctx, req).await?;
    let b: ChangePasswordBody = body(req)?;
    let request = ChangePassword {
        sudo_token: token("sudo_token", b.sudo_token.map(SudoTokenField::into_inner))?,
        new_password: new_password(b.new_password)?,
    };
    passwords::change_password(app, &who, request).await?;
    json(Empty {})
}

pub(super) async fn reset_password(
    app: &App,
    _param: Option<String>,
    req: &Request,
    _ctx: &RequestContext,
) -> AuthResult<serde_json::Value> {
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
    json(Empty {})
}

pub(super) async fn revoke_all(
    app: &App,
    _param: Option<String>,
    req: &Request,
    ctx: &RequestContext,
) -> AuthResult<serde_json::Value> {
    let who = principal(app, ctx, req).await?;
    passwords::revoke_all(app, &who).await?;
    json(Empty {})
}
