//! A function binary running as its own process against its own Runtime API emulator, and
//! the API Gateway events it is sent. `tests/lambda_runtime.rs` uses this module too.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};

use crate::emulator::Emulator;

/// How long a function may take to reach its first poll before the start counts as failed.
const START_LIMIT: Duration = Duration::from_secs(20);
/// How long one invocation may take (Argon2id and moto_server included).
const INVOKE_LIMIT: Duration = Duration::from_secs(30);

/// The variables the Lambda service sets and `lambda_runtime` reads (`Config::from_env` and
/// the API client), plus the AWS SDK basics. The process environment is cleared first, so
/// nothing of the caller's environment (profiles, real credentials) leaks in.
pub fn lambda_env(function: &str, runtime_api: &str) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", function.to_string()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_string()),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2025/01/01/[$LATEST]0123456789abcdef".to_string(),
        ),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function}"),
        ),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_string()),
        ("AWS_ACCESS_KEY_ID", "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ("AWS_CONFIG_FILE", "/dev/null".to_string()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_string()),
        ("TZ", ":UTC".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// An API Gateway HTTP API (payload v2.0) event, as API Gateway sends it to Lambda.
pub fn event(
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
    source_ip: &str,
) -> Value {
    let mut headers = serde_json::Map::new();
    headers.insert("accept".into(), "application/json".into());
    headers.insert(
        "host".into(),
        "bench.execute-api.us-east-1.amazonaws.com".into(),
    );
    headers.insert("user-agent".into(), "bench".into());
    headers.insert("x-forwarded-for".into(), source_ip.into());
    headers.insert("x-forwarded-proto".into(), "https".into());
    if body.is_some() {
        // What the CloudBase SDK sends.
        headers.insert("content-type".into(), "text/plain;charset=UTF-8".into());
    }
    if let Some(token) = bearer {
        headers.insert("authorization".into(), format!("Bearer {token}").into());
    }
    // API Gateway passes the query apart from the path, as it came (still URL-encoded).
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": "bench.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "bench",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": "bench",
            },
            "requestId": "bench-request",
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Jan/2025:00:00:00 +0000",
            "timeEpoch": 1_735_689_600_000_u64,
        },
        "body": body.map(Value::to_string),
        "isBase64Encoded": false,
    })
}

/// One answer of a function, as API Gateway would turn it into HTTP.
pub struct Invoked {
    pub status: u16,
    /// The response body parsed as JSON (a JSON string when it is not JSON).
    pub body: Value,
    pub elapsed: Duration,
}

pub struct FunctionProcess {
    pub name: String,
    pub pid: u32,
    /// From just before `spawn` to the arrival of the first `GET .../invocation/next`.
    pub cold_start: Duration,
    child: Child,
    emulator: Emulator,
}

/// A cold request: the event was queued at the emulator before the process was spawned.
pub struct ColdRequest {
    /// From just before `spawn` to the first `GET .../invocation/next` (the old "cold start").
    pub first_poll: Duration,
    /// From just before `spawn` to the response fully received: what a user waits for.
    pub response: Duration,
    pub invoked: Invoked,
}

impl FunctionProcess {
    /// Starts `bin` as function `name` and waits for its first poll of the Runtime API.
    /// `stderr_log`: where the function's logs go (`None`: discarded).
    pub async fn start(
        bin: &Path,
        name: &str,
        env: &[(String, String)],
        stderr_log: Option<&Path>,
    ) -> Result<Self, String> {
        let (process, _) = Self::launch(bin, &[], name, env, stderr_log, None).await?;
        Ok(process)
    }

    /// Queues `event`, then starts `program` (with `args`: the Node.js peer runs as `node
    /// file`) as function `name`, and waits for the answer to that event.
    pub async fn start_cold(
        program: &Path,
        args: &[String],
        name: &str,
        env: &[(String, String)],
        stderr_log: Option<&Path>,
        event: &Value,
    ) -> Result<(Self, ColdRequest), String> {
        let (process, cold) =
            Self::launch(program, args, name, env, stderr_log, Some(event)).await?;
        Ok((process, cold.expect("an event was queued")))
    }

    async fn launch(
        program: &Path,
        args: &[String],
        name: &str,
        env: &[(String, String)],
        stderr_log: Option<&Path>,
        event: Option<&Value>,
    ) -> Result<(Self, Option<ColdRequest>), String> {
        let mut emulator = Emulator::start(name)
            .await
            .map_err(|e| format!("starting the Runtime API emulator: {e}"))?;
        let stderr = match stderr_log {
            Some(path) => Stdio::from(
                std::fs::File::create(path)
                    .map_err(|e| format!("creating {}: {e}", path.display()))?,
            ),
            None => Stdio::null(),
        };
        let mut command = Command::new(program);
        command
            .args(args)
            .env_clear()
            .envs(lambda_env(name, &emulator.runtime_api()))
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let mut pending = match event {
            Some(event) => Some(
                emulator
                    .queue(Bytes::from(serde_json::to_vec(event).expect("JSON")))
                    .await
                    .map_err(|e| format!("{name}: {e}"))?,
            ),
            None => None,
        };
        let spawned = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", program.display()))?;
        let pid = child.id();
        let log_note = || {
            stderr_log
                .map(|p| format!(" (log: {})", p.display()))
                .unwrap_or_default()
        };
        // Wait for the first poll, checking now and then that the process is still alive.
        let first_poll = loop {
            if let Some(poll) = emulator.next_poll(Duration::from_millis(20)).await {
                break poll;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let why = emulator.init_error().unwrap_or_default();
                return Err(format!(
                    "{name} exited before polling the Runtime API ({status}) {why}{}",
                    log_note()
                ));
            }
            if spawned.elapsed() > START_LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{name} did not poll the Runtime API within {START_LIMIT:?}"
                ));
            }
        };
        let cold = match pending.as_mut() {
            Some(answer) => {
                let answer = loop {
                    match tokio::time::timeout(Duration::from_millis(20), &mut *answer).await {
                        Ok(Ok(answer)) => break answer,
                        Ok(Err(_)) => {
                            return Err(format!("{name}: the emulator dropped the event"))
                        }
                        Err(_) => {}
                    }
                    if let Ok(Some(status)) = child.try_wait() {
                        return Err(format!(
                            "{name} exited before answering its first event ({status}){}",
                            log_note()
                        ));
                    }
                    if spawned.elapsed() > START_LIMIT + INVOKE_LIMIT {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(format!("{name} did not answer its first event in time"));
                    }
                };
                Some(ColdRequest {
                    first_poll: first_poll.saturating_duration_since(spawned),
                    response: answer.done.saturating_duration_since(spawned),
                    invoked: parse_answer(name, answer)?,
                })
            }
            None => None,
        };
        Ok((
            Self {
                name: name.to_string(),
                pid,
                cold_start: first_poll.saturating_duration_since(spawned),
                child,
                emulator,
            },
            cold,
        ))
    }

    /// Sends one event (an API Gateway HTTP API v2 payload) and waits for the answer.
    pub async fn invoke(&self, event: &Value) -> Result<Invoked, String> {
        let payload = Bytes::from(serde_json::to_vec(event).expect("JSON"));
        let answer = self
            .emulator
            .invoke(payload, INVOKE_LIMIT)
            .await
            .map_err(|e| format!("{}: {e}", self.name))?;
        parse_answer(&self.name, answer)
    }

    /// Peak resident set size so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        peak_rss_kib(self.pid)
    }

    pub async fn stop(self) {
        // Drop kills and reaps the process.
    }
}

/// The function's answer as API Gateway would read it.
fn parse_answer(name: &str, answer: crate::emulator::Answer) -> Result<Invoked, String> {
    let elapsed = answer.elapsed();
    let response: Value = serde_json::from_slice(&answer.body).map_err(|e| {
        format!(
            "{name}: the invocation response is not JSON ({e}): {}",
            String::from_utf8_lossy(&answer.body)
        )
    })?;
    if answer.error {
        return Err(format!(
            "{name}: the function reported an error: {response}"
        ));
    }
    let status = response["statusCode"].as_u64().unwrap_or(0) as u16;
    let text = response["body"].as_str().unwrap_or("");
    let body = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.into()));
    Ok(Invoked {
        status,
        body,
        elapsed,
    })
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}
