//! A loopback HTTP proxy in front of moto_server that logs every AWS request: what it was
//! (`X-Amz-Target` for DynamoDB), when it started and when its answer had fully arrived.
//! Requests whose intervals overlap ran concurrently.
//!
//! Each DynamoDB and SSM request is held for a fixed delay before it is forwarded: a stand-in
//! for the network round trip to the AWS endpoint. On loopback, moto can answer a request before the
//! client has even sent the one it issued at the same time, and two concurrent requests
//! would then look sequential; with the delay, requests issued together always overlap.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

#[derive(Clone, Debug)]
pub struct Record {
    /// `DynamoDB_20120810.GetItem`, `SESv2 /v2/email/outbound-emails`, `SNS Publish`, ...
    pub target: String,
    pub start: Instant,
    pub end: Instant,
    pub status: u16,
}

impl Record {
    pub fn is_dynamodb(&self) -> bool {
        self.target.starts_with("DynamoDB_")
    }

    /// A request that stands for a network round trip to an AWS endpoint and is delayed.
    fn is_delayed(&self) -> bool {
        self.is_dynamodb() || self.target.starts_with("AmazonSSM.")
    }

    /// SES and SNS, which the cold-request runs send to the instant fakes instead of moto.
    fn is_message(&self) -> bool {
        self.target.starts_with("SESv2 ") || self.target == "Query Publish"
    }

    /// `GetItem` for `DynamoDB_20120810.GetItem`.
    pub fn operation(&self) -> &str {
        self.target
            .split_once('.')
            .map(|(_, op)| op)
            .unwrap_or(&self.target)
    }

    /// The operation, with the HTTP status when it was refused (`PutItem(400)`: e.g. a
    /// condition that did not hold).
    pub fn outcome(&self) -> String {
        if (200..300).contains(&self.status) {
            self.operation().to_string()
        } else {
            format!("{}({})", self.operation(), self.status)
        }
    }
}

pub struct Proxy {
    pub origin: String,
    log: Arc<Mutex<Vec<Record>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

type Upstream = Client<HttpConnector, Full<Bytes>>;

struct Upstreams {
    aws: String,
    messages: Option<String>,
}

impl Proxy {
    /// Forwards everything to `upstream`.
    pub async fn start(upstream: &str, delay: Duration) -> std::io::Result<Self> {
        Self::start_split(upstream, None, delay).await
    }

    /// Forwards SES and SNS to `messages` when given (the fakes, which keep the codes),
    /// everything else to `upstream`.
    pub async fn start_split(
        upstream: &str,
        messages: Option<&str>,
        delay: Duration,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let origin = format!("http://{}", listener.local_addr()?);
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client: Upstream = Client::builder(TokioExecutor::new()).build(connector);
        let upstream = Arc::new(Upstreams {
            aws: upstream.trim_end_matches('/').to_string(),
            messages: messages.map(|m| m.trim_end_matches('/').to_string()),
        });
        let server_log = Arc::clone(&log);
        let server = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let (client, upstream, log) = (
                    client.clone(),
                    Arc::clone(&upstream),
                    Arc::clone(&server_log),
                );
                connections.spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let (client, upstream, log) =
                            (client.clone(), Arc::clone(&upstream), Arc::clone(&log));
                        async move {
                            Ok::<_, Infallible>(forward(&client, &upstream, &log, delay, req).await)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(Self {
            origin,
            log,
            server,
        })
    }

    /// How many requests are logged so far: a mark for [`Proxy::since`].
    pub fn mark(&self) -> usize {
        self.log.lock().expect("lock").len()
    }

    /// The requests logged after `mark`, in order of completion.
    pub fn since(&self, mark: usize) -> Vec<Record> {
        self.log.lock().expect("lock")[mark..].to_vec()
    }
}

fn label(req: &hyper::http::request::Parts, body: &[u8]) -> String {
    if let Some(target) = req
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
    {
        return target.to_string();
    }
    let path = req.uri.path();
    if path.starts_with("/v2/email") {
        return format!("SESv2 {} {path}", req.method);
    }
    let text = String::from_utf8_lossy(body);
    match text
        .split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
    {
        Some(action) => format!("Query {action}"),
        None => format!("{} {path}", req.method),
    }
}

async fn forward(
    client: &Upstream,
    upstreams: &Upstreams,
    log: &Mutex<Vec<Record>>,
    delay: Duration,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let start = Instant::now();
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return failure("unreadable request body"),
    };
    let mut record = Record {
        target: label(&parts, &body),
        start,
        end: start,
        status: 0,
    };
    if record.is_delayed() && !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let upstream = match &upstreams.messages {
        Some(messages) if record.is_message() => messages,
        _ => &upstreams.aws,
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let mut outgoing = Request::builder()
        .method(parts.method.clone())
        .uri(format!("{upstream}{path}"));
    for (name, value) in &parts.headers {
        outgoing = outgoing.header(name, value);
    }
    let Ok(outgoing) = outgoing.body(Full::new(body)) else {
        return failure("cannot rebuild the request");
    };
    let answer = match client.request(outgoing).await {
        Ok(answer) => answer,
        Err(err) => return failure(&format!("upstream: {err}")),
    };
    let (parts, body) = answer.into_parts();
    let body = match body.collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return failure("unreadable upstream body"),
    };
    record.end = Instant::now();
    record.status = parts.status.as_u16();
    log.lock().expect("lock").push(record);
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = parts.status;
    for (name, value) in &parts.headers {
        // The body is re-sent whole: hop-by-hop framing is recomputed by hyper.
        if name != hyper::header::TRANSFER_ENCODING && name != hyper::header::CONNECTION {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}

fn failure(why: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(why.to_string())));
    *response.status_mut() = hyper::StatusCode::BAD_GATEWAY;
    response
}

/// The most of `records` that ran one after another, no two overlapping: the round trips a
/// caller waits for in sequence. Greedy by earliest end gives the largest such set.
pub fn sequential(records: &[&Record]) -> usize {
    let mut by_end = records.to_vec();
    by_end.sort_by_key(|r| r.end);
    let mut count = 0;
    let mut free_from: Option<Instant> = None;
    for record in &by_end {
        if free_from.is_none_or(|t| record.start >= t) {
            count += 1;
            free_from = Some(record.end);
        }
    }
    count
}

/// DynamoDB use of one invocation.
#[derive(Clone, Debug, Default)]
pub struct DynamoUse {
    pub requests: usize,
    /// The most requests of the invocation that ran one after another (no two overlap): the
    /// round trips a caller waits for in sequence.
    pub sequential: usize,
    pub transactions: usize,
    /// Single-item or batch writes outside a transaction.
    pub plain_writes: usize,
    /// The operations in order of start, concurrent ones joined with `+`.
    pub shape: String,
}

impl DynamoUse {
    pub fn of(records: &[Record]) -> Self {
        let mut dynamo: Vec<&Record> = records.iter().filter(|r| r.is_dynamodb()).collect();
        dynamo.sort_by_key(|r| r.start);
        let sequential = sequential(&dynamo);
        // Shape: group requests that overlap the group's span into one `a+b` round.
        let mut rounds: Vec<(Instant, Vec<String>)> = Vec::new();
        for record in &dynamo {
            match rounds.last_mut() {
                Some((end, ops)) if record.start < *end => {
                    ops.push(record.outcome());
                    *end = (*end).max(record.end);
                }
                _ => rounds.push((record.end, vec![record.outcome()])),
            }
        }
        // Concurrent requests in a fixed order, so that runs compare.
        let shape = rounds
            .iter_mut()
            .map(|(_, ops)| {
                ops.sort();
                ops.join("+")
            })
            .collect::<Vec<_>>()
            .join(" → ");
        Self {
            requests: dynamo.len(),
            sequential,
            transactions: dynamo
                .iter()
                .filter(|r| r.operation() == "TransactWriteItems")
                .count(),
            plain_writes: dynamo
                .iter()
                .filter(|r| {
                    matches!(
                        r.operation(),
                        "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem"
                    )
                })
                .count(),
            shape,
        }
    }
}
