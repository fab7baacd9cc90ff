//! HTTP glue shared by every binary: request context, routing to an operation (each in
//! `operations`), and the answers' status and headers.

pub mod error;
pub mod lambda;
pub mod local;
pub mod operations;
pub mod routes;
pub mod wire;

use std::net::IpAddr;

use lambda_http::http::{header, HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};

use crate::error::AuthError;
use crate::ops::App;
use routes::{Match, Operation, Route};

/// Bodies larger than this are refused before parsing.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

const ALLOWED_HEADERS: &str =
    "authorization, content-type, x-request-id, x-device-id, x-sdk-version, accept-language, x-captcha-token";
const ALLOWED_METHODS: &str = "GET, POST, PATCH, DELETE, OPTIONS";

/// The client address, set by the local server from its socket.
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub IpAddr);

/// Per-request facts every answer and log line needs.
pub struct RequestContext {
    pub request_id: String,
    pub client_ip: Option<IpAddr>,
    /// The issuer of this request's access tokens: `AUTH_JWT_ISSUER`, else the API's origin
    /// as this request reached it, plus `/auth/v1` (where the discovery document is).
    pub issuer: String,
}

impl RequestContext {
    fn of(req: &Request, fixed_issuer: Option<&str>) -> Self {
        let request_id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|id| {
                (1..=64).contains(&id.len())
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
            .map(str::to_string)
            .unwrap_or_else(|| hex::encode(crate::domain::random_bytes::<16>()));
        Self {
            request_id,
            client_ip: client_ip(req),
            issuer: fixed_issuer
                .map(str::to_string)
                .unwrap_or_else(|| issuer_of(req)),
        }
    }
}

/// `https://<API Gateway's domain name>/auth/v1` on Lambda; on the local server (which
/// answers this machine's host names only) `http://<Host>/auth/v1`.
fn issuer_of(req: &Request) -> String {
    use lambda_http::request::RequestContext as Ctx;
    let local = req.extensions().get::<ClientIp>().is_some();
    let domain = match req.request_context_ref() {
        Some(Ctx::ApiGatewayV2(ctx)) => ctx.domain_name.clone(),
        Some(Ctx::ApiGatewayV1(ctx)) => ctx.domain_name.clone(),
        #[allow(unreachable_patterns)]
        _ => None,
    }
    .filter(|_| !local)
    .or_else(|| {
        req.headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    })
    .unwrap_or_default();
    let scheme = if local { "http" } else { "https" };
    format!("{scheme}://{domain}/auth/v1")
}

fn client_ip(req: &Request) -> Option<IpAddr> {
    if let Some(ClientIp(ip)) = req.extensions().get::<ClientIp>() {
        return Some(*ip);
    }
    use lambda_http::request::RequestContext as Ctx;
    let source = match req.request_context_ref()? {
        Ctx::ApiGatewayV2(ctx) => ctx.http.source_ip.clone(),
        Ctx::ApiGatewayV1(ctx) => ctx.identity.source_ip.clone(),
        #[allow(unreachable_patterns)]
        _ => None,
    };
    source?.parse().ok()
}

/// Answers one request with the routes in `routes`: the local server passes them all, a
/// Lambda function only its own.
pub async fn handle(app: &App, routes: &[Route], req: Request) -> Response<Body> {
    let ctx = RequestContext::of(&req, app.settings.jwt_issuer.as_deref());
    if req.method() == Method::OPTIONS {
        return preflight(&ctx);
    }
    let outcome = match routes::find(routes, req.method().as_str(), req.uri().path()) {
        Match::Found(route, param) => {
            let operation = route.operation;
            let span = tracing::info_span!("request", request_id = %ctx.request_id, ?operation);
            let answer = operations::dispatch(app, operation, param.as_deref(), &req, &ctx);
            tracing::Instrument::instrument(answer, span)
                .await
                .map(|answer| {
                    let cache =
                        matches!(operation, Operation::Jwks | Operation::OpenIdConfiguration)
                            .then_some(PUBLIC_KEYS_CACHE);
                    (answer, cache)
                })
        }
        Match::WrongMethod => {
            let allowed = routes::methods_of(routes, req.uri().path()).join(", ");
            let mut response = error_response(&ctx, AuthError::MethodNotAllowed);
            if let Ok(value) = HeaderValue::from_str(&allowed) {
                response.headers_mut().insert(header::ALLOW, value);
            }
            return response;
        }
        Match::None => Err(AuthError::NotFound("no such endpoint")),
    };
    match outcome {
        Ok((answer, cache)) => {
            let mut response = respond(StatusCode::OK, answer, &ctx, None);
            if let Some(cache) = cache {
                response
                    .headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
            }
            response
        }
        Err(err) => error_response(&ctx, err),
    }
}

/// Public keys change only by a deployment: verifiers may cache them for a while (API
/// Gateway's authorizer does, for up to two hours), and a key is published before it signs.
const PUBLIC_KEYS_CACHE: &str = "public, max-age=300";

/// Answers a request that was refused before it reached an operation.
pub fn refuse(req: &Request, err: AuthError) -> Response<Body> {
    error_response(&RequestContext::of(req, None), err)
}

fn error_response(ctx: &RequestContext, err: AuthError) -> Response<Body> {
    let wire = error::to_wire(&err, &ctx.request_id);
    tracing::info!(
        request_id = %ctx.request_id,
        status = wire.status.as_u16(),
        error = wire.error,
        "request refused"
    );
    respond(
        wire.status,
        serde_json::json!({"error": wire.error, "error_description": wire.description}),
        ctx,
        wire.retry_after_secs,
    )
}

fn preflight(ctx: &RequestContext) -> Response<Body> {
    let mut response = respond(StatusCode::OK, serde_json::json!({}), ctx, None);
    let headers = response.headers_mut();
    headers.insert(
        "access-control-allow-methods",
        HeaderValue::from_static(ALLOWED_METHODS),
    );
    headers.insert(
        "access-control-allow-headers",
        HeaderValue::from_static(ALLOWED_HEADERS),
    );
    headers.insert("access-control-max-age", HeaderValue::from_static("600"));
    response
}

fn respond(
    status: StatusCode,
    body: serde_json::Value,
    ctx: &RequestContext,
    retry_after_secs: Option<i64>,
) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    headers.insert(
        "access-control-expose-headers",
        HeaderValue::from_static("x-request-id, retry-after"),
    );
    if let Ok(id) = HeaderValue::from_str(&ctx.request_id) {
        headers.insert("x-request-id", id);
    }
    if let Some(secs) = retry_after_secs {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1) as u64));
    }
    response
}
