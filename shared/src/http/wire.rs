//! The wire types and readings that more than one operation shares; those of a single
//! operation are in its module under `http::operations`. Raw strings stop at these modules:
//! what reaches `ops` is typed.

use serde::{Deserialize, Serialize};

use crate::domain::{Address, SecretToken, UnixTime};
use crate::error::AuthError;
use crate::ops::Credentials;

/// A required field, or `invalid_argument` naming it.
pub fn required<T>(value: Option<T>, field: &str) -> Result<T, AuthError> {
    value.ok_or_else(|| AuthError::InvalidArgument(format!("{field} is required")))
}

/// The body of revoke and sign-out.
#[derive(Deserialize)]
pub struct RevokeBody {
    pub token: Option<String>,
}

/// The body of binding a provider and of signing in with one.
#[derive(Deserialize)]
pub struct ProviderTokenOnlyBody {
    pub provider_token: Option<String>,
}

impl ProviderTokenOnlyBody {
    pub fn parse(self) -> Result<SecretToken, AuthError> {
        Ok(SecretToken::parse(
            "provider_token",
            &required(self.provider_token, "provider_token")?,
        )?)
    }
}

/// Exactly one of `email` and `phone_number`.
pub fn one_address(
    email: Option<String>,
    phone_number: Option<String>,
    default_country_code: &str,
) -> Result<Address, AuthError> {
    match (email, phone_number) {
        (Some(email), None) => Ok(Address::Email(crate::domain::Email::parse(&email)?)),
        (None, Some(phone)) => Ok(Address::Phone(crate::domain::PhoneNumber::parse(
            &phone,
            default_country_code,
        )?)),
        (Some(_), Some(_)) => Err(AuthError::InvalidArgument(
            "give either email or phone_number, not both".into(),
        )),
        (None, None) => Err(AuthError::InvalidArgument(
            "email or phone_number is required".into(),
        )),
    }
}

/// What every way of signing in answers.
#[derive(Serialize)]
pub struct CredentialsAnswer {
    pub token_type: &'static str,
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub scope: &'static str,
    pub sub: String,
}

impl From<Credentials> for CredentialsAnswer {
    fn from(c: Credentials) -> Self {
        Self {
            token_type: "Bearer",
            access_token: c.access_token,
            refresh_token: c.refresh_token.expose(),
            expires_in: c.expires_in,
            scope: "user",
            sub: c.user_id.as_str().to_string(),
        }
    }
}

pub fn rfc3339(time: UnixTime) -> String {
    time::OffsetDateTime::from_unix_timestamp(time)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// `{}`: the SDK needs a JSON body even when there is nothing to say.
#[derive(Serialize)]
pub struct Empty {}
