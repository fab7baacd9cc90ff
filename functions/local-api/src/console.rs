//! The developer console: three views a developer keeps open beside their app, each one
//! labelled click from `/`.
//!
//! * Accounts (`/`): every account with its addresses, WeChat identities and live sessions,
//!   from `GET /_dev/accounts`, the store's `Directory` (a scan on DynamoDB).
//! * Messages (`/_dev/messages`): the outbox, newest first, polled every second.
//! * Try it (`/_dev/try`): the seed documents' flow, run by the browser build of the
//!   unmodified `@cloudbase/js-sdk` (bundled by `build.rs`) against this server.
//!
//! Only this binary serves it: no Lambda function links this package (tests/lambda_runtime.rs
//! checks the function binaries), and `shared::http::local` serves it to this machine only.
//! Everything a page shows comes from users, so the scripts only ever set text, and the
//! Content-Security-Policy allows no inline script at all.

use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use lambda_http::http::{self, header, Method, StatusCode};
use serde_json::{json, Value};
use shared::domain::rfc3339;
use shared::http::local::{json_response, loopback_origin, Pages};
use shared::ports::{AccountListing, Clock, Directory, SystemClock};

/// What the console says about the server it runs in.
pub struct Console {
    pub directory: Option<Arc<dyn Directory>>,
    /// `memory` or `dynamodb`.
    pub store: &'static str,
    /// Whether codes land in the outbox (else SES and SNS send them).
    pub outbox: bool,
}

#[derive(Clone, Copy)]
enum View {
    Accounts,
    Messages,
    TryIt,
}

impl View {
    const ALL: [View; 3] = [View::Accounts, View::Messages, View::TryIt];

    fn path(self) -> &'static str {
        match self {
            View::Accounts => "/",
            View::Messages => "/_dev/messages",
            View::TryIt => "/_dev/try",
        }
    }

    fn label(self) -> &'static str {
        match self {
            View::Accounts => "Accounts",
            View::Messages => "Messages",
            View::TryIt => "Try it",
        }
    }

    fn script(self) -> &'static str {
        match self {
            View::Accounts => "/_dev/accounts.js",
            View::Messages => "/_dev/messages.js",
            View::TryIt => "/_dev/try.js",
        }
    }
}

/// The static assets, built in.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "/_dev/console.css",
        "text/css; charset=utf-8",
        include_bytes!("../console/console.css"),
    ),
    (
        "/_dev/console.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/console.js"),
    ),
    (
        "/_dev/accounts.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/accounts.js"),
    ),
    (
        "/_dev/messages.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/messages.js"),
    ),
    (
        "/_dev/try.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/try.js"),
    ),
    (
        "/_dev/cloudbase-sdk.js",
        "text/javascript; charset=utf-8",
        include_bytes!(concat!(env!("OUT_DIR"), "/cloudbase-sdk.js")),
    ),
];

/// Scripts and styles come from this server only; the Try-it page may call the API of another
/// loopback origin when it is told to (`?api=`).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self' http://127.0.0.1:* http://localhost:*; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

#[async_trait::async_trait]
impl Pages for Console {
    async fn answer(&self, request: &http::request::Parts) -> Option<http::Response<Full<Bytes>>> {
        if request.method != Method::GET && request.method != Method::HEAD {
            return None;
        }
        let path = request.uri.path();
        if let Some(view) = View::ALL.into_iter().find(|view| view.path() == path) {
            return Some(respond("text/html; charset=utf-8", Bytes::from(page(view))));
        }
        if let Some((_, content_type, body)) = ASSETS.iter().find(|(p, _, _)| *p == path) {
            return Some(respond(content_type, Bytes::from_static(body)));
        }
        match path {
            // Try it, loaded by an app's page on another loopback origin, asks whether there
            // is an outbox to read codes from.
            "/_dev/settings" => {
                let settings = json!({"store": self.store, "outbox": self.outbox});
                Some(json_response(
                    StatusCode::OK,
                    settings.to_string().into_bytes(),
                    loopback_origin(request),
                ))
            }
            // Every account in full: for the console's own page only, so no CORS.
            "/_dev/accounts" => Some(self.accounts().await),
            _ => None,
        }
    }
}

impl Console {
    async fn accounts(&self) -> http::Response<Full<Bytes>> {
        let listings = match &self.directory {
            Some(directory) => directory.accounts(SystemClock.now()).await,
            None => Ok(Vec::new()),
        };
        let (status, body) = match listings {
            Ok(listings) => (
                StatusCode::OK,
                Value::from(listings.iter().map(account_json).collect::<Vec<_>>()),
            ),
            Err(err) => {
                tracing::warn!(error = %err, "the console could not list the accounts");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({
                        "error": "unavailable",
                        "error_description": "the store could not be read; see local-api's log",
                    }),
                )
            }
        };
        json_response(status, body.to_string().into_bytes(), None)
    }
}

/// One account in full: this is the developer's own machine.
fn account_json(listing: &AccountListing) -> Value {
    let user = &listing.user;
    let text = |value: Option<&str>| value.map(str::to_string);
    json!({
        "sub": user.id.as_str(),
        "username": text(user.username.as_ref().map(|u| u.as_str())),
        "name": text(user.name.as_ref().map(|n| n.as_str())),
        "email": text(user.email.as_ref().map(|e| e.as_str())),
        "phone_number": user.phone.as_ref().map(|p| p.display()),
        "has_password": user.password_hash.is_some(),
        "custom_uid": text(user.custom_uid.as_ref().map(|uid| uid.as_str())),
        "providers": user.providers.iter().map(|link| json!({
            "provider_id": link.identity.provider.as_str(),
            "subject": link.identity.subject,
            "name": link.profile.name.as_ref().map(|n| n.as_str()),
        })).collect::<Vec<_>>(),
        "created_at": rfc3339(user.created_at),
        "updated_at": rfc3339(user.updated_at),
        "sessions": listing.sessions.iter().map(|session| json!({
            "created_at": (session.created_at > 0).then(|| rfc3339(session.created_at)),
            "refreshed_at": (session.refreshed_at > 0).then(|| rfc3339(session.refreshed_at)),
            "expires_at": rfc3339(session.expires_at),
        })).collect::<Vec<_>>(),
    })
}

/// A view's page: the navigation every view shares, and the script that fills `<main>`.
fn page(view: View) -> String {
    let links: String = View::ALL
        .into_iter()
        .map(|other| {
            let current = if other.path() == view.path() {
                r#" aria-current="page""#
            } else {
                ""
            };
            format!(
                r#"<a href="{}"{current}>{}</a>"#,
                other.path(),
                other.label()
            )
        })
        .collect();
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{label} · local-api console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/_dev/console.css">
<script type="module" src="{script}"></script>
</head>
<body>
<header>
<span class="brand">local-api console</span>
<nav aria-label="Console views">{links}</nav>
</header>
<main id="view" data-view="{label}"></main>
</body>
</html>
"#,
        label = view.label(),
        script = view.script(),
    )
}

fn respond(content_type: &str, body: Bytes) -> http::Response<Full<Bytes>> {
    http::Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-store")
        .header("content-security-policy", CONTENT_SECURITY_POLICY)
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .body(Full::new(body))
        .unwrap_or_default()
}
