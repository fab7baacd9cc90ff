//! `POST /auth/v1/user/basic/edit`: the profile as `updateUser` and `updateUserBasicInfo`
//! send it.

use lambda_http::Request;

use super::edit_profile::{clearable, fields};
use super::principal;
use crate::domain::{Address, DisplayName, Email, Gender, PhoneNumber, Picture, Username};
use crate::error::{AuthError, AuthResult};
use crate::http::wire::Empty;
use crate::http::RequestContext;
use crate::ops::profile::{self, ProfileEdit};
use crate::ops::App;

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

/// `POST /auth/v1/user/basic/edit`: `updateUser({nickname, avatar_url, gender, ...})` and
/// `updateUserBasicInfo(params)` send their parameters verbatim. Answers `{}`.
pub(super) async fn handle(app: &App, req: &Request, ctx: &RequestContext) -> AuthResult<Empty> {
    let who = principal(app, ctx, req).await?;
    let country = app.settings.default_country_code.as_str();
    let fields = fields(req, &BASIC_EDIT_KEYS)?;
    if fields.iter().all(|(key, _)| *key == "user_id") {
        return Err(AuthError::InvalidArgument(
            "nothing to change: give nickname, avatar_url, gender, username, email or phone".into(),
        ));
    }
    let mut edit = ProfileEdit::default();
    for (key, text) in fields {
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
            // One address per change: its proof is one remembered verification.
            "email" | "phone" if edit.address.is_some() => {
                return Err(AuthError::InvalidArgument(
                    "give either email or phone, not both".into(),
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
    profile::edit_profile(app, &who, edit, ctx.client_ip).await?;
    Ok(Empty {})
}
