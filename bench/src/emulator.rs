//! A Lambda Runtime API emulator on loopback: the part of
//! <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html> that `lambda_runtime` uses.
//!
//! One emulator serves one function process. It records when each
//! `GET /2018-06-01/runtime/invocation/next` arrives (the first one ends the cold start), hands
//! out queued events, and times each invocation from handing the event out to receiving the
//! function's `POST .../invocation/{id}/response` in full.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

const NEXT: &str = "/2018-06-01/runtime/invocation/next";
const INVOCATION: &str = "/2018-06-01/runtime/invocation/";
const INIT_ERROR: &str = "/2018-06-01/runtime/init/error";

/// What the function answered to one invocation.
pub struct Answer {
    /// When the event was handed out (the answer to `/next` was about to be written).
    pub handed: Instant,
    /// When the function's response body had fully arrived.
    pub done: Instant,
    pub body: Bytes,
    /// The function reported an error (`/error`) instead of a response.
    pub error: bool,
}

impl Answer {
    pub fn elapsed(&self) -> Duration {
        self.done.saturating_duration_since(self.handed)
    }
}

struct Queued {
    id: String,
    payload: Bytes,
    reply: oneshot::Sender<Answer>,
}

struct Shared {
    function: String,
    queue: tokio::sync::Mutex<mpsc::Receiver<Queued>>,
    in_flight: Mutex<HashMap<String, (Instant, oneshot::Sender<Answer>)>>,
    polls: mpsc::UnboundedSender<Instant>,
    init_error: Mutex<Option<String>>,
}

pub struct Emulator {
    addr: SocketAddr,
    queue: mpsc::Sender<Queued>,
    polls: mpsc::UnboundedReceiver<Instant>,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
    next_id: AtomicU64,
}

impl Emulator {
    /// Listens on 127.0.0.1 on a free port.
    pub async fn start(function: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let (queue, receiver) = mpsc::channel(16);
        let (poll_tx, polls) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            function: function.to_string(),
            queue: tokio::sync::Mutex::new(receiver),
            in_flight: Mutex::new(HashMap::new()),
            polls: poll_tx,
            init_error: Mutex::new(None),
        });
        let server_shared = Arc::clone(&shared);
        let server = tokio::spawn(async move {
            // Dropping the set (when the server task is aborted) aborts every connection.
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let shared = Arc::clone(&server_shared);
                connections.spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let shared = Arc::clone(&shared);
                        async move { Ok::<_, Infallible>(route(&shared, req).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(Self {
            addr,
            queue,
            polls,
            shared,
            server,
            next_id: AtomicU64::new(1),
        })
    }

    /// The value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn runtime_api(&self) -> String {
        self.addr.to_string()
    }

    /// When the next `GET .../invocation/next` arrives, or `None` after `wait`.
    pub async fn next_poll(&mut self, wait: Duration) -> Option<Instant> {
        tokio::time::timeout(wait, self.polls.recv())
            .await
            .ok()
            .flatten()
    }

    /// The body of a `POST /runtime/init/error`, if the function sent one.
    pub fn init_error(&self) -> Option<String> {
        self.shared.init_error.lock().expect("lock").clone()
    }

    /// Queues one event without waiting for the answer: a cold request queues its event
    /// before the function process exists, as Lambda holds the event that starts it.
    pub async fn queue(&self, payload: Bytes) -> Result<oneshot::Receiver<Answer>, String> {
        let id = format!(
            "bench-{:08}-{}",
            self.next_id.fetch_add(1, Ordering::Relaxed),
            self.addr.port()
        );
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Queued { id, payload, reply })
            .await
            .map_err(|_| "the emulator stopped".to_string())?;
        Ok(answer)
    }

    /// Queues one event and waits (at most `wait`) for the function's answer.
    pub async fn invoke(&self, payload: Bytes, wait: Duration) -> Result<Answer, String> {
        let answer = self.queue(payload).await?;
        match tokio::time::timeout(wait, answer).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err("the emulator dropped the invocation".into()),
            Err(_) => Err(format!("no answer within {wait:?}")),
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

async fn route(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    match (req.method(), path.as_str()) {
        (&Method::GET, NEXT) => {
            let _ = shared.polls.send(Instant::now());
            let queued = {
                let mut queue = shared.queue.lock().await;
                queue.recv().await
            };
            let Some(queued) = queued else {
                return plain(StatusCode::GONE, "the emulator is shutting down");
            };
            let deadline_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis()
                + 900_000;
            let response = Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .header("lambda-runtime-aws-request-id", queued.id.as_str())
                .header("lambda-runtime-deadline-ms", deadline_ms.to_string())
                .header(
                    "lambda-runtime-invoked-function-arn",
                    format!(
                        "arn:aws:lambda:us-east-1:123456789012:function:{}",
                        shared.function
                    ),
                )
                .header(
                    "lambda-runtime-trace-id",
                    "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0",
                )
                .body(Full::new(queued.payload))
                .expect("a valid response");
            let handed = Instant::now();
            shared
                .in_flight
                .lock()
                .expect("lock")
                .insert(queued.id, (handed, queued.reply));
            response
        }
        (&Method::POST, INIT_ERROR) => {
            let body = req.into_body().collect().await.map(|b| b.to_bytes());
            let text = body
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            *shared.init_error.lock().expect("lock") = Some(text);
            plain(StatusCode::ACCEPTED, "{}")
        }
        (&Method::POST, p) if p.starts_with(INVOCATION) => {
            let rest = &p[INVOCATION.len()..];
            let (id, kind) = match rest.rsplit_once('/') {
                Some((id, kind @ ("response" | "error"))) => (id.to_string(), kind),
                _ => return plain(StatusCode::NOT_FOUND, "unknown invocation path"),
            };
            let body = match req.into_body().collect().await {
                Ok(body) => body.to_bytes(),
                Err(_) => return plain(StatusCode::BAD_REQUEST, "unreadable body"),
            };
            let done = Instant::now();
            let entry = shared.in_flight.lock().expect("lock").remove(&id);
            match entry {
                Some((handed, reply)) => {
                    let _ = reply.send(Answer {
                        handed,
                        done,
                        body,
                        error: kind == "error",
                    });
                    plain(StatusCode::ACCEPTED, "{\"status\":\"OK\"}")
                }
                None => plain(StatusCode::BAD_REQUEST, "unknown request id"),
            }
        }
        _ => plain(
            StatusCode::NOT_FOUND,
            "not part of the emulated Runtime API",
        ),
    }
}
