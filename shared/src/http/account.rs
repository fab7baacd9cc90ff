//! The account family on the wire: deleting the account (`DELETE /user/me?sudo_token=`) and
//! editing the profile (`POST /user/basic/edit`, `PATCH /user/profile`).

use lambda_http::Request;
use serde_json::{Map, Value};

use super::wire::{Empty, UserAnswer};
use super::{body, json, principal, RequestContext};
use crate::domain::{
    Address, DisplayName, Email, Gender, PhoneNumber, Picture, SecretToken, Username,
};
use crate::error::{AuthError, AuthResult};
use crate::ops::profile::{self, ProfileEdit};
use crate::ops::{deletion, App};

/// `DELETE /auth/v1/user/me?sudo_token=<token>`: the token is in the query (the SDK sends no
/// body). A missing, empty or unreadable one (`[object Object]`, when an app passes the whole
/// `auth.sudo()` result) is no proof: `permission_denied`, like a wrong one.
pub(super) async fn delete_me(
    app: &App,
    _param: Option<String>,
    req: &Request,
    ctx: &RequestContext,
) -> AuthResult<Value> {
    let who = principal(app, ctx, req).await?;
    let sudo_token = query_value(req, "sudo_token")
        .and_then(|raw| SecretToken::parse("sudo_token", raw).ok())
        .ok_or(AuthError::PermissionDenied(
            "a live sudo_token of this session is required in the query",
        ))?;
    deletion::delete_account(app, &who, &sudo_token).await?;
    json(Empty {})
}

/// The raw value of a query parameter. Tokens are URL-safe as issued, so no decoding is
/// needed: an encoded value can only be something this service never issued.
fn query_value<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.uri()
        .query()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// The keys `POST /user/basic/edit` takes: what `updateUser` and `updateUserBasicInfo` send.
const BASIC_EDIT_KEYS: [&str; 8] = [
    "nickname",
    "avatar_url",
    "gender",
    "username",
    "user_id",
    "email",
    "phone",
    "description",
];

/// The keys `PATCH /user/profile` takes: what v1 `user.update` sends.
const PROFILE_KEYS: [&str; 4] = ["name", "picture", "gender", "username"];

/// `POST /auth/v1/user/basic/edit`: `updateUser({nickname, avatar_url, gender, ...})` and
/// `updateUserBasicInfo(params)` send their parameters verbatim. Answers `{}`.
pub(super) async fn basic_edit(
    app: &App,
    _param: Option<String>,
    req: &Request,
    ctx: &RequestContext,
) -> AuthResult<Value> {
    let who = principal(app, ctx, req).await?;
    let country = app.settings.default_country_code.as_str();
    let mut edit = ProfileEdit::default();
    for (key, text) in fields(req, &BASIC_EDIT_KEYS)? {
        match key {
            "nickname" => edit.name = Some(clearable(&text, DisplayName::parse)?),
            "avatar_url" => {
                edit.picture = Some(clearable(&text, |raw| Picture::parse("avatar_url", raw))?)
            }
            "gender" => edit.gender = Some(Gender::parse(&text)?),
            "username" => edit.username = Some(Username::parse(&text)?),
            // The documented admin form names the account; a user names only their own.
            "user_id" if text == who.user.id.as_str() => {}
            "user_id" => {
                return Err(AuthError::PermissionDenied(
                    "only the signed-in account's own profile can be edited",
                ))
            }
            "email" => edit.address = Some(Address::Email(Email::parse(&text)?)),
            "phone" => edit.address = Some(Address::Phone(PhoneNumber::parse(&text, country)?)),
            // `description`, the one key left.
            _ => {
                return Err(AuthError::InvalidArgument(
                    "description is not stored by this service".into(),
                ))
            }
        }
    }
    profile::edit_profile(app, &who, edit).await?;
    json(Empty {})
}

/// `PATCH /auth/v1/user/profile`: v1 `user.update({name, ...})`, which stores the answer as
/// the user: it answers what `GET /user/me` answers.
pub(super) async fn patch_profile(
    app: &App,
    _param: Option<String>,
    req: &Request,
    ctx: &RequestContext,
) -> AuthResult<Value> {
    let who = principal(app, ctx, req).await?;
    let mut edit = ProfileEdit::default();
    for (key, text) in fields(req, &PROFILE_KEYS)? {
        match key {
            "name" => edit.name = Some(clearable(&text, DisplayName::parse)?),
            "gender" => edit.gender = Some(Gender::parse(&text)?),
            "username" => edit.username = Some(Username::parse(&text)?),
            _ => edit.picture = Some(clearable(&text, |raw| Picture::parse("picture", raw))?),
        }
    }
    profile::edit_profile(app, &who, edit).await?;
    json(UserAnswer::from(&profile::current(app, &who).await?))
}

/// The body's fields, each one of `keys` with a string value; `null` (like `undefined`, which
/// JSON drops) means "not given". An unknown key is refused, never stored, and not named back:
/// it is the client's text.
fn fields(req: &Request, keys: &[&'static str]) -> AuthResult<Vec<(&'static str, String)>> {
    let body: Map<String, Value> = body(req)?;
    let mut fields = Vec::new();
    for (key, value) in body {
        let key = keys.iter().copied().find(|known| *known == key).ok_or_else(|| {
            AuthError::InvalidArgument(
                "the body has a field this service does not take; see the API reference for the profile fields"
                    .into(),
            )
        })?;
        match value {
            Value::Null => {}
            Value::String(text) => fields.push((key, text)),
            _ => {
                return Err(AuthError::InvalidArgument(format!(
                    "{key} must be a string"
                )))
            }
        }
    }
    Ok(fields)
}

/// An empty string clears the field; anything else must parse.
fn clearable<T, E: Into<AuthError>>(
    text: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> AuthResult<Option<T>> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    parse(text).map(Some).map_err(Into::into)
}

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
            picture: None,
            gender: None,
            created_at: 0,
            updated_at: 0,
            version: 1,
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
}
