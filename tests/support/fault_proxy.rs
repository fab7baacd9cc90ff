//! A loopback HTTP proxy in front of moto_server that makes chosen AWS calls fail.
//!
//! The service under test gets the proxy's origin as `AWS_ENDPOINT_URL`; every request is
//! forwarded to moto unchanged unless a fault is armed for it. A fault is armed for one kind
//! of call ([`Call`]: a DynamoDB operation by its `X-Amz-Target`, optionally only when the
//! request mentions some text such as a key prefix; SES v2 `SendEmail` by its path; SNS
//! `Publish` by its `Action` form field) and for the next N matching requests, or all of them.
//! The faults ([`Fault`]) are what the services do when they fail: their throttling answer, an
//! HTTP 500, an answer that comes too late, a connection closed without an answer, and a
//! refusal that no retry can help.
//!
//! The proxy also keeps what was delivered (emails and SMS that moto accepted), so tests read
//! codes from it instead of from moto's `data.json`, whose dump of everything holds up a
//! serialised moto for seconds.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// What goes wrong with a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The service's throttling answer; the request does not reach moto. DynamoDB answers
    /// HTTP 400 `ThrottlingException` and `ProvisionedThroughputExceededException` in turn, SES
    /// HTTP 429 `TooManyRequestsException`, SNS HTTP 400 `Throttling`.
    Throttle,
    /// HTTP 500 in the service's error shape; the request does not reach moto.
    ServerError,
    /// The request reaches moto and takes effect, but its answer is held back this long (longer
    /// than the client's attempt timeout): the client cannot tell whether it took effect.
    Slow(Duration),
    /// The connection is closed without an answer; the request does not reach moto.
    Drop,
    /// A refusal that retrying cannot help; the request does not reach moto. DynamoDB answers
    /// HTTP 400 `AccessDeniedException`, SES HTTP 400 `MessageRejected`, SNS HTTP 400
    /// `InvalidParameter`.
    Reject,
}

impl Fault {
    /// Whether the fault may pass on its own, so that a retry can succeed.
    pub fn transient(&self) -> bool {
        !matches!(self, Fault::Reject)
    }

    /// Whether the request reaches moto (and so may take effect) despite the fault.
    pub fn forwards(&self) -> bool {
        matches!(self, Fault::Slow(_))
    }
}

/// Which calls a fault hits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// A DynamoDB operation (`GetItem`, `TransactWriteItems`, ...), only when the request body
    /// contains `containing` if that is set (e.g. `"SESSION#"` for writes of sessions).
    DynamoDb {
        operation: &'static str,
        containing: Option<&'static str>,
    },
    /// SES v2 `SendEmail` (`POST /v2/email/outbound-emails`).
    SesSendEmail,
    /// SNS `Publish` (`Action=Publish`).
    SnsPublish,
}

impl Call {
    pub fn dynamodb(operation: &'static str) -> Self {
        Call::DynamoDb {
            operation,
            containing: None,
        }
    }

    /// A DynamoDB operation, only on requests whose body contains `text`.
    pub fn dynamodb_on(operation: &'static str, text: &'static str) -> Self {
        Call::DynamoDb {
            operation,
            containing: Some(text),
        }
    }

    fn matches(&self, seen: &Seen) -> bool {
        match self {
            Call::DynamoDb {
                operation,
                containing,
            } => {
                seen.target.as_deref() == Some(&format!("DynamoDB_20120810.{operation}"))
                    && containing.is_none_or(|text| seen.body.contains(text))
            }
            Call::SesSendEmail => {
                seen.method == hyper::Method::POST && seen.path == "/v2/email/outbound-emails"
            }
            Call::SnsPublish => seen.body.split('&').any(|field| field == "Action=Publish"),
        }
    }
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Call::DynamoDb {
                operation,
                containing: None,
            } => write!(f, "DynamoDB {operation}"),
            Call::DynamoDb {
                operation,
                containing: Some(text),
            } => write!(f, "DynamoDB {operation} of {text}"),
            Call::SesSendEmail => write!(f, "SES SendEmail"),
            Call::SnsPublish => write!(f, "SNS Publish"),
        }
    }
}

/// How many matching requests a fault hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Times {
    /// The next N.
    Next(u32),
    /// Every one until the fault is cleared.
    Always,
}

/// What the proxy needs to know of a request to match it; every request is kept as seen, so
/// that a test can tell which AWS actions a process used.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: hyper::Method,
    pub path: String,
    /// The `X-Amz-Target` header (DynamoDB, SSM), when there is one.
    pub target: Option<String>,
    pub body: String,
}

struct Armed {
    call: Call,
    fault: Fault,
    left: Times,
    hits: u32,
}

#[derive(Default)]
struct State {
    armed: Option<Armed>,
    /// (recipient, text) of every message moto accepted, oldest first.
    delivered: Vec<(String, String)>,
    /// Every request, faulted or not, oldest first.
    requests: Vec<Seen>,
}

/// The proxy; it stops when dropped.
pub struct FaultProxy {
    origin: String,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Hop-by-hop headers, and those the forwarding client sets itself.
const NOT_FORWARDED: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "upgrade",
    "proxy-connection",
];

impl FaultProxy {
    /// Starts a proxy on a free port of 127.0.0.1 in front of this process's moto_server.
    pub async fn start() -> FaultProxy {
        let upstream = tokio::task::spawn_blocking(crate::moto::endpoint)
            .await
            .expect("starting moto_server panicked");
        Self::start_in_front_of(upstream).await
    }

    /// Starts a proxy on a free port of 127.0.0.1 in front of `upstream` (an origin).
    pub async fn start_in_front_of(upstream: String) -> FaultProxy {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind the fault proxy");
        let origin = format!("http://{}", listener.local_addr().expect("address"));
        let state = Arc::new(Mutex::new(State::default()));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client");
        let shared = Arc::clone(&state);
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let state = Arc::clone(&shared);
                let client = client.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let state = Arc::clone(&state);
                        let client = client.clone();
                        let upstream = upstream.clone();
                        async move { relay(&state, &client, &upstream, req).await }
                    });
                    // A dropped connection ends here with an error: that is the point.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FaultProxy {
            origin,
            state,
            server,
        }
    }

    /// `http://127.0.0.1:<port>`: the value for the service's `AWS_ENDPOINT_URL`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Arms `fault` for `times` requests matching `call`, replacing any fault armed before.
    pub fn inject(&self, call: Call, fault: Fault, times: Times) {
        self.state.lock().unwrap().armed = Some(Armed {
            call,
            fault,
            left: times,
            hits: 0,
        });
    }

    /// Disarms the fault; answers how many requests it hit.
    pub fn clear(&self) -> u32 {
        self.state
            .lock()
            .unwrap()
            .armed
            .take()
            .map(|armed| armed.hits)
            .unwrap_or(0)
    }

    /// The texts of the messages delivered to `to` (an email, or an E.164 number), oldest
    /// first.
    pub fn messages_to(&self, to: &str) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .delivered
            .iter()
            .filter(|(recipient, _)| recipient == to)
            .map(|(_, text)| text.clone())
            .collect()
    }

    /// The six-digit code of the newest message delivered to `to`.
    pub fn latest_code(&self, to: &str) -> Option<String> {
        self.messages_to(to)
            .iter()
            .rev()
            .find_map(|text| crate::aws::code_in(text))
    }

    /// Every request the proxy received so far, oldest first, faulted or not.
    pub fn requests(&self) -> Vec<Seen> {
        self.state.lock().unwrap().requests.clone()
    }

    /// How many requests the armed fault has hit so far.
    pub fn hits(&self) -> u32 {
        self.state
            .lock()
            .unwrap()
            .armed
            .as_ref()
            .map(|armed| armed.hits)
            .unwrap_or(0)
    }
}

/// The fault to apply to a request, if one is armed for it; counts the hit.
fn take_fault(state: &Mutex<State>, seen: &Seen) -> Option<(Fault, u32)> {
    let mut state = state.lock().unwrap();
    let armed = state.armed.as_mut()?;
    if !armed.call.matches(seen) {
        return None;
    }
    match &mut armed.left {
        Times::Always => {}
        Times::Next(0) => return None,
        Times::Next(left) => *left -= 1,
    }
    armed.hits += 1;
    Some((armed.fault, armed.hits))
}

/// An error from the service makes hyper close the connection without answering.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the fault proxy")
    }
}

impl std::error::Error for Dropped {}

async fn relay(
    state: &Mutex<State>,
    client: &reqwest::Client,
    upstream: &str,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let (parts, incoming) = req.into_parts();
    let body = match incoming.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Err(Dropped),
    };
    let seen = Seen {
        method: parts.method.clone(),
        path: parts.uri.path().to_string(),
        target: parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    state.lock().unwrap().requests.push(seen.clone());
    let fault = take_fault(state, &seen);
    let service = Service::of(&seen);
    let delivering = Call::SesSendEmail.matches(&seen) || Call::SnsPublish.matches(&seen);
    let forwarded = |answer: Result<Response<Full<Bytes>>, Dropped>| {
        if let Ok(response) = &answer {
            if delivering && response.status().is_success() {
                state
                    .lock()
                    .unwrap()
                    .delivered
                    .extend(delivered_message(&seen));
            }
        }
        answer
    };
    match fault {
        None => forwarded(forward(client, upstream, &parts, body).await),
        Some((Fault::Throttle, hit)) => Ok(service.throttled(hit)),
        Some((Fault::ServerError, _)) => Ok(service.server_error()),
        Some((Fault::Drop, _)) => Err(Dropped),
        Some((Fault::Reject, _)) => Ok(service.rejected()),
        Some((Fault::Slow(delay), _)) => {
            let answer = forwarded(forward(client, upstream, &parts, body).await);
            tokio::time::sleep(delay).await;
            answer
        }
    }
}

/// The recipient and text of an SES v2 `SendEmail` (JSON) or SNS `Publish` (form) request.
fn delivered_message(seen: &Seen) -> Option<(String, String)> {
    if seen.path.starts_with("/v2/email") {
        let request: serde_json::Value = serde_json::from_str(&seen.body).ok()?;
        let to = request["Destination"]["ToAddresses"][0].as_str()?;
        let text = request["Content"]["Simple"]["Body"]["Text"]["Data"].as_str()?;
        return Some((to.to_string(), text.to_string()));
    }
    let field = |name: &str| {
        seen.body
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| form_decode(value))
    };
    Some((field("PhoneNumber")?, field("Message")?))
}

/// Decodes one `application/x-www-form-urlencoded` value.
fn form_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(raw.get(i + 1..i + 3).unwrap_or(""), 16) {
                    Ok(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn forward(
    client: &reqwest::Client,
    upstream: &str,
    parts: &hyper::http::request::Parts,
    body: Bytes,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let method =
        reqwest::Method::from_bytes(parts.method.as_str().as_bytes()).map_err(|_| Dropped)?;
    let mut request = client.request(method, format!("{upstream}{path}"));
    for (name, value) in &parts.headers {
        if !NOT_FORWARDED.contains(&name.as_str()) {
            request = request.header(name.as_str(), value.as_bytes());
        }
    }
    let answer = request.body(body).send().await.map_err(|_| Dropped)?;
    let mut response = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        if !NOT_FORWARDED.contains(&name.as_str()) {
            response = response.header(name.as_str(), value.as_bytes());
        }
    }
    let bytes = answer.bytes().await.map_err(|_| Dropped)?;
    response.body(Full::new(bytes)).map_err(|_| Dropped)
}

/// Which service a request is for, to answer a fault in its error shape.
#[derive(Clone, Copy)]
enum Service {
    DynamoDb,
    Ses,
    Sns,
}

impl Service {
    fn of(seen: &Seen) -> Self {
        if seen
            .target
            .as_deref()
            .is_some_and(|t| t.starts_with("DynamoDB_"))
        {
            Service::DynamoDb
        } else if seen.path.starts_with("/v2/email") {
            Service::Ses
        } else {
            Service::Sns
        }
    }

    fn throttled(self, hit: u32) -> Response<Full<Bytes>> {
        match self {
            Service::DynamoDb => {
                let code = if hit % 2 == 1 {
                    "ThrottlingException"
                } else {
                    "ProvisionedThroughputExceededException"
                };
                dynamodb_error(
                    StatusCode::BAD_REQUEST,
                    code,
                    "The level of configured provisioned throughput for the table was exceeded.",
                )
            }
            Service::Ses => rest_json_error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequestsException",
                "Too many requests have been made to the operation.",
            ),
            Service::Sns => query_error(
                StatusCode::BAD_REQUEST,
                "Sender",
                "Throttling",
                "Rate exceeded",
            ),
        }
    }

    fn rejected(self) -> Response<Full<Bytes>> {
        match self {
            Service::DynamoDb => dynamodb_error(
                StatusCode::BAD_REQUEST,
                "AccessDeniedException",
                "User is not authorized to perform this action on this resource.",
            ),
            Service::Ses => rest_json_error(
                StatusCode::BAD_REQUEST,
                "MessageRejected",
                "Email address is not verified.",
            ),
            Service::Sns => query_error(
                StatusCode::BAD_REQUEST,
                "Sender",
                "InvalidParameter",
                "Invalid parameter: PhoneNumber",
            ),
        }
    }

    fn server_error(self) -> Response<Full<Bytes>> {
        match self {
            Service::DynamoDb => dynamodb_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "Internal server error",
            ),
            Service::Ses => rest_json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalFailure",
                "The request processing has failed because of an unknown error.",
            ),
            Service::Sns => query_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Receiver",
                "InternalError",
                "Indicates an internal service error.",
            ),
        }
    }
}

fn response(
    status: StatusCode,
    content_type: &'static str,
    extra: Option<(&'static str, &'static str)>,
    body: String,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    headers.insert(
        HeaderName::from_static("x-amzn-requestid"),
        HeaderValue::from_static("fault-proxy"),
    );
    if let Some((name, value)) = extra {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    response
}

fn dynamodb_error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    response(
        status,
        "application/x-amz-json-1.0",
        None,
        serde_json::json!({
            "__type": format!("com.amazonaws.dynamodb.v20120810#{code}"),
            "message": message,
        })
        .to_string(),
    )
}

fn rest_json_error(status: StatusCode, code: &'static str, message: &str) -> Response<Full<Bytes>> {
    response(
        status,
        "application/json",
        Some(("x-amzn-errortype", code)),
        serde_json::json!({ "message": message }).to_string(),
    )
}

fn query_error(status: StatusCode, kind: &str, code: &str, message: &str) -> Response<Full<Bytes>> {
    response(
        status,
        "text/xml",
        None,
        format!(
            "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error>\
             <Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>\
             <RequestId>fault-proxy</RequestId></ErrorResponse>"
        ),
    )
}

/// Every item of a table, read straight from moto (never through a proxy), by `pk`, with
/// attribute values as plain JSON (strings, numbers, booleans, lists and objects).
pub async fn table_items(table: &str) -> std::collections::BTreeMap<String, serde_json::Value> {
    let client = crate::moto::dynamodb_client().await;
    let mut items = std::collections::BTreeMap::new();
    let mut start = None;
    // Bounded: a test table holds a few thousand items at most.
    for _ in 0..1000 {
        let page = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan the table");
        for item in page.items() {
            let json = attributes_json(item);
            let pk = json["pk"].as_str().unwrap_or_default().to_string();
            items.insert(pk, json);
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    items
}

fn attributes_json(
    item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
) -> serde_json::Value {
    serde_json::Value::Object(
        item.iter()
            .map(|(name, value)| (name.clone(), attribute_json(value)))
            .collect(),
    )
}

fn attribute_json(value: &aws_sdk_dynamodb::types::AttributeValue) -> serde_json::Value {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    use serde_json::{json, Value};
    match value {
        A::S(s) => json!(s),
        A::N(n) => n
            .parse::<i64>()
            .map(|n| json!(n))
            .unwrap_or_else(|_| json!(n)),
        A::Bool(b) => json!(b),
        A::Null(_) => Value::Null,
        A::L(list) => Value::Array(list.iter().map(attribute_json).collect()),
        A::M(map) => attributes_json(map),
        other => json!(format!("{other:?}")),
    }
}
