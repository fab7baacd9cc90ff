//! `local-api` under concurrent load: a fixed number of keep-alive HTTP/1.1 connections, each
//! sending its next request as soon as the previous answer is in, for a bounded time.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpStream;

pub struct LocalApi {
    pub addr: String,
    child: Child,
}

impl LocalApi {
    /// Starts `local-api` with `PORT=0` and reads the port from the line it prints.
    pub async fn start(bin: &Path) -> Result<Self, String> {
        let mut child = Command::new(bin)
            .env_clear()
            .env("PORT", "0")
            .env("RUST_LOG", "warn")
            // Every request of the load comes from 127.0.0.1: without this the per-IP limit
            // on verification attempts (100 per hour) would answer 429 almost every time and
            // the load would measure refusals instead of the wrong-code path.
            .env("AUTH_VERIFY_ATTEMPTS_PER_IP_PER_HOUR", "4000000000")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (found, listening) = tokio::sync::oneshot::channel();
        // Reads every line, so the server never blocks on a full pipe; passes on the first
        // `local-api listening on` line.
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("local-api listening on http://") {
                    if let Some(found) = found.take() {
                        let _ = found.send(line);
                    }
                }
            }
        });
        let line = match tokio::time::timeout(Duration::from_secs(20), listening).await {
            Ok(Ok(line)) => line,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(
                    "local-api did not print `local-api listening on http://...` within 20 s"
                        .into(),
                );
            }
        };
        let addr = line
            .trim_start_matches("local-api listening on http://")
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        Ok(Self { addr, child })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub async fn stop(self) {
        // Drop kills and reaps the process.
    }

    /// Signs up a user and answers its access token.
    pub async fn access_token(&self, username: &str) -> Result<String, String> {
        let answer: Value = reqwest::Client::new()
            .post(format!("http://{}/auth/v1/signup", self.addr))
            .body(json!({"username": username, "password": crate::flow::PASSWORD}).to_string())
            .send()
            .await
            .map_err(|e| format!("signing up on local-api: {e}"))?
            .json()
            .await
            .map_err(|e| format!("the sign-up answer: {e}"))?;
        answer["access_token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("no access_token in {answer}"))
    }
}

impl Drop for LocalApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct LoadResult {
    pub requests: usize,
    pub elapsed: Duration,
    pub statuses: BTreeMap<u16, usize>,
    pub latencies: Vec<Duration>,
    pub errors: usize,
}

impl LoadResult {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

#[derive(Clone)]
pub struct Template {
    pub method: hyper::Method,
    pub path: String,
    pub bearer: Option<String>,
    pub body: Option<String>,
}

impl Template {
    fn request(&self, host: &str) -> Request<Full<Bytes>> {
        let mut builder = Request::builder()
            .method(self.method.clone())
            .uri(self.path.as_str())
            .header("host", host);
        if let Some(token) = &self.bearer {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let body = match &self.body {
            Some(body) => {
                builder = builder.header("content-type", "text/plain;charset=UTF-8");
                Bytes::from(body.clone())
            }
            None => Bytes::new(),
        };
        builder.body(Full::new(body)).expect("request")
    }
}

/// Runs `connections` connections for `duration` (plus the answers in flight at the end).
pub async fn run(
    addr: &str,
    template: Template,
    connections: usize,
    duration: Duration,
) -> LoadResult {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (addr, template) = (addr.to_string(), template.clone());
        tasks.spawn(async move {
            let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
            let mut latencies = Vec::new();
            let mut errors = 0;
            let Ok(stream) = TcpStream::connect(&addr).await else {
                return (statuses, latencies, 1);
            };
            let _ = stream.set_nodelay(true);
            let Ok((mut sender, connection)) = http1::handshake(TokioIo::new(stream)).await else {
                return (statuses, latencies, 1);
            };
            let driver = tokio::spawn(connection);
            while Instant::now() < deadline {
                let sent = Instant::now();
                let outcome = match sender.send_request(template.request(&addr)).await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        response.into_body().collect().await.map(|_| status).ok()
                    }
                    Err(_) => None,
                };
                match outcome {
                    Some(status) => {
                        latencies.push(sent.elapsed());
                        *statuses.entry(status).or_default() += 1;
                    }
                    None => {
                        errors += 1;
                        break;
                    }
                }
            }
            driver.abort();
            (statuses, latencies, errors)
        });
    }
    let mut result = LoadResult {
        requests: 0,
        elapsed: Duration::ZERO,
        statuses: BTreeMap::new(),
        latencies: Vec::new(),
        errors: 0,
    };
    while let Some(joined) = tasks.join_next().await {
        if let Ok((statuses, latencies, errors)) = joined {
            for (status, count) in statuses {
                *result.statuses.entry(status).or_default() += count;
            }
            result.requests += latencies.len();
            result.latencies.extend(latencies);
            result.errors += errors;
        }
    }
    result.elapsed = started.elapsed();
    result
}
