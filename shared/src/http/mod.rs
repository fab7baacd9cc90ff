//! HTTP glue shared by every binary: request parsing, dispatch to operations, answers.

pub mod error;
pub mod lambda;
pub mod local;
mod passwords;
pub mod routes;
pub mod wire;

use std::net::IpAddr;

use lambda_http::http::{header, HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::domain::{
    DisplayName, Password, ProviderId, SecretToken, Username, VerificationCode, VerificationId,
};
use crate::error::{AuthError, AuthResult};
use crate::ops::accounts::{self, LoginName, NewIdentity, SignUp};
use crate::ops::association::{self, BindContact, SudoProof, Target};
use crate::ops::{providers, App, Caller, Principal, RefreshToken};
use routes::{Match, Operation, Route};
use wire::*;

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
            let answer = dispatch(app, operation, param, &req, &ctx);
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
    Caller::from_access_token(app, token, &ctx.issuer)
}

async fn principal(app: &App, ctx: &RequestContext, req: &Request) -> AuthResult<Principal> {
    caller(app, ctx, req)?.principal(app).await
}

async fn dispatch(
    app: &App,
    operation: Operation,
    param: Option<String>,
    req: &Request,
    ctx: &RequestContext,
) -> AuthResult<serde_json::Value> {
    let country = app.settings.default_country_code.as_str();
    match operation {
        Operation::SignUp => {
            let b: SignUpBody = body(req)?;
            let identity = match (b.username, b.email, b.phone_number) {
                (None, None, None) if b.provider_token.is_some() => NewIdentity::Provider {
                    provider_token: SecretToken::parse(
                        "provider_token",
                        &required(b.provider_token, "provider_token")?,
                    )?,
                },
                (Some(username), None, None) => NewIdentity::Username(Username::parse(&username)?),
                (None, email, phone) if email.is_some() || phone.is_some() => {
                    NewIdentity::Address {
                        address: one_address(email, phone, country)?,
                        verification_token: SecretToken::parse(
                            "verification_token",
                            &required(b.verification_token, "verification_token")?,
                        )?,
                    }
                }
                (None, None, None) => {
                    return Err(AuthError::InvalidArgument(
                        "username, email, phone_number or provider_token is required".into(),
                    ))
                }
                _ => {
                    return Err(AuthError::InvalidArgument(
                        "give one of username, email and phone_number".into(),
                    ))
                }
            };
            let request = SignUp {
                identity,
                password: b.password.as_deref().map(Password::parse).transpose()?,
                name: b.name.as_deref().map(DisplayName::parse).transpose()?,
            };
            json(CredentialsAnswer::from(
                accounts::sign_up(app, request, ctx.client_ip, &ctx.issuer).await?,
            ))
        }
        Operation::SignIn => {
            let b: SignInBody = body(req)?;
            let login = LoginName::parse(&required(b.username, "username")?, country)
                .map_err(|_| AuthError::InvalidUsernameOrPassword)?;
            let password = Password::parse(&required(b.password, "password")?)?;
            json(CredentialsAnswer::from(
                accounts::sign_in(app, login, password, ctx.client_ip, &ctx.issuer).await?,
            ))
        }
        Operation::RefreshToken => {
            let b: TokenBody = body(req)?;
            match b.grant_type.as_deref() {
                None | Some("refresh_token") => {}
                Some(_) => {
                    return Err(AuthError::InvalidArgument(
                        "grant_type must be refresh_token".into(),
                    ))
                }
            }
            let token = RefreshToken::parse(&required(b.refresh_token, "refresh_token")?)
                .map_err(|_| AuthError::InvalidGrant)?;
            json(CredentialsAnswer::from(
                accounts::refresh(app, token, &ctx.issuer).await?,
            ))
        }
        Operation::Revoke => {
            let b: RevokeBody = body(req)?;
            match b.token.as_deref().or_else(|| bearer(req)) {
                Some(token) => accounts::revoke(app, token, &ctx.issuer).await?,
                None => return Err(AuthError::InvalidArgument("token is required".into())),
            }
            json(Empty {})
        }
        Operation::SignOut => {
            let b: RevokeBody = body(req)?;
            match bearer(req) {
                Some(_) => accounts::sign_out(app, &principal(app, ctx, req).await?).await?,
                None => {
                    let token = required(b.token, "token")?;
                    accounts::revoke(app, &token, &ctx.issuer).await?
                }
            }
            json(Empty {})
        }
        Operation::CurrentUser => json(UserAnswer::from(&principal(app, ctx, req).await?.user)),
        Operation::Sudo => {
            let who = caller(app, ctx, req)?;
            let b: SudoBody = body(req)?;
            let proof = match (b.password, b.verification_token) {
                (Some(password), None) => SudoProof::Password(Password::parse(&password)?),
                (None, Some(token)) => {
                    SudoProof::VerificationToken(SecretToken::parse("verification_token", &token)?)
                }
                _ => {
                    return Err(AuthError::InvalidArgument(
                        "give either password or verification_token".into(),
                    ))
                }
            };
            let grant = association::sudo(app, &who, proof).await?;
            json(SudoAnswer {
                sudo_token: grant.sudo_token.expose().to_string(),
                expires_in: grant.expires_in,
            })
        }
        Operation::SendVerification => {
            let b: VerificationBody = body(req)?;
            let address = one_address(b.email, b.phone_number, country)?;
            let target = match b.target.as_deref().map(str::trim) {
                None | Some("") | Some("ANY") => Target::Any,
                Some("USER") => Target::User,
                Some("NOT_USER") => Target::NotUser,
                Some("CUR_USER") => Target::CurrentUser,
                Some(_) => {
                    return Err(AuthError::InvalidArgument(
                        "target must be ANY, USER, NOT_USER or CUR_USER".into(),
                    ))
                }
            };
            let who = match bearer(req) {
                Some(_) => Some(caller(app, ctx, req)?),
                None => None,
            };
            let sent =
                association::send_verification(app, who.as_ref(), address, target, ctx.client_ip)
                    .await?;
            json(VerificationAnswer {
                verification_id: sent.verification_id.as_str().to_string(),
                expires_in: sent.expires_in,
                is_user: sent.is_user,
            })
        }
        Operation::Verify => {
            let b: VerifyBody = body(req)?;
            let id = required(b.verification_id, "verification_id")?;
            let code =
                VerificationCode::parse(&required(b.verification_code, "verification_code")?)?;
            // An unknown id is the same answer as a wrong code: nothing to probe.
            let id = VerificationId::parse(&id).map_err(|_| AuthError::InvalidVerificationCode)?;
            let grant = association::verify(app, id, code, ctx.client_ip).await?;
            json(VerifyAnswer {
                verification_token: grant.verification_token.expose().to_string(),
                expires_in: grant.expires_in,
            })
        }
        Operation::BindContact => {
            let who = principal(app, ctx, req).await?;
            let b: ContactBody = body(req)?;
            let request = BindContact {
                sudo_token: SecretToken::parse(
                    "sudo_token",
                    &required(b.sudo_token, "sudo_token")?.into_inner(),
                )?,
                verification_token: SecretToken::parse(
                    "verification_token",
                    &required(b.verification_token, "verification_token")?,
                )?,
                address: one_address(b.email, b.phone_number, country)?,
            };
            association::bind_contact(app, &who, request).await?;
            json(Empty {})
        }
        Operation::GrantProviderToken => {
            let b: ProviderTokenBody = body(req)?;
            let provider = ProviderId::parse(&required(b.provider_id, "provider_id")?)?;
            let code =
                providers::parse_provider_code(&required(b.provider_code, "provider_code")?)?;
            let grant = providers::grant_provider_token(
                app,
                provider,
                &code,
                b.provider_redirect_uri.as_deref(),
                ctx.client_ip,
            )
            .await?;
            json(ProviderTokenAnswer {
                provider_token: grant.provider_token.expose().to_string(),
                expires_in: grant.expires_in,
                provider_profile: ProviderProfileAnswer {
                    provider_id: grant.identity.provider.as_str(),
                    sub: grant.identity.subject,
                    name: grant.profile.name.unwrap_or_default(),
                    picture: grant.profile.picture.unwrap_or_default(),
                },
            })
        }
        Operation::BindProvider => {
            let who = caller(app, ctx, req)?;
            let b: ProviderTokenOnlyBody = body(req)?;
            let token = SecretToken::parse(
                "provider_token",
                &required(b.provider_token, "provider_token")?,
            )?;
            providers::bind_provider(app, &who, token).await?;
            json(Empty {})
        }
        Operation::SignInWithProvider => {
            let b: ProviderTokenOnlyBody = body(req)?;
            let token = SecretToken::parse(
                "provider_token",
                &required(b.provider_token, "provider_token")?,
            )?;
            json(CredentialsAnswer::from(
                providers::sign_in_with_provider(app, token, &ctx.issuer).await?,
            ))
        }
        Operation::ListProviders => {
            let who = principal(app, ctx, req).await?;
            let data: Vec<ProviderListItem> = providers::list_providers(&who)
                .into_iter()
                .map(|state| ProviderListItem {
                    id: state.provider.as_str(),
                    name: state.provider.display_name(),
                    provider_user_name: state
                        .link
                        .as_ref()
                        .and_then(|l| l.profile.name.clone())
                        .unwrap_or_default(),
                    bind: state.link.is_some(),
                })
                .collect();
            json(ProviderListAnswer {
                total: data.len(),
                data,
            })
        }
        Operation::UnbindProvider => {
            let who = principal(app, ctx, req).await?;
            let provider = ProviderId::parse(param.as_deref().unwrap_or_default())?;
            providers::unbind_provider(app, &who, provider).await?;
            json(Empty {})
        }
        Operation::ChangePassword => passwords::change_password(app, param, req, ctx).await,
        Operation::ResetPassword => passwords::reset_password(app, param, req, ctx).await,
        Operation::RevokeAll => passwords::revoke_all(app, param, req, ctx).await,
        Operation::Jwks => Ok(app.access_tokens.jwks()),
        Operation::OpenIdConfiguration => json(DiscoveryAnswer {
            issuer: &ctx.issuer,
            jwks_uri: format!("{}/.well-known/jwks.json", ctx.issuer),
            token_endpoint: format!("{}/token", ctx.issuer),
            response_types_supported: &["token"],
            subject_types_supported: &["public"],
            id_token_signing_alg_values_supported: app.access_tokens.algorithms(),
            token_endpoint_auth_methods_supported: &["none"],
            claims_supported: &["sub", "sid", "iss", "aud", "exp", "iat", "jti", "scope"],
        }),
    }
}
