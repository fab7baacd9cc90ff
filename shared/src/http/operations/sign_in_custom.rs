//! `POST /auth/v1/signin/custom`: credentials for the account of a custom-login ticket's uid.

use lambda_http::Request;
use serde::Deserialize;

use super::body;
use crate::domain::CustomTicket;
use crate::error::{AuthError, AuthResult};
use crate::http::wire::{required, CredentialsAnswer, CUSTOM_PROVIDER_ID};
use crate::http::RequestContext;
use crate::ops::{custom_login, App};

/// What `signInWithCustomTicket` sends: `{"provider_id": "custom", "ticket": "<ticket>"}`.
#[derive(Deserialize)]
struct CustomBody {
    provider_id: Option<String>,
    ticket: Option<String>,
}

pub(super) async fn handle(
    app: &App,
    req: &Request,
    ctx: &RequestContext,
) -> AuthResult<CredentialsAnswer> {
    let CustomBody {
        provider_id,
        ticket,
    } = body(req)?;
    if provider_id.is_some_and(|id| id != CUSTOM_PROVIDER_ID) {
        return Err(AuthError::InvalidArgument(
            "provider_id must be \"custom\" for a custom login ticket".into(),
        ));
    }
    let ticket = CustomTicket::parse(&required(ticket, "ticket")?)?;
    Ok(
        custom_login::sign_in_with_ticket(app, ticket, ctx.client_ip, ctx.issuer()?)
            .await?
            .into(),
    )
}
