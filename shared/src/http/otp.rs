//! Wire glue of sign-in by code, anonymous sign-in and binding a verified address: their
//! bodies, parsing into typed input, and answers.

use lambda_http::Request;
use serde::Deserialize;

use super::wire::{required, CredentialsAnswer, Empty};
use super::{body, json, principal, RequestContext};
use crate::domain::{Address, Email, PhoneNumber, SecretToken};
use crate::error::{AuthError, AuthResult};
use crate::ops::accounts::LoginName;
use crate::ops::{otp, App};

/// `POST /signin` with a `verification_token` and no password (`verifyOtp`, and
/// `reauthenticate().updateUser({nonce})`). `username` names the token's address, or is `""`
/// (`"+86 "` for a phone user) when the SDK leaves it to the token.
pub(super) async fn sign_in_with_code(
    app: &App,
    username: Option<String>,
    verification_token: String,
    ctx: &RequestContext,
) -> AuthResult<serde_json::Value> {
    let country = app.settings.default_country_code.as_str();
    let claimed = match username.as_deref().map(str::trim) {
        None | Some("") => None,
        // A country code alone: what the SDK makes of an empty phone number.
        Some(code)
            if code.len() > 1
                && code.starts_with('+')
                && code[1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            None
        }
        Some(name) => Some(LoginName::parse(name, country)?),
    };
    let token = SecretToken::parse("verification_token", &verification_token)?;
    json(CredentialsAnswer::from(
        otp::sign_in_with_code(app, claimed, token, ctx.client_ip, &ctx.issuer).await?,
    ))
}

/// `{}` is all the SDK sends; other keys are ignored, as elsewhere.
#[derive(Deserialize)]
struct AnonymousBody {}

/// `POST /signin/anonymously`. The SDK also sends `Authorization: Basic <client id:secret>`
/// when it signs in again after a failed refresh: that names the app, not a user, and is not
/// read.
pub(super) async fn sign_in_anonymously(
    app: &App,
    _param: Option<String>,
    req: &Request,
    ctx: &RequestContext,
) -> AuthResult<serde_json::Value> {
    let AnonymousBody {} = body(req)?;
    json(CredentialsAnswer::from(
        otp::sign_in_anonymously(app, ctx.client_ip, &ctx.issuer).await?,
    ))
}

/// `POST /user/basic/edit`, its address part: `updateUser({email})` sends `{"email"}`, and
/// `updateUser({phone})` `{"phone": "+86 137…"}`, after the code is verified.
#[derive(Deserialize)]
struct BasicEditBody {
    email: Option<String>,
    phone: Option<String>,
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

pub(super) async fn edit_basic_info(
    app: &App,
    _param: Option<String>,
    req: &Request,
    ctx: &RequestContext,
) -> AuthResult<serde_json::Value> {
    let who = principal(app, ctx, req).await?;
    let b: BasicEditBody = body(req)?;
    if let Some(field) = b.other.keys().next() {
        return Err(AuthError::InvalidArgument(format!(
            "{field} cannot be changed here; give email or phone"
        )));
    }
    let country = app.settings.default_country_code.as_str();
    let address = match (b.email, b.phone) {
        (Some(email), None) => Address::Email(Email::parse(&email)?),
        (None, Some(phone)) => Address::Phone(PhoneNumber::parse(&phone, country)?),
        (Some(_), Some(_)) => {
            return Err(AuthError::InvalidArgument(
                "give either email or phone, not both".into(),
            ))
        }
        (None, None) => required(None, "email or phone")?,
    };
    otp::bind_verified_address(app, &who, address).await?;
    json(Empty {})
}
