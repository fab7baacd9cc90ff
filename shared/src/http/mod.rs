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

use crate::error::{AuthError, AuthResult};
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

/// The issuer the local server names when `AUTH_JWT_ISSUER` is unset: its own loopback URL
/// (`http://127.0.0.1:<bound port>/auth/v1`), set on each request it reads, so that no
/// client's `Host` header ever becomes an issuer.
#[derive(Clone, Debug)]
pub struct LocalIssuer(pub std::sync::Arc<str>);

/// Per-request facts every answer and log line needs.
pub struct RequestContext {
    pub request_id: String,
    pub client_ip: Option<IpAddr>,
    /// The issuer of this request's access tokens: `AUTH_JWT_ISSUER`, else the local server's
    /// own loopback URL, else API Gateway's domain name plus `/auth/v1` (where the discovery
    /// document is); `None` where none of these is known (a request from neither).
    pub issuer: Option<String>,
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
            issuer: fixed_issuer.map(str::to_string).or_else(|| issuer_of(req)),
        }
    }

    /// The issuer, or a refusal: a request that reached neither API Gateway nor the local
    /// server, on a deployment without `AUTH_JWT_ISSUER`, has no issuer to sign or check.
    pub fn issuer(&self) -> AuthResult<&str> {
        self.issuer.as_deref().ok_or_else(|| {
            AuthError::Internal(
                "no issuer: set AUTH_JWT_ISSUER, or serve through API Gateway or local-api".into(),
            )
        })
    }
}

/// The local server's loopback URL; on Lambda `https://<domain name>/auth/v1`, the domain
/// name being what API Gateway put in the request context (the API's own or its custom
/// domain), never the client's `Host` header, which anyone can set to anything.
fn issuer_of(req: &Request) -> Option<String> {
    use lambda_http::request::RequestContext as Ctx;
    if let Some(LocalIssuer(issuer)) = req.extensions().get::<LocalIssuer>() {
        return Some(issuer.to_string());
    }
    let domain = match req.request_context_ref()? {
        Ctx::ApiGatewayV2(ctx) => ctx.domain_name.clone(),
        Ctx::ApiGatewayV1(ctx) => ctx.domain_name.clone(),
        #[allow(unreachable_patterns)]
        _ => None,
    }?;
    Some(format!("https://{domain}/auth/v1"))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An API Gateway HTTP API event (payload 2.0) as `lambda_http` receives it.
    fn gateway_request(domain_name: Option<&str>, host: &str, source_ip: &str) -> Request {
        let mut context = serde_json::json!({
            "accountId": "123456789012",
            "apiId": "api",
            "http": {"method": "GET", "path": "/auth/v1/user/me", "protocol": "HTTP/1.1",
                     "sourceIp": source_ip, "userAgent": "test"},
            "requestId": "id",
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Jan/2025:00:00:00 +0000",
            "timeEpoch": 1_735_689_600_000_u64,
        });
        if let Some(domain) = domain_name {
            context["domainName"] = domain.into();
        }
        let event = serde_json::json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": "/auth/v1/user/me",
            "rawQueryString": "",
            "headers": {"host": host},
            "requestContext": context,
            "isBase64Encoded": false,
        });
        lambda_http::request::from_str(&event.to_string()).expect("an API Gateway event")
    }

    #[test]
    fn on_lambda_the_issuer_is_api_gateways_domain_name_never_the_host_header() {
        let req = gateway_request(Some("api.example.com"), "evil.example", "198.51.100.7");
        let ctx = RequestContext::of(&req, None);
        assert_eq!(ctx.issuer().ok(), Some("https://api.example.com/auth/v1"));
        let configured = RequestContext::of(&req, Some("https://auth.example.com/auth/v1"));
        assert_eq!(
            configured.issuer().ok(),
            Some("https://auth.example.com/auth/v1")
        );
        // No domain name and nothing configured: no issuer at all, rather than the Host's.
        let bare = gateway_request(None, "evil.example", "198.51.100.7");
        assert!(RequestContext::of(&bare, None).issuer().is_err());
        let mut bare = Request::default();
        bare.headers_mut()
            .insert(header::HOST, HeaderValue::from_static("evil.example"));
        assert!(RequestContext::of(&bare, None).issuer().is_err());
    }

    #[test]
    fn on_the_local_server_the_issuer_is_its_own_url_never_the_host_header() {
        let mut req = Request::default();
        req.headers_mut()
            .insert(header::HOST, HeaderValue::from_static("evil.example"));
        req.extensions_mut()
            .insert(LocalIssuer("http://127.0.0.1:3000/auth/v1".into()));
        assert_eq!(
            RequestContext::of(&req, None).issuer().ok(),
            Some("http://127.0.0.1:3000/auth/v1")
        );
    }
}
