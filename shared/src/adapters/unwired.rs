//! What a Lambda function built without an adapter has in its place: a function whose
//! operations never send messages (or never exchange provider codes) does not link SES and
//! SNS (or the WeChat client). Reaching one of these is a wiring mistake in that function's
//! `main`; it answers `unavailable`, never a silent success. `tests/template.rs` checks each
//! function's wiring against the operations it serves.

use async_trait::async_trait;

use crate::domain::{ProviderId, ProviderIdentity, ProviderProfile};
use crate::ports::{Delivery, DependencyError, IdentityProvider, Message, ProviderError};

pub struct Unwired;

#[async_trait]
impl Delivery for Unwired {
    async fn send(&self, _message: &Message) -> Result<(), DependencyError> {
        Err(DependencyError(
            "this function was built without message delivery (Wiring::with_message_delivery)"
                .to_string(),
        ))
    }
}

#[async_trait]
impl IdentityProvider for Unwired {
    async fn exchange_code(
        &self,
        _provider: ProviderId,
        _code: &str,
        _redirect_uri: Option<&str>,
    ) -> Result<(ProviderIdentity, ProviderProfile), ProviderError> {
        Err(ProviderError::Unavailable(
            "this function was built without identity providers (Wiring::with_wechat)".to_string(),
        ))
    }
}
