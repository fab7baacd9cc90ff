//! `PATCH /auth/v1/user/profile` (v1 `user.update`), and the profile fields' reading that
//! `POST /user/basic/edit` shares.

use lambda_http::Request;
use serde_json::{Map, Value};

use super::{body, principal};
use crate::domain::{DisplayName, Gender, Picture, Username};
use crate::error::{AuthError, AuthResult};
use crate::http::wire::UserAnswer;
use crate::http::RequestContext;
use crate::ops::profile::{self, ProfileEdit};
use crate::ops::App;

/// The keys `PATCH /user/profile` takes: what v1 `user.update` sends.
const PROFILE_KEYS: [&str; 4] = ["name", "picture", "gender", "username"];

/// `PATCH /auth/v1/user/profile`: v1 `user.update({name, ...})`, which stores the answer as
/// the user: it answers what `GET /user/me` answers.
pub(super) async fn handle(
    app: &App,
    req: &Request,
    ctx: &RequestContext,
) -> AuthResult<UserAnswer> {
    let who = principal(app, ctx, req).await?;
    let fields = fields(req, &PROFILE_KEYS)?;
    if fields.is_empty() {
        return Err(AuthError::InvalidArgument(
            "nothing to change: give name, picture, gender or username".into(),
        ));
    }
    let mut edit = ProfileEdit::default();
    for (key, text) in fields {
        match key {
            "name" => edit.name = Some(clearable(&text, DisplayName::parse)?),
            "gender" => edit.gender = Some(Gender::parse(&text)?),
            "username" => edit.username = Some(Username::parse(&text)?),
            _ => edit.picture = Some(clearable(&text, |raw| Picture::parse("picture", raw))?),
        }
    }
    profile::edit_profile(app, &who, edit, ctx.client_ip).await?;
    Ok(UserAnswer::from(&profile::current(app, &who).await?))
}

/// The body's fields, each one of `keys` with a string value; `null` (like `undefined`, which
/// JSON drops) means "not given". An unknown key is refused, never stored, and not named back:
/// it is the client's text.
pub(super) fn fields(
    req: &Request,
    keys: &[&'static str],
) -> AuthResult<Vec<(&'static str, String)>> {
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
pub(super) fn clearable<T, E: Into<AuthError>>(
    text: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> AuthResult<Option<T>> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    parse(text).map(Some).map_err(Into::into)
}
