//! The local server: every route of the table on one loopback port, through the same
//! `handle` the Lambda functions use, plus `GET` and `DELETE /_dev/outbox` when delivery is
//! the outbox, the OpenAPI document of the contract at `GET /auth/v1/openapi.json`, and
//! whatever `Pages` the binary adds outside `/auth/v1/` (`local-api`'s console).

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use lambda_http::http::{self, StatusCode};
use lambda_http::Body;
use tokio::net::TcpListener;

use super::routes::ROUTES;
use super::{handle, ClientIp, MAX_BODY_BYTES};
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

/// What a local server serves beside the API. Requests outside `/auth/v1/` reach it first;
/// `None` hands one on to the API's answer (a 404 in the contract's shape).
#[async_trait::async_trait]
pub trait Pages: Send + Sync {
    async fn answer(&self, request: &http::request::Parts) -> Option<http::Response<Full<Bytes>>>;
}

/// A JSON answer; `*` as the allowed origin, since a page on another loopback origin (an app
/// being developed) reads the local outbox too.
pub fn json_response(status: StatusCode, body: Vec<u8>) -> http::Response<Full<Bytes>> {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("access-control-allow-origin", "*")
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

/// Binds 127.0.0.1 only: the local server is never reachable from other machines.
pub async fn bind(port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await
}

/// Serves until the process is stopped.
pub async fn serve(listener: TcpListener, server: LocalServer) -> std::io::Result<()> {
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
        let server = Arc::clone(&server);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let server = Arc::clone(&server);
                async move { Ok::<_, Infallible>(answer(&server, peer, req).await) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "connection ended with an error");
            }
        });
    }
}

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
    req: http::Request<Incoming>,
) -> http::Response<Full<Bytes>> {
    let (mut parts, incoming) = req.into_parts();
    parts.extensions.insert(ClientIp(peer.ip()));
    if parts.method == http::Method::GET && parts.uri.path() == OPENAPI_PATH {
        return http::Response::builder()
            .status(StatusCode::OK)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("access-control-allow-origin", "*")
            .body(Full::new(Bytes::from_static(OPENAPI_DOCUMENT.as_bytes())))
            .unwrap_or_default();
    }
    if parts.uri.path() == "/_dev/outbox" {
        if let Some(outbox) = &server.outbox {
            match parts.method {
                http::Method::GET => {
                    let body =
                        serde_json::to_vec(&outbox.entries()).unwrap_or_else(|_| b"[]".to_vec());
                    return json_response(StatusCode::OK, body);
                }
                http::Method::DELETE => {
                    outbox.clear();
                    return json_response(StatusCode::OK, b"{}".to_vec());
                }
                _ => {}
            }
        }
    }
    if !parts.uri.path().starts_with("/auth/v1/") {
        if let Some(pages) = &server.pages {
            if let Some(response) = pages.answer(&parts).await {
                return response;
            }
        }
    }
    let response = match read_body(incoming).await {
        Ok(bytes) => {
            let body = if bytes.is_empty() {
                Body::Empty
            } else {
                Body::Binary(bytes)
            };
            handle(&server.app, ROUTES, http::Request::from_parts(parts, body)).await
        }
        Err(refusal) => super::refuse(&http::Request::from_parts(parts, Body::Empty), refusal),
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
