//! Wire types: request bodies as the SDK sends them, and answers as it expects them.
//! Conversions into typed operation input live here, so raw strings stop at this module.

use serde::{Deserialize, Serialize};

use crate::domain::{Address, ProviderLink, UnixTime, User};
use crate::error::AuthError;
use crate::ops::Credentials;

/// A required field, or `invalid_argument` naming it.
pub fn required<T>(value: Option<T>, field: &str) -> Result<T, AuthError> {
    value.ok_or_else(|| AuthError::InvalidArgument(format!("{field} is required")))
}

#[derive(Deserialize)]
pub struct SignUpBody {
    pub username: Option<String>,
    pub email: Option<String>,
    pub phone_number: Option<String>,
    pub verification_token: Option<String>,
    pub provider_token: Option<String>,
    pub password: Option<String>,
    pub name: Option<String>,
}

#[derive(Deserialize)]
pub struct SignInBody {
    pub username: Option<String>,
    pub password: Option<String>,
    pub verification_token: Option<String>,
}

#[derive(Deserialize)]
pub struct TokenBody {
    pub grant_type: Option<String>,
    pub refresh_token: Option<String>,
}

#[derive(Deserialize)]
pub struct RevokeBody {
    pub token: Option<String>,
}

#[derive(Deserialize)]
pub struct SudoBody {
    pub password: Option<String>,
    pub verification_token: Option<String>,
}

#[derive(Deserialize)]
pub struct VerificationBody {
    pub email: Option<String>,
    pub phone_number: Option<String>,
    pub target: Option<String>,
}

#[derive(Deserialize)]
pub struct VerifyBody {
    pub verification_id: Option<String>,
    pub verification_code: Option<String>,
}

/// `auth.sudo()` resolves to `{sudo_token, expires_in}`, and code copied from the user
/// documents passes that whole object on as `sudo_token`: accept both.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum SudoTokenField {
    Plain(String),
    Wrapped { sudo_token: String },
}

impl SudoTokenField {
    pub fn into_inner(self) -> String {
        match self {
            SudoTokenField::Plain(token) | SudoTokenField::Wrapped { sudo_token: token } => token,
        }
    }
}

#[derive(Deserialize)]
pub struct ContactBody {
    pub sudo_token: Option<SudoTokenField>,
    pub verification_token: Option<String>,
    pub email: Option<String>,
    pub phone_number: Option<String>,
}

#[derive(Deserialize)]
pub struct ProviderTokenBody {
    pub provider_id: Option<String>,
    pub provider_code: Option<String>,
    pub provider_redirect_uri: Option<String>,
}

#[derive(Deserialize)]
pub struct ProviderTokenOnlyBody {
    pub provider_token: Option<String>,
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
            scope: if c.anonymous { "anonymous" } else { "user" },
            sub: c.user_id.as_str().to_string(),
        }
    }
}

#[derive(Serialize)]
pub struct ProviderSummary {
    pub id: &'static str,
    pub provider_user_id: String,
    pub name: String,
}

impl From<&ProviderLink> for ProviderSummary {
    fn from(link: &ProviderLink) -> Self {
        Self {
            id: link.identity.provider.as_str(),
            provider_user_id: link.identity.subject.clone(),
            name: link.profile.name.clone().unwrap_or_default(),
        }
    }
}

#[derive(Serialize)]
pub struct UserAnswer {
    pub sub: String,
    pub name: String,
    pub username: String,
    pub email: String,
    pub phone_number: String,
    pub picture: String,
    pub providers: Vec<ProviderSummary>,
    pub created_at: String,
    pub updated_at: String,
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

impl From<&User> for UserAnswer {
    fn from(user: &User) -> Self {
        Self {
            sub: user.id.as_str().to_string(),
            name: user
                .name
                .as_ref()
                .map(|n| n.as_str().to_string())
                .or_else(|| user.providers.iter().find_map(|p| p.profile.name.clone()))
                // The SDK's `user.is_anonymous` is `name === "anonymous"`.
                .or_else(|| user.expires_at.map(|_| "anonymous".to_string()))
                .unwrap_or_default(),
            username: user
                .username
                .as_ref()
                .map(|u| u.as_str().to_string())
                .unwrap_or_default(),
            email: user
                .email
                .as_ref()
                .map(|e| e.as_str().to_string())
                .unwrap_or_default(),
            phone_number: user.phone.as_ref().map(|p| p.display()).unwrap_or_default(),
            picture: user
                .providers
                .iter()
                .find_map(|p| p.profile.picture.clone())
                .unwrap_or_default(),
            providers: user.providers.iter().map(ProviderSummary::from).collect(),
            created_at: rfc3339(user.created_at),
            updated_at: rfc3339(user.updated_at),
        }
    }
}

#[derive(Serialize)]
pub struct SudoAnswer {
    pub sudo_token: String,
    pub expires_in: i64,
}

#[derive(Serialize)]
pub struct VerificationAnswer {
    pub verification_id: String,
    pub expires_in: i64,
    pub is_user: bool,
}

#[derive(Serialize)]
pub struct VerifyAnswer {
    pub verification_token: String,
    pub expires_in: i64,
}

#[derive(Serialize)]
pub struct ProviderProfileAnswer {
    pub provider_id: &'static str,
    pub sub: String,
    pub name: String,
    pub picture: String,
}

#[derive(Serialize)]
pub struct ProviderTokenAnswer {
    pub provider_token: String,
    pub expires_in: i64,
    pub provider_profile: ProviderProfileAnswer,
}

#[derive(Serialize)]
pub struct ProviderListItem {
    pub id: &'static str,
    pub name: &'static str,
    pub provider_user_name: String,
    pub bind: bool,
}

#[derive(Serialize)]
pub struct ProviderListAnswer {
    pub total: usize,
    pub data: Vec<ProviderListItem>,
}

/// `{}`: the SDK needs a JSON body even when there is nothing to say.
#[derive(Serialize)]
pub struct Empty {}

/// The OpenID Connect discovery document (the part a JWT verifier reads: API Gateway's JWT
/// authorizer needs `issuer` and `jwks_uri`).
#[derive(Serialize)]
pub struct DiscoveryAnswer<'a> {
    pub issuer: &'a str,
    pub jwks_uri: String,
    pub token_endpoint: String,
    pub response_types_supported: &'static [&'static str],
    pub subject_types_supported: &'static [&'static str],
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: &'static [&'static str],
    pub claims_supported: &'static [&'static str],
}
