//! `GET /auth/v1/.well-known/jwks.json`: the public keys that verify access tokens.

use crate::ops::App;

pub(super) fn handle(app: &App) -> serde_json::Value {
    app.access_tokens.jwks()
}
