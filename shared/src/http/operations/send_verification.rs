//! `POST /auth/v1/verification`: sends a code to an email address or phone number.

use lambda_http::Request;
use serde::{Deserialize, Serialize};

use super::{bearer, body, caller};
use crate::error::{AuthError, AuthResult};
use crate::http::wire::one_address;
use crate::http::RequestContext;
use crate::ops::association::{self, Target};
use crate::ops::App;

#[derive(Deserialize)]
pub struct VerificationBody {
    pub email: Option<String>,
    pub phone_number: Option<String>,
    /// Whose address it must be: `ANY` (or absent), `USER`, `NOT_USER` or `CUR_USER`.
    pub target: Option<String>,
}

fn target(raw: Option<&str>) -> AuthResult<Target> {
    match raw.map(str::trim) {
        None | Some("") | Some("ANY") => Ok(Target::Any),
        Some("USER") => Ok(Target::User),
        Some("NOT_USER") => Ok(Target::NotUser),
        Some("CUR_USER") => Ok(Target::CurrentUser),
        Some(_) => Err(AuthError::InvalidArgument(
            "target must be ANY, USER, NOT_USER or CUR_USER".into(),
        )),
    }
}

#[derive(Serialize)]
pub struct VerificationAnswer {
    pub verification_id: String,
    pub expires_in: i64,
    pub is_user: bool,
}

pub(super) async fn handle(
    app: &App,
    req: &Request,
    ctx: &RequestContext,
) -> AuthResult<VerificationAnswer> {
    let b: VerificationBody = body(req)?;
    let address = one_address(b.email, b.phone_number, &app.settings.default_country_code)?;
    let target = target(b.target.as_deref())?;
    // The bearer token is optional here, but one that is given must be valid.
    let who = match bearer(req) {
        Some(_) => Some(caller(app, ctx, req)?),
        None => None,
    };
    let sent =
        association::send_verification(app, who.as_ref(), address, target, ctx.client_ip).await?;
    Ok(VerificationAnswer {
        verification_id: sent.verification_id.as_str().to_string(),
        expires_in: sent.expires_in,
        is_user: sent.is_user,
    })
}
