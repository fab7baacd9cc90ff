//! The wire types and readings that more than one operation shares; those of a single
//! operation are in its module under `http::operations`. Raw strings stop at these modules:
//! what reaches `ops` is typed.

use serde::{Deserialize, Serialize};

use crate::domain::{rfc3339, Address, ProviderLink, SecretToken, User};
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
            scope: c.scope.as_str(),
            sub: c.user_id.as_str().to_string(),
        }
    }
}

/// The `provider_id` of custom-login tickets, in requests and in the user's `providers`.
pub const CUSTOM_PROVIDER_ID: &str = "custom";

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
            name: link
                .profile
                .name
                .as_ref()
                .map(|n| n.as_str().to_string())
                .unwrap_or_default(),
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
    /// `MALE`, `FEMALE`, or `UNKNOWN` when unset.
    pub gender: &'static str,
    /// `"SET"` when the account has a password (the SDK's `hasPassword`), absent otherwise:
    /// nothing of the hash is ever answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<&'static str>,
    /// A bound email was proven by a code, so it is verified whenever there is one.
    pub email_verified: bool,
    /// Not stored: an empty string, which the SDK passes on as is.
    pub locale: &'static str,
    /// Not used by this service: always empty (the SDK maps it to `user.role`).
    pub groups: Vec<String>,
    pub providers: Vec<ProviderSummary>,
    pub created_at: String,
    pub updated_at: String,
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

impl From<&User> for UserAnswer {
    fn from(user: &User) -> Self {
        Self {
            sub: user.id.as_str().to_string(),
            name: user
                .name
                .as_ref()
                .map(|n| n.as_str().to_string())
                .or_else(|| {
                    user.providers
                        .iter()
                        .find_map(|p| p.profile.name.as_ref().map(|n| n.as_str().to_string()))
                })
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
                .picture
                .as_ref()
                .map(|p| p.as_str().to_string())
                .or_else(|| {
                    user.providers
                        .iter()
                        .find_map(|p| p.profile.picture.as_ref().map(|p| p.as_str().to_string()))
                })
                .unwrap_or_default(),
            gender: user.gender.map_or("UNKNOWN", |g| g.as_str()),
            password: user.password_hash.as_ref().map(|_| "SET"),
            email_verified: user.email.is_some(),
            locale: "",
            groups: Vec::new(),
            providers: user
                .providers
                .iter()
                .map(ProviderSummary::from)
                .chain(user.custom_uid.as_ref().map(|uid| ProviderSummary {
                    id: CUSTOM_PROVIDER_ID,
                    provider_user_id: uid.as_str().to_string(),
                    name: String::new(),
                }))
                .collect(),
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
#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{User, UserId};

    fn user(password_hash: Option<&str>) -> User {
        User {
            id: UserId::generate(),
            username: None,
            email: None,
            phone: None,
            name: None,
            password_hash: password_hash.map(str::to_string),
            providers: Vec::new(),
            custom_uid: None,
            picture: None,
            gender: None,
            created_at: 0,
            updated_at: 0,
            version: 1,
            expires_at: None,
            session_epoch: 0,
        }
    }

    #[test]
    fn the_user_says_set_for_a_password_and_nothing_without_one() {
        let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
        let with = serde_json::to_value(UserAnswer::from(&user(Some(hash)))).unwrap();
        assert_eq!(with["password"], "SET");
        assert!(!with.to_string().contains("argon2"), "{with}");
        let without = serde_json::to_value(UserAnswer::from(&user(None))).unwrap();
        assert!(without.get("password").is_none(), "{without}");
        assert_eq!(without["gender"], "UNKNOWN");
    }

    #[test]
    fn the_user_names_its_custom_login_uid_among_its_providers() {
        let mut custom = user(None);
        custom.custom_uid = Some(crate::domain::CustomUid::parse("Emp#0042").unwrap());
        let answer = serde_json::to_value(UserAnswer::from(&custom)).unwrap();
        assert_eq!(
            answer["providers"],
            serde_json::json!([{"id": "custom", "provider_user_id": "Emp#0042", "name": ""}])
        );
    }
}
