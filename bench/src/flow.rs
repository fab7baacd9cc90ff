//! The full flow across every operation (sign up → sign in → sudo → code → verify → bind →
//! refresh → WeChat → sign out → revoke), as API Gateway HTTP API v2 events, against either
//! the core in this process (embedded store) or the function binaries through their
//! emulators (DynamoDB on moto_server, shared by all of them).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shared::http::routes::{self, Route, ROUTES};
use shared::ops::App;
use shared::ports::{Delivery, DependencyError, Message};

use crate::moto::Moto;
use crate::process::{event, FunctionProcess};
use crate::proxy::{DynamoUse, Proxy};

pub const PASSWORD: &str = "correct horse battery";

/// A distinct client address per flow iteration, so the per-IP code limit never triggers.
pub fn source_ip(i: usize) -> String {
    format!(
        "10.{}.{}.{}",
        (i >> 16) & 255,
        (i >> 8) & 255,
        (i & 255) + 1
    )
}

/// The function binary that serves a method and path, from the route table.
pub fn function_of(method: &str, path: &str) -> &'static str {
    match routes::find(ROUTES, method, path) {
        routes::Match::Found(route, _) => route.function,
        _ => panic!("no route for {method} {path}"),
    }
}

/// Delivery for the in-process run: keeps the codes in memory, silently (the `local-api`
/// outbox also prints every message, which a function never does).
#[derive(Default)]
pub struct Captured {
    codes: std::sync::Mutex<Vec<(String, String)>>,
}

impl Captured {
    /// The newest code sent to `to` (its stored form).
    fn latest(&self, to: &str) -> Option<String> {
        let codes = self.codes.lock().expect("lock");
        codes
            .iter()
            .rev()
            .find(|(address, _)| address == to)
            .map(|(_, code)| code.clone())
    }
}

#[async_trait::async_trait]
impl Delivery for Captured {
    async fn send(&self, message: &Message) -> Result<(), DependencyError> {
        if let Some(code) = &message.code {
            self.codes
                .lock()
                .expect("lock")
                .push((message.to.stored(), code.expose().to_string()));
        }
        Ok(())
    }
}

/// What one labelled step measured.
pub struct StepStats {
    pub label: &'static str,
    pub function: &'static str,
    /// The operation hashes a password (Argon2id) by design.
    pub hashing: bool,
    pub samples: Vec<Duration>,
    pub dynamo: Vec<DynamoUse>,
    /// Every AWS request that was not DynamoDB (SES, SNS), by label.
    pub other_aws: Vec<String>,
}

pub enum Backend<'a> {
    /// The core in this process: `lambda_http::request::from_str` + `shared::http::handle`,
    /// embedded store, codes captured in memory.
    InProcess {
        app: &'a App,
        captured: Arc<Captured>,
        routes: HashMap<&'static str, Vec<Route>>,
    },
    /// The function binaries, each behind its emulator, DynamoDB and SES on moto.
    Processes {
        functions: &'a HashMap<String, FunctionProcess>,
        proxy: &'a Proxy,
        moto: &'a Moto,
    },
}

pub struct Flow<'a> {
    backend: Backend<'a>,
    tag: String,
    pub steps: Vec<StepStats>,
    /// Each function's first invocation after its start (it builds the app: AWS clients, key).
    pub first_calls: Vec<(&'static str, Duration)>,
}

fn text_field(value: &Value, field: &str) -> Result<String, String> {
    value[field]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("the answer has no `{field}`: {value}"))
}

impl<'a> Flow<'a> {
    pub fn new(backend: Backend<'a>, tag: &str) -> Self {
        Self {
            backend,
            tag: tag.to_string(),
            steps: Vec::new(),
            first_calls: Vec::new(),
        }
    }

    pub fn in_process(app: &'a App, captured: Arc<Captured>, tag: &str) -> Self {
        let mut routes: HashMap<&'static str, Vec<Route>> = HashMap::new();
        for route in ROUTES {
            routes.entry(route.function).or_default().push(*route);
        }
        Self::new(
            Backend::InProcess {
                app,
                captured,
                routes,
            },
            tag,
        )
    }

    #[allow(clippy::too_many_arguments)]
    async fn call(
        &mut self,
        record: bool,
        label: &'static str,
        hashing: bool,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
        source_ip: &str,
    ) -> Result<Value, String> {
        let function = function_of(method, path);
        let event = event(method, path, bearer, body.as_ref(), source_ip);
        let (status, answer, elapsed, records) = match &self.backend {
            Backend::InProcess { app, routes, .. } => {
                let text = event.to_string();
                let started = Instant::now();
                let request = lambda_http::request::from_str(&text)
                    .map_err(|e| format!("the event does not parse: {e}"))?;
                let response = shared::http::handle(app, &routes[function], request).await;
                let elapsed = started.elapsed();
                let status = response.status().as_u16();
                let text = match response.into_body() {
                    lambda_http::Body::Text(text) => text,
                    lambda_http::Body::Binary(bytes) => String::from_utf8_lossy(&bytes).into(),
                    _ => String::new(),
                };
                let answer = serde_json::from_str(&text).unwrap_or(Value::String(text));
                (status, answer, elapsed, Vec::new())
            }
            Backend::Processes {
                functions, proxy, ..
            } => {
                let process = functions
                    .get(function)
                    .ok_or_else(|| format!("function {function} is not running"))?;
                let mark = proxy.mark();
                let invoked = process.invoke(&event).await?;
                (
                    invoked.status,
                    invoked.body,
                    invoked.elapsed,
                    proxy.since(mark),
                )
            }
        };
        if !self.first_calls.iter().any(|(f, _)| *f == function) {
            self.first_calls.push((function, elapsed));
        }
        if status != 200 {
            return Err(format!(
                "{label} ({method} {path}) answered {status}: {answer}"
            ));
        }
        if record {
            let index = match self.steps.iter().position(|s| s.label == label) {
                Some(index) => index,
                None => {
                    self.steps.push(StepStats {
                        label,
                        function,
                        hashing,
                        samples: Vec::new(),
                        dynamo: Vec::new(),
                        other_aws: Vec::new(),
                    });
                    self.steps.len() - 1
                }
            };
            let step = &mut self.steps[index];
            step.samples.push(elapsed);
            if matches!(self.backend, Backend::Processes { .. }) {
                step.dynamo.push(DynamoUse::of(&records));
                for other in records.iter().filter(|r| !r.is_dynamodb()) {
                    if !step.other_aws.contains(&other.target) {
                        step.other_aws.push(other.target.clone());
                    }
                }
            }
        }
        Ok(answer)
    }

    async fn latest_code(&self, address: &str) -> Result<String, String> {
        match &self.backend {
            Backend::InProcess { captured, .. } => captured
                .latest(address)
                .ok_or_else(|| format!("no code was sent to {address}")),
            Backend::Processes { moto, .. } => moto.latest_code(address).await,
        }
    }

    /// Sends a code to `email` and verifies it; answers the verification token.
    async fn verified(
        &mut self,
        record: bool,
        email: &str,
        signed_in: Option<&str>,
        ip: &str,
    ) -> Result<String, String> {
        let (label, body) = match signed_in {
            None => ("verification: email code", json!({"email": email})),
            Some(_) => (
                "verification: email code, CUR_USER",
                json!({"email": email, "target": "CUR_USER"}),
            ),
        };
        let sent = self
            .call(
                record,
                label,
                false,
                "POST",
                "/auth/v1/verification",
                signed_in,
                Some(body),
                ip,
            )
            .await?;
        let id = text_field(&sent, "verification_id")?;
        let code = self.latest_code(email).await?;
        let verified = self
            .call(
                record,
                "verify: right code",
                false,
                "POST",
                "/auth/v1/verification/verify",
                None,
                Some(json!({"verification_id": id, "verification_code": code})),
                ip,
            )
            .await?;
        text_field(&verified, "verification_token")
    }

    /// One pass over every operation with a fresh account. `record: false` warms up.
    pub async fn iteration(&mut self, i: usize, record: bool) -> Result<(), String> {
        let ip = source_ip(i);
        let user = format!("u{}x{i}", self.tag);
        let email = format!("{user}@example.com");
        let second_email = format!("n{}x{i}@example.com", self.tag);

        self.call(
            record,
            "signup: username + password",
            true,
            "POST",
            "/auth/v1/signup",
            None,
            Some(json!({"username": user, "password": PASSWORD})),
            &ip,
        )
        .await?;
        let credentials = self
            .call(
                record,
                "signin: username + password",
                true,
                "POST",
                "/auth/v1/signin",
                None,
                Some(json!({"username": user, "password": PASSWORD})),
                &ip,
            )
            .await?;
        let access = text_field(&credentials, "access_token")?;
        let refresh = text_field(&credentials, "refresh_token")?;
        let at = Some(access.as_str());

        self.call(
            record,
            "user-me",
            false,
            "GET",
            "/auth/v1/user/me",
            at,
            None,
            &ip,
        )
        .await?;
        let sudo = self
            .call(
                record,
                "sudo: password",
                true,
                "POST",
                "/auth/v1/user/sudo",
                at,
                Some(json!({"password": PASSWORD})),
                &ip,
            )
            .await?;
        let sudo_token = text_field(&sudo, "sudo_token")?;
        let vt = self.verified(record, &email, None, &ip).await?;
        self.call(
            record,
            "bind-contact: email",
            false,
            "PATCH",
            "/auth/v1/user/contact",
            at,
            Some(json!({"sudo_token": sudo_token, "email": email, "verification_token": vt})),
            &ip,
        )
        .await?;
        let vt = self.verified(record, &email, at, &ip).await?;
        self.call(
            record,
            "sudo: verification_token",
            false,
            "POST",
            "/auth/v1/user/sudo",
            at,
            Some(json!({"verification_token": vt})),
            &ip,
        )
        .await?;
        let refreshed = self
            .call(
                record,
                "token: refresh",
                false,
                "POST",
                "/auth/v1/token",
                None,
                Some(json!({"grant_type": "refresh_token", "refresh_token": refresh})),
                &ip,
            )
            .await?;
        let refresh = text_field(&refreshed, "refresh_token")?;

        let wechat = json!({"provider_id": "wx_open", "provider_code": format!("ok:{user}")});
        let grant = self
            .call(
                record,
                "provider-token: WeChat code",
                false,
                "POST",
                "/auth/v1/provider/token",
                None,
                Some(wechat.clone()),
                &ip,
            )
            .await?;
        let provider_token = text_field(&grant, "provider_token")?;
        self.call(
            record,
            "bind-provider",
            false,
            "POST",
            "/auth/v1/user/provider/bind",
            at,
            Some(json!({"provider_token": provider_token})),
            &ip,
        )
        .await?;
        self.call(
            record,
            "list-providers",
            false,
            "GET",
            "/auth/v1/user/provider",
            at,
            None,
            &ip,
        )
        .await?;
        let grant = self
            .call(
                record,
                "provider-token: WeChat code",
                false,
                "POST",
                "/auth/v1/provider/token",
                None,
                Some(wechat),
                &ip,
            )
            .await?;
        let provider_token = text_field(&grant, "provider_token")?;
        self.call(
            record,
            "signin-with-provider",
            false,
            "POST",
            "/auth/v1/signin/with/provider",
            None,
            Some(json!({"provider_token": provider_token})),
            &ip,
        )
        .await?;
        self.call(
            record,
            "unbind-provider",
            false,
            "DELETE",
            "/auth/v1/user/provider/wx_open",
            at,
            None,
            &ip,
        )
        .await?;

        let vt = self.verified(record, &second_email, None, &ip).await?;
        self.call(
            record,
            "signup: email + verification_token",
            false,
            "POST",
            "/auth/v1/signup",
            None,
            Some(json!({"email": second_email, "verification_token": vt})),
            &ip,
        )
        .await?;
        self.call(
            record,
            "signout",
            false,
            "POST",
            "/auth/v1/user/signout",
            at,
            None,
            &ip,
        )
        .await?;
        self.call(
            record,
            "revoke: refresh token",
            false,
            "POST",
            "/auth/v1/revoke",
            None,
            Some(json!({"token": refresh})),
            &ip,
        )
        .await?;
        Ok(())
    }
}
