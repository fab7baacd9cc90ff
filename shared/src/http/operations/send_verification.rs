//! `POST /auth/v1/verification`: sends a code to an email address or phone number.

use lambda_http::Request;
use serde::{Deserialize, Serialize};

use super::{bearer, body, caller};
use crate::domain::Address;
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

impl VerificationBody {
    /// `default_country_code` reads a phone number given without one.
    pub fn parse(self, default_country_code: &str) -> AuthResult<(Address, Target)> {
        let address = one_address(self.email, self.phone_number, default_country_code)?;
        let target = match self.target.as_deref().map(str::trim) {
            None | Some("") | Some("ANY") => Target::Any,
            Some("USER") => Target::User,
            Some("NOT_USER") => Target::NotUser,
            Some("CUR_USER") => Target::CurrentUser,
            Some(_) => {
                return Err(AuthError::InvalidArgument(
                    "target must be ANY, USER, NOT_USER or CUR_USER".into(),
                ))
            }
        };
        Ok((address, target))
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
    let (address, target) =
        body::<VerificationBody>(req)?.parse(&app.settings.default_country_code)?;
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
