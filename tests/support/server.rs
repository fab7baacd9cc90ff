//! Starts the real `local-api` binary on a free loopback port and speaks HTTP to it.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Where accounts live and how codes travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The embedded store and the outbox: nothing installed.
    Embedded,
    /// DynamoDB, SES and SNS on moto_server.
    Aws,
}

/// The sender identity tests verify in moto's SES.
pub const SENDER: &str = "no-reply@association.test";

pub struct Server {
    pub origin: String,
    pub backend: Backend,
    /// Codes land in the outbox (on either store) rather than in SES and SNS.
    outbox: bool,
    pub table: String,
    http: reqwest::Client,
    output: Arc<Mutex<Vec<String>>>,
    logs: Arc<Mutex<Vec<String>>>,
    /// On AWS: records what SES and SNS accepted, so codes are read without asking moto
    /// for its whole (large, and while serving it blocking) data dump.
    recorder: Option<crate::fault_proxy::FaultProxy>,
    _child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        // `kill_on_drop` stops the process itself.
        if let Some(pid) = self._child.id() {
            crate::provision::stopped_child(pid);
        }
    }
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }

    pub fn text(&self, field: &str) -> String {
        match &self.body[field] {
            Value::String(s) => s.clone(),
            other => panic!("no string `{field}` in {other:?} (answer {})", self.body),
        }
    }

    /// Asserts a refusal in the contract's shape.
    #[track_caller]
    pub fn assert_error(&self, status: u16, error: &str) {
        assert_eq!(
            (self.status, self.error()),
            (status, error),
            "unexpected answer: {}",
            self.body
        );
        assert!(
            self.body["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "no error_description in {}",
            self.body
        );
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Value {
        assert_eq!(self.status, 200, "unexpected answer: {}", self.body);
        assert!(self.body.get("error").is_none(), "{}", self.body);
        &self.body
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A value no other test in any run uses.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}{:x}{:x}{}",
        nanos % 0xffff_ffff,
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn unique_email() -> String {
    format!("{}@example.com", unique("user"))
}

/// A mainland mobile number in the SDK's `+86 139xxxxxxxx` form.
pub fn unique_phone() -> String {
    let digits = unique("")
        .bytes()
        .fold(0u64, |acc, b| acc.wrapping_mul(31).wrapping_add(b as u64));
    format!("+86 139{:08}", digits % 100_000_000)
}

impl Server {
    /// Starts `local-api` (the path the test crate got from Cargo) with the backend and
    /// extra settings.
    pub async fn start(exe: &str, backend: Backend, settings: &[(&str, &str)]) -> Server {
        let table = unique("assoc-test-");
        let mut env: HashMap<String, String> = HashMap::new();
        let mut recorder = None;
        env.insert("PORT".into(), "0".into());
        env.insert("RUST_LOG".into(), "info".into());
        match backend {
            Backend::Embedded => {
                env.insert("AUTH_STORE".into(), "memory".into());
                env.insert("AUTH_DELIVERY".into(), "outbox".into());
            }
            Backend::Aws => {
                crate::aws::verify_sender(SENDER).await;
                // A caller that picks its own endpoint (a fault proxy) picks its own budget;
                // everyone else goes through a recorder, with attempts long enough for a
                // shared moto on a busy machine.
                let endpoint = if settings.iter().any(|(k, _)| *k == "AWS_ENDPOINT_URL") {
                    crate::moto::endpoint()
                } else {
                    let proxy = crate::fault_proxy::FaultProxy::start().await;
                    let origin = proxy.origin().to_string();
                    recorder = Some(proxy);
                    env.insert("AUTH_AWS_ATTEMPT_TIMEOUT_MS".into(), "2500".into());
                    origin
                };
                env.insert("AUTH_STORE".into(), "dynamodb".into());
                env.insert("AUTH_DELIVERY".into(), "aws".into());
                env.insert("AUTH_TABLE_NAME".into(), table.clone());
                env.insert("AUTH_EMAIL_FROM".into(), SENDER.into());
                env.insert("AWS_ENDPOINT_URL".into(), endpoint);
                env.insert("AWS_REGION".into(), crate::moto::REGION.into());
                env.insert("AWS_ACCESS_KEY_ID".into(), "test".into());
                env.insert("AWS_SECRET_ACCESS_KEY".into(), "test".into());
            }
        }
        for (key, value) in settings {
            env.insert(key.to_string(), value.to_string());
        }
        let outbox = env.get("AUTH_DELIVERY").is_some_and(|d| d == "outbox");
        let mut child = Command::new(exe)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(&env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {exe}: {e}"));
        if let Some(pid) = child.id() {
            crate::provision::started_child(pid);
        }
        let output = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let (address_tx, address_rx) = tokio::sync::oneshot::channel();
        let lines = Arc::clone(&output);
        tokio::spawn(async move {
            let mut address_tx = Some(address_tx);
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    if let Some(tx) = address_tx.take() {
                        let _ = tx.send(rest.split(' ').next().unwrap_or("").to_string());
                    }
                }
                lines.lock().unwrap().push(line);
            }
        });
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (lines, log_lines) = (Arc::clone(&output), Arc::clone(&logs));
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                log_lines.lock().unwrap().push(line.clone());
                lines.lock().unwrap().push(line);
            }
        });
        let origin = match tokio::time::timeout(Duration::from_secs(30), address_rx).await {
            Ok(Ok(origin)) => origin,
            _ => panic!(
                "local-api did not start; its output:\n{}",
                output.lock().unwrap().join("\n")
            ),
        };
        Server {
            origin,
            backend,
            outbox,
            table,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("HTTP client"),
            output,
            logs,
            recorder,
            _child: child,
        }
    }

    /// The server's log (stderr) so far; stdout also carries the outbox.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Everything the server printed so far (stdout and stderr).
    pub fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.origin))
            // The SDK's content type: the body must be read as JSON whatever this says.
            .header("content-type", "text/plain;charset=UTF-8");
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        self.send(request).await
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        read_reply(request).await
    }

    /// A POST from another loopback address (all of 127.0.0.0/8 is this machine), as a
    /// different client would send it.
    pub async fn post_from(&self, source: std::net::IpAddr, path: &str, body: Value) -> Reply {
        Self::post_to(&self.origin, Some(source), None, path, body).await
    }

    /// A POST to the server at `origin` by a client of its own (from `source`, when given), so
    /// that a request owns everything it needs and can be spawned: for simultaneous bursts.
    pub async fn post_to(
        origin: &str,
        source: Option<std::net::IpAddr>,
        bearer: Option<&str>,
        path: &str,
        body: Value,
    ) -> Reply {
        let mut client = reqwest::Client::builder().timeout(Duration::from_secs(30));
        if let Some(source) = source {
            client = client.local_address(source);
        }
        let mut request = client
            .build()
            .expect("HTTP client")
            .post(format!("{origin}{path}"))
            .body(body.to_string());
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        read_reply(request).await
    }

    pub fn raw(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.origin))
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call("POST", path, None, Some(body)).await
    }

    /// Signs up a username account; answers (username, password, credentials).
    pub async fn new_account(&self) -> Account {
        let username = unique("u");
        let password = "correct horse battery".to_string();
        let reply = self
            .post(
                "/auth/v1/signup",
                json!({"username": username, "password": password}),
            )
            .await;
        reply.assert_ok();
        Account {
            username,
            password,
            access_token: reply.text("access_token"),
            refresh_token: reply.text("refresh_token"),
            sub: reply.text("sub"),
        }
    }

    pub async fn sudo(&self, account: &Account) -> String {
        let reply = self
            .call(
                "POST",
                "/auth/v1/user/sudo",
                Some(&account.access_token),
                Some(json!({"password": account.password})),
            )
            .await;
        reply.text("sudo_token")
    }

    /// Refreshes a session with its refresh token.
    /// `GET /auth/v1/user/me` with the access token.
    pub async fn me(&self, access_token: &str) -> Reply {
        self.call("GET", "/auth/v1/user/me", Some(access_token), None)
            .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Reply {
        self.post(
            "/auth/v1/token",
            json!({"grant_type": "refresh_token", "refresh_token": refresh_token}),
        )
        .await
    }

    /// Asks for a WeChat provider token with `code` (the fake accepts `ok:<name>`).
    pub async fn provider_token(&self, code: &str) -> Reply {
        self.post(
            "/auth/v1/provider/token",
            json!({"provider_id": "wx_open", "provider_code": code}),
        )
        .await
    }

    /// Binds an address (`field`: `email` or `phone_number`) with the tokens given.
    pub async fn bind_contact(
        &self,
        account: &Account,
        sudo_token: &str,
        field: &str,
        address: &str,
        verification_token: &str,
    ) -> Reply {
        self.call(
            "PATCH",
            "/auth/v1/user/contact",
            Some(&account.access_token),
            Some(json!({
                "sudo_token": sudo_token,
                field: address,
                "verification_token": verification_token,
            })),
        )
        .await
    }

    /// The seed flow for an email: sudo with the password, a code, its verification, the bind.
    pub async fn bind_email(&self, account: &Account, email: &str) -> Reply {
        let sudo = self.sudo(account).await;
        let token = self
            .verification_token("email", email, &email.to_lowercase())
            .await;
        self.bind_contact(account, &sudo, "email", email, &token)
            .await
    }

    /// Sends a code to an address (`email` or `phone_number`); answers the verification id.
    pub async fn send_code(&self, field: &str, address: &str) -> String {
        let reply = self
            .post("/auth/v1/verification", json!({ field: address }))
            .await;
        reply.text("verification_id")
    }

    /// The messages of the outbox (embedded delivery), oldest first.
    async fn outbox_entries(&self) -> Vec<Value> {
        let outbox: Value = self
            .http
            .get(format!("{}/_dev/outbox", self.origin))
            .send()
            .await
            .expect("outbox answers")
            .json()
            .await
            .expect("outbox is JSON");
        match outbox {
            Value::Array(entries) => entries,
            other => panic!("the outbox is not a list: {other}"),
        }
    }

    /// The newest code sent to an address, from the outbox or from what moto recorded.
    pub async fn latest_code(&self, to: &str) -> String {
        if self.outbox {
            let outbox = self.outbox_entries().await;
            return outbox
                .iter()
                .rev()
                .find(|m| m["to"] == to && m["code"].is_string())
                .and_then(|m| m["code"].as_str())
                .unwrap_or_else(|| panic!("no code to {to} in the outbox: {outbox:?}"))
                .to_string();
        }
        match &self.recorder {
            Some(recorder) => recorder
                .latest_code(to)
                .unwrap_or_else(|| panic!("no code to {to} went through SES or SNS")),
            None => crate::aws::latest_code(to).await,
        }
    }

    /// Bodies of the messages sent to `to` (in the outbox, or accepted by SES and SNS),
    /// oldest first.
    pub async fn messages_to(&self, to: &str) -> Vec<String> {
        if self.outbox {
            let outbox = self.outbox_entries().await;
            return outbox
                .iter()
                .filter(|m| m["to"] == to)
                .filter_map(|m| m["body"].as_str().map(str::to_string))
                .collect();
        }
        match &self.recorder {
            Some(recorder) => recorder.messages_to(to),
            None => crate::aws::messages_to(to).await,
        }
    }

    /// Sends a code and verifies it; answers the verification token.
    pub async fn verification_token(&self, field: &str, address: &str, normalised: &str) -> String {
        let id = self.send_code(field, address).await;
        let code = self.latest_code(normalised).await;
        let reply = self
            .post(
                "/auth/v1/verification/verify",
                json!({"verification_id": id, "verification_code": code}),
            )
            .await;
        reply.text("verification_token")
    }
}

/// A signed-up account and its credentials.
#[derive(Clone, Debug)]
pub struct Account {
    pub username: String,
    pub password: String,
    pub access_token: String,
    pub refresh_token: String,
    pub sub: String,
}

/// The E.164 form of a `+86 139...` number, as stored and as the outbox lists it.
pub fn e164(phone: &str) -> String {
    phone
        .chars()
        .filter(|c| *c == '+' || c.is_ascii_digit())
        .collect()
}

async fn read_reply(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("a body");
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        panic!(
            "status {status}: body is not JSON: {:?}",
            String::from_utf8_lossy(&bytes)
        )
    });
    Reply {
        status,
        body,
        headers,
    }
}
