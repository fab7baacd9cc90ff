//! One module per operation of the route table, named after its `Operation` variant: the
//! body it reads, how that body becomes the operation's typed input, the call into `ops`,
//! and the answer it sends. Wire types that several operations share are in `http::wire`.
//!
//! Adding an operation: a module here with its `handle`, a variant of `Operation` and a row
//! of `ROUTES` (in `http::routes`), and a row of `dispatch` below. The tests then name what
//! the row needs outside this crate: its path in `docs/openapi.json`, its route and function
//! in `template.yaml`, and a binary under `functions/` if the row names a new function.

pub mod bind_contact;
pub mod bind_provider;
pub mod change_password;
pub mod current_user;
pub mod delete_account;
pub mod edit_basic_info;
pub mod edit_profile;
pub mod grant_provider_token;
pub mod jwks;
pub mod list_providers;
pub mod open_id_configuration;
pub mod refresh_token;
pub mod reset_password;
pub mod revoke;
pub mod revoke_all;
pub mod send_verification;
pub mod sign_in;
pub mod sign_in_anonymously;
pub mod sign_in_custom;
pub mod sign_in_with_provider;
pub mod sign_out;
pub mod sign_up;
pub mod sudo;
pub mod unbind_provider;
pub mod verify;

use lambda_http::http::header;
use lambda_http::{Body, Request};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::routes::Operation;
use super::{RequestContext, MAX_BODY_BYTES};
use crate::error::{AuthError, AuthResult};
use crate::ops::{App, Caller, Principal};

/// Runs `operation` on a request its route matched; `param` is the route's `{param}` segment.
pub(super) async fn dispatch(
    app: &App,
    operation: Operation,
    param: Option<&str>,
    req: &Request,
    ctx: &RequestContext,
) -> AuthResult<serde_json::Value> {
    match operation {
        Operation::SignUp => json(sign_up::handle(app, req, ctx).await?),
        Operation::SignIn => json(sign_in::handle(app, req, ctx).await?),
        Operation::RefreshToken => json(refresh_token::handle(app, req, ctx).await?),
        Operation::Revoke => json(revoke::handle(app, req, ctx).await?),
        Operation::SignOut => json(sign_out::handle(app, req, ctx).await?),
        Operation::CurrentUser => json(current_user::handle(app, req, ctx).await?),
        Operation::Sudo => json(sudo::handle(app, req, ctx).await?),
        Operation::SendVerification => json(send_verification::handle(app, req, ctx).await?),
        Operation::Verify => json(verify::handle(app, req, ctx).await?),
        Operation::BindContact => json(bind_contact::handle(app, req, ctx).await?),
        Operation::GrantProviderToken => json(grant_provider_token::handle(app, req, ctx).await?),
        Operation::BindProvider => json(bind_provider::handle(app, req, ctx).await?),
        Operation::SignInWithProvider => json(sign_in_with_provider::handle(app, req, ctx).await?),
        Operation::ListProviders => json(list_providers::handle(app, req, ctx).await?),
        Operation::UnbindProvider => json(unbind_provider::handle(app, req, ctx, param).await?),
        Operation::DeleteAccount => json(delete_account::handle(app, req, ctx).await?),
        Operation::EditBasicInfo => json(edit_basic_info::handle(app, req, ctx).await?),
        Operation::EditProfile => json(edit_profile::handle(app, req, ctx).await?),
        Operation::SignInAnonymously => json(sign_in_anonymously::handle(app, req, ctx).await?),
        Operation::SignInCustom => json(sign_in_custom::handle(app, req, ctx).await?),
        Operation::ChangePassword => json(change_password::handle(app, req, ctx).await?),
        Operation::ResetPassword => json(reset_password::handle(app, req, ctx).await?),
        Operation::RevokeAll => json(revoke_all::handle(app, req, ctx).await?),
        Operation::Jwks => Ok(jwks::handle(app)),
        Operation::OpenIdConfiguration => json(open_id_configuration::handle(app, ctx)?),
    }
}

fn json<T: Serialize>(value: T) -> AuthResult<serde_json::Value> {
    serde_json::to_value(value)
        .map_err(|e| AuthError::Internal(format!("serialising an answer: {e}")))
}

/// The body as JSON whatever the content type says (the SDK sends `text/plain`); empty is `{}`.
fn body<T: DeserializeOwned>(req: &Request) -> AuthResult<T> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => b"{}",
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => b"{}",
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(AuthError::BodyTooLarge);
    }
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    // serde reads a struct from a JSON array too, field by field: only objects are bodies.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(AuthError::InvalidArgument(
            "the body is not a JSON object".into(),
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let why = if e.is_data() {
            format!("a field has the wrong type: {e}")
        } else {
            "the body is not a JSON object".to_string()
        };
        AuthError::InvalidArgument(why)
    })
}

fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn caller(app: &App, ctx: &RequestContext, req: &Request) -> AuthResult<Caller> {
    let token = bearer(req).ok_or(AuthError::Unauthenticated(
        "an Authorization: Bearer access token is required",
    ))?;
    Caller::from_access_token(app, token, ctx.issuer()?)
}

async fn principal(app: &App, ctx: &RequestContext, req: &Request) -> AuthResult<Principal> {
    caller(app, ctx, req)?.principal(app).await
}
