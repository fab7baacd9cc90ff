//! `POST /auth/v1/verification/verify`: a verification token for a code that was sent.

use lambda_http::Request;
use serde::{Deserialize, Serialize};

use super::body;
use crate::domain::{VerificationCode, VerificationId};
use crate::error::{AuthError, AuthResult};
use crate::http::wire::required;
use crate::http::RequestContext;
use crate::ops::association;
use crate::ops::App;

#[derive(Deserialize)]
pub struct VerifyBody {
    pub verification_id: Option<String>,
    pub verification_code: Option<String>,
}

impl VerifyBody {
    pub fn parse(self) -> AuthResult<(VerificationId, VerificationCode)> {
        let id = required(self.verification_id, "verification_id")?;
        let code =
            VerificationCode::parse(&required(self.verification_code, "verification_code")?)?;
        // An unknown id is the same answer as a wrong code: nothing to probe.
        let id = VerificationId::parse(&id).map_err(|_| AuthError::InvalidVerificationCode)?;
        Ok((id, code))
    }
}

#[derive(Serialize)]
pub struct VerifyAnswer {
    pub verification_token: String,
    pub expires_in: i64,
}

pub(super) async fn handle(
    app: &App,
    req: &Request,
    ctx: &RequestContext,
) -> AuthResult<VerifyAnswer> {
    let (id, code) = body::<VerifyBody>(req)?.parse()?;
    let grant = association::verify(app, id, code, ctx.client_ip).await?;
    Ok(VerifyAnswer {
        verification_token: grant.verification_token.expose().to_string(),
        expires_in: grant.expires_in,
    })
}
