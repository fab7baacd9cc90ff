//! `PATCH /auth/v1/user/password`: `setPassword`, and `updatePasswordByOld` after its sudo.
//! The other sessions and every sudo token of the account end; the caller's session stays.

use lambda_http::Request;
use serde::Deserialize;

use super::{body, principal};
use crate::domain::{Password, SecretToken};
use crate::error::{AuthError, AuthResult};
use crate::http::wire::{required, Empty, SudoTokenField};
use crate::http::RequestContext;
use crate::ops::passwords::{self, ChangePassword};
use crate::ops::App;

#[derive(Deserialize)]
struct ChangePasswordBody {
    sudo_token: Option<SudoTokenField>,
    new_password: Option<String>,
}

/// A missing or unreadable sudo or verification token is `permission_denied`, as the
/// contract names a missing token.
pub(super) fn token(field: &'static str, raw: Option<String>) -> AuthResult<SecretToken> {
    raw.and_then(|raw| SecretToken::parse(field, &raw).ok())
        .ok_or(AuthError::PermissionDenied(match field {
            "sudo_token" => "a sudo_token from /user/sudo is required",
            _ => "a verification_token from /verification/verify is required",
        }))
}

pub(super) fn new_password(raw: Option<String>) -> AuthResult<Password> {
    Ok(Password::parse(&required(raw, "new_password")?)?)
}

pub(super) async fn handle(app: &App, req: &Request, ctx: &RequestContext) -> AuthResult<Empty> {
    let who = principal(app, ctx, req).await?;
    let b: ChangePasswordBody = body(req)?;
    let request = ChangePassword {
        sudo_token: token("sudo_token", b.sudo_token.map(SudoTokenField::into_inner))?,
        new_password: new_password(b.new_password)?,
    };
    passwords::change_password(app, &who, request).await?;
    Ok(Empty {})
}
