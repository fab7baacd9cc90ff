//! The local server: every route of the table on one loopback port, through the same
//! `handle` the Lambda functions use, plus the OpenAPI document of the contract at
//! `GET /auth/v1/openapi.json`.
//!
//! Everything outside `/auth/v1/` is the developer's own: `GET` and `DELETE /_dev/outbox`
//! when delivery is the outbox, and whatever `Pages` the binary adds (`local-api`'s console).
//! It holds codes and every account, so a web page the developer happens to have open must
//! not read it: it answers only requests whose `Host` names a loopback address (which a DNS
//! rebinding attack cannot fake), grants CORS only to pages of loopback origins, and answers
//! no preflight (so no other origin can `DELETE`).

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use lambda_http::http::{self, StatusCode};
use lambda_http::Body;
use tokio::net::TcpListener;

use super::routes::ROUTES;
use super::{handle, ClientIp, LocalIssuer, MAX_BODY_BYTES};
use crate::adapters::outbox::Outbox;
use crate::error::AuthError;
use crate::ops::App;

/// Where the local server serves the OpenAPI document. Not a route of the table: API Gateway
/// does not serve it.
pub const OPENAPI_PATH: &str = "/auth/v1/openapi.json";

/// The OpenAPI 3.1 document of the whole contract, `docs/openapi.json`, built in.
pub const OPENAPI_DOCUMENT: &str = include_str!("../../../docs/openapi.json");

pub struct LocalServer {
    pub app: App,
    pub outbox: Option<Arc<Outbox>>,
    pub pages: Option<Arc<dyn Pages>>,
}

/// What a local server serves beside the API and the outbox, outside `/auth/v1/`: `None`
/// leaves the request to a 404 in the contract's shape.
#[async_trait::async_trait]
pub trait Pages: Send + Sync {
    async fn answer(&self, request: &http::request::Parts) -> Option<http::Response<Full<Bytes>>>;
}

/// A JSON answer of the developer's own paths, readable by `cors` (a loopback origin, from
/// `loopback_origin`) as well as by same-origin pages.
pub fn json_response(
    status: StatusCode,
    body: Vec<u8>,
    cors: Option<http::HeaderValue>,
) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::CACHE_CONTROL, "no-store")
        .header(http::header::VARY, "origin");
    if let Some(origin) = cors {
        response = response.header("access-control-allow-origin", origin);
    }
    response
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

/// The request's `Origin` when it is a page of this machine (`http://127.0.0.1:PORT`,
/// `http://localhost:PORT`, `http://[::1]:PORT`): an app under development may read what its
/// local server keeps; a web site may not.
pub fn loopback_origin(request: &http::request::Parts) -> Option<http::HeaderValue> {
    let origin = request.headers.get(http::header::ORIGIN)?;
    let host = origin.to_str().ok()?.strip_prefix("http://")?;
    is_loopback_authority(host).then(|| origin.clone())
}

/// `127.0.0.1`, `localhost` or `[::1]`, with or without a port.
fn is_loopback_authority(authority: &str) -> bool {
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    };
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

fn local_only_refusal(
    status: StatusCode,
    error: &str,
    description: &str,
) -> http::Response<Full<Bytes>> {
    let body = serde_json::json!({"error": error, "error_description": description});
    json_response(status, body.to_string().into_bytes(), None)
}

/// The developer's own paths: the outbox and the pages, for this machine only.
async fn local_only(
    server: &LocalServer,
    parts: &http::request::Parts,
) -> http::Response<Full<Bytes>> {
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !is_loopback_authority(host) {
        return local_only_refusal(
            StatusCode::FORBIDDEN,
            "permission_denied",
            "the local console answers only at 127.0.0.1 or localhost",
        );
    }
    if let (Some(outbox), "/_dev/outbox") = (&server.outbox, parts.uri.path()) {
        match parts.method {
            http::Method::GET => {
                let body = serde_json::to_vec(&outbox.entries()).unwrap_or_else(|_| b"[]".to_vec());
                return json_response(StatusCode::OK, body, loopback_origin(parts));
            }
            http::Method::DELETE => {
                outbox.clear();
                return json_response(StatusCode::OK, b"{}".to_vec(), None);
            }
            _ => {}
        }
    }
    if let Some(pages) = &server.pages {
        if let Some(response) = pages.answer(parts).await {
            return response;
        }
    }
    local_only_refusal(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// Binds 127.0.0.1 only: the local server is never reachable from other machines.
pub async fn bind(port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await
}

/// Serves until the process is stopped.
pub async fn serve(listener: TcpListener, server: LocalServer) -> std::io::Result<()> {
    // Without `AUTH_JWT_ISSUER`, the issuer is this server's own URL (the port it bound, not
    // the one asked for, which may be 0), whatever `Host` a client sends.
    let issuer = LocalIssuer(Arc::from(format!(
        "http://{}/auth/v1",
        listener.local_addr()?
    )));
    let server = Arc::new(server);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of descriptors and the like: keep serving the connections we have.
                tracing::warn!(error = %err, "accepting a connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let (server, issuer) = (Arc::clone(&server), issuer.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let (server, issuer) = (Arc::clone(&server), issuer.clone());
                async move { Ok::<_, Infallible>(answer(&server, peer, issuer, req).await) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "connection ended with an error");
            }
        });
    }
}

/// Headers must arrive within this (hyper's timer), and then the body within
/// `BODY_READ_TIMEOUT`: so a whole request is read in at most 20 s, and a client trickling
/// its body (or its headers) a byte at a time holds a connection no longer than that.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Bodies past this are cut off mid-upload instead of being read to the end.
const MAX_DRAINED_BYTES: usize = 16 * 1024 * 1024;

/// Reads a body of up to `MAX_BODY_BYTES`. A larger one is read on and thrown away (up to a
/// bound) so the client can finish sending and read the refusal.
async fn read_body(mut incoming: Incoming) -> Result<Vec<u8>, AuthError> {
    let mut kept = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = incoming.frame().await {
        let frame = frame
            .map_err(|_| AuthError::InvalidArgument("the request body could not be read".into()))?;
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen <= MAX_BODY_BYTES {
                kept.extend_from_slice(&data);
            } else if seen > MAX_DRAINED_BYTES {
                break;
            }
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(AuthError::BodyTooLarge);
    }
    Ok(kept)
}

async fn answer(
    server: &LocalServer,
    peer: SocketAddr,
    issuer: LocalIssuer,
    req: http::Request<Incoming>,
) -> http::Response<Full<Bytes>> {
    let (mut parts, incoming) = req.into_parts();
    parts.extensions.insert(ClientIp(peer.ip()));
    parts.extensions.insert(issuer);
    if parts.method == http::Method::GET && parts.uri.path() == OPENAPI_PATH {
        return http::Response::builder()
            .status(StatusCode::OK)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("access-control-allow-origin", "*")
            .body(Full::new(Bytes::from_static(OPENAPI_DOCUMENT.as_bytes())))
            .unwrap_or_default();
    }
    if !parts.uri.path().starts_with("/auth/v1/") {
        return local_only(server, &parts).await;
    }
    let response = match tokio::time::timeout(BODY_READ_TIMEOUT, read_body(incoming))
        .await
        .unwrap_or(Err(AuthError::RequestTimeout))
    {
        Ok(bytes) => {
            let body = if bytes.is_empty() {
                Body::Empty
            } else {
                Body::Binary(bytes)
            };
            handle(&server.app, ROUTES, http::Request::from_parts(parts, body)).await
        }
        Err(refusal) => {
            let timed_out = matches!(refusal, AuthError::RequestTimeout);
            let mut response =
                super::refuse(&http::Request::from_parts(parts, Body::Empty), refusal);
            if timed_out {
                // The rest of the body may still be on its way: this connection is done.
                response.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            response
        }
    };
    let (parts, body) = response.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(bytes) => Bytes::from(bytes),
        _ => Bytes::new(),
    };
    http::Response::from_parts(parts, Full::new(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> http::request::Parts {
        let mut builder = http::Request::builder().uri("/_dev/outbox");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("a request").into_parts().0
    }

    #[test]
    fn only_loopback_names_are_local_authorities() {
        for local in [
            "127.0.0.1",
            "127.0.0.1:3000",
            "localhost:8080",
            "[::1]",
            "[::1]:3000",
        ] {
            assert!(is_loopback_authority(local), "{local}");
        }
        for remote in [
            "evil.example:3000",
            "127.0.0.1.evil.example",
            "localhost.evil.example:3000",
            "10.0.0.1:3000",
            "",
        ] {
            assert!(!is_loopback_authority(remote), "{remote}");
        }
    }

    #[test]
    fn cors_is_granted_to_pages_of_loopback_origins_only() {
        let granted = |origin: &str| loopback_origin(&request(&[("origin", origin)]));
        assert_eq!(
            granted("http://127.0.0.1:5173")
                .as_ref()
                .map(|v| v.to_str().unwrap()),
            Some("http://127.0.0.1:5173")
        );
        assert!(granted("http://localhost:3000").is_some());
        for refused in [
            "https://evil.example",
            "http://evil.example:3000",
            "http://127.0.0.1.evil.example",
            "null",
        ] {
            assert_eq!(granted(refused), None, "{refused}");
        }
        assert_eq!(loopback_origin(&request(&[])), None);
    }
}
