//! A bounded load of generated requests against the real `local-api` binary on 127.0.0.1:
//! every route, valid and invalid bodies, with and without a valid bearer token, from
//! concurrent clients. Passes when no answer is a 5xx or breaks the contract's shape, no
//! panic reached the log, and the server still serves afterwards.
//!
//! Ignored by `cargo test --workspace` (it takes about a minute); run it with
//!
//!   cargo test --workspace --test load -- --ignored --nocapture
//!
//! `LOAD_REQUESTS` (100000), `LOAD_CONCURRENCY` (16), `LOAD_SECONDS` (300, the bound on the
//! whole run) and `LOAD_SEED` change the run.
//!
//! All requests come from one address, so the per-client limits (and the per-address and
//! SMS budgets) are raised far beyond the run, and the generated values include real
//! secrets (sudo, verification, provider and refresh tokens, verification ids and their
//! codes, the addresses they are for) and WeChat codes the fake accepts, as the property
//! tests do: the requests reach the operations' deep paths, not only the limits. The run
//! checks that they did: most answers of every operation are something else than a 429.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shared::http::routes::{Route, ROUTES};
use test_support::server::{Backend, Server};
use test_support::wechat;

const EXE: &str = env!("CARGO_BIN_EXE_local-api");
const PASSWORD: &str = "correct horse battery";
const ACCOUNTS: usize = 8;
/// Addresses with a live code (whose verification id and code the requests may send).
const CODES: usize = 8;
/// Far beyond the run: no limit stops it (`LIMITS`).
const UNLIMITED: &str = "100000000";
/// The limits that would otherwise answer most requests of this one client with a 429.
const LIMITS: &[&str] = &[
    "AUTH_CODE_SENDS_PER_IP_PER_HOUR",
    "AUTH_VERIFY_ATTEMPTS_PER_IP_PER_HOUR",
    "AUTH_PROVIDER_GRANTS_PER_IP_PER_HOUR",
    "AUTH_SIGNIN_FAILURES_PER_IP_PER_HOUR",
    "AUTH_SIGNUPS_PER_IP_PER_HOUR",
    "AUTH_SMS_SENDS_PER_HOUR",
    "AUTH_CODE_SENDS_PER_ADDRESS_PER_HOUR",
    // Per sign-in name and per account: the few names the requests use would stay locked.
    "AUTH_PASSWORD_FREE_FAILURES",
];
/// Operations that succeed only with a real secret or a code WeChat accepts: each must
/// succeed at least once, or the seeded secrets never reached it.
const DEEP: &[&str] = &[
    "POST /auth/v1/token",
    "POST /auth/v1/verification",
    "POST /auth/v1/verification/verify",
    "POST /auth/v1/provider/token",
    "POST /auth/v1/user/provider/bind",
];
/// No operation may answer more than this share of its requests with a 429.
const MAX_LIMITED_PERCENT: u64 = 20;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// SplitMix64: a small deterministic generator, so a failing run can be replayed by seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn hex(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b"0123456789abcdef"[self.below(16)]))
            .collect()
    }

    fn printable(&mut self, max: usize) -> String {
        let len = self.below(max + 1);
        (0..len)
            .map(|_| char::from(b' ' + self.below(95) as u8))
            .collect()
    }

    fn any_text(&mut self, max: usize) -> String {
        let len = self.below(max + 1);
        (0..len)
            .map(|_| match self.below(4) {
                0 => char::from_u32(self.below(0x80) as u32).unwrap_or('?'),
                1 => char::from_u32(0x80 + self.below(0x780) as u32).unwrap_or('?'),
                2 => char::from_u32(0x3000 + self.below(0x1000) as u32).unwrap_or('?'),
                _ => char::from_u32(0x1f600 + self.below(0x50) as u32).unwrap_or('?'),
            })
            .collect()
    }
}

/// The accounts whose tokens the generated requests carry; re-signed-in when a generated
/// sign-out ends a session.
struct Pool {
    usernames: Vec<String>,
    tokens: Mutex<Vec<String>>,
    seeded: Seeded,
}

/// Real secrets, made before the run through the API itself.
struct Seeded {
    /// A sudo token of each pool account's first session.
    sudo_tokens: Vec<String>,
    /// Verification tokens, each with the address it was earned for.
    verification_tokens: Vec<(String, String)>,
    /// Verification ids with the (still unused) code sent for each.
    codes: Vec<(String, String)>,
    provider_tokens: Vec<String>,
    refresh_tokens: Vec<String>,
}

impl Seeded {
    fn all(&self) -> Vec<String> {
        let mut all = self.sudo_tokens.clone();
        for (token, address) in &self.verification_tokens {
            all.extend([token.clone(), address.clone()]);
        }
        for (id, code) in &self.codes {
            all.extend([id.clone(), code.clone()]);
        }
        all.extend(self.provider_tokens.iter().cloned());
        all.extend(self.refresh_tokens.iter().cloned());
        all
    }
}

/// A string a field may hold, valid or not.
fn string_value(rng: &mut Rng, pool: &Pool, n: u64) -> String {
    match rng.below(19) {
        17 | 18 => rng.pick(&pool.seeded.all()).clone(),
        0 => rng.pick(&pool.usernames).clone(),
        1 => format!("load{n}"),
        2 => format!("user{}@example.com", rng.below(50)),
        3 => format!(" User{}@Example.COM ", rng.below(50)),
        4 => format!("+86 139{:08}", rng.below(100_000_000)),
        5 => format!("139{:08}", rng.below(100_000_000)),
        6 => format!("{:06}", rng.below(1_000_000)),
        7 => rng.hex(32),
        8 => format!("{}.{}", rng.hex(32), rng.hex(43)),
        9 => rng
            .pick(&["ANY", "USER", "NOT_USER", "CUR_USER", "", "any"])
            .to_string(),
        10 => rng
            .pick(&["wx_open", "refresh_token", PASSWORD, "short"])
            .to_string(),
        // A live access token in a body: `token` of revoke ends its session, so rarely.
        11 if rng.chance(5) => pool.tokens.lock().unwrap()[rng.below(ACCOUNTS)].clone(),
        11 => rng.hex(32),
        12 => rng.printable(40),
        13 => rng.any_text(40),
        14 => "x".repeat(rng.below(600)),
        15 => format!("{}\u{0}{}", rng.printable(4), rng.printable(4)),
        _ => String::new(),
    }
}

fn value(rng: &mut Rng, pool: &Pool, n: u64, depth: u32) -> Value {
    match rng.below(if depth > 1 { 6 } else { 9 }) {
        0..=3 => Value::String(string_value(rng, pool, n)),
        4 => Value::Null,
        5 => json!(rng.next() as i64),
        6 => json!(rng.chance(50)),
        7 => Value::Array(
            (0..rng.below(3))
                .map(|_| value(rng, pool, n, depth + 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.below(3))
                .map(|_| {
                    let key = if rng.chance(50) {
                        "sudo_token".to_string()
                    } else {
                        rng.printable(8)
                    };
                    (key, value(rng, pool, n, depth + 1))
                })
                .collect(),
        ),
    }
}

/// The fields of the body of a route, with a well-formed value for each.
fn valid_body(route: &Route, rng: &mut Rng, pool: &Pool, n: u64) -> Value {
    // Half the time the real thing: a secret that exists, and the address it belongs to.
    if rng.chance(50) {
        if let Some(body) = seeded_body(route, rng, pool, n) {
            return body;
        }
    }
    let token = || format!("{}{}", "t".repeat(10), n);
    match route.path {
        // Hashing a password costs tens of milliseconds: few new accounts.
        "/auth/v1/signup" if rng.chance(3) => {
            json!({"username": format!("load{n}"), "password": PASSWORD})
        }
        "/auth/v1/signup" => {
            json!({"email": format!("user{}@example.com", rng.below(50)), "verification_token": token()})
        }
        "/auth/v1/signin" => {
            if rng.chance(3) {
                json!({"username": rng.pick(&pool.usernames), "password": PASSWORD})
            } else {
                json!({"username": rng.pick(&["alice", "bob@example.com", "+86 13800000000"]), "password": rng.printable(12)})
            }
        }
        "/auth/v1/token" => {
            json!({"grant_type": "refresh_token", "refresh_token": format!("{}.{}", rng.hex(32), rng.hex(43)), "client_id": "env"})
        }
        "/auth/v1/revoke" | "/auth/v1/user/signout" => {
            json!({"token": format!("{}.{}", rng.hex(32), rng.hex(43))})
        }
        "/auth/v1/user/sudo" => {
            if rng.chance(50) {
                json!({"password": rng.printable(12)})
            } else {
                json!({"verification_token": token()})
            }
        }
        "/auth/v1/verification" => {
            if rng.chance(50) {
                json!({"email": format!("user{}@example.com", rng.below(50)), "target": rng.pick(&["ANY", "USER", "NOT_USER", "CUR_USER"])})
            } else {
                json!({"phone_number": format!("+86 139{:08}", rng.below(100_000_000))})
            }
        }
        "/auth/v1/verification/verify" => {
            json!({"verification_id": rng.hex(32), "verification_code": format!("{:06}", rng.below(1_000_000))})
        }
        "/auth/v1/user/contact" => {
            let sudo = if rng.chance(50) {
                json!(token())
            } else {
                json!({"sudo_token": token(), "expires_in": 600})
            };
            json!({"sudo_token": sudo, "verification_token": token(), "email": format!("user{}@example.com", rng.below(50))})
        }
        "/auth/v1/provider/token" => {
            json!({"provider_id": "wx_open", "provider_code": rng.hex(32)})
        }
        "/auth/v1/user/provider/bind" | "/auth/v1/signin/with/provider" => {
            json!({"provider_token": token()})
        }
        _ => json!({}),
    }
}

/// A well-formed body of the route made of the seeded secrets, where the route takes any.
fn seeded_body(route: &Route, rng: &mut Rng, pool: &Pool, n: u64) -> Option<Value> {
    let seeded = &pool.seeded;
    let (verification_token, address) = rng.pick(&seeded.verification_tokens).clone();
    let sudo_token = rng.pick(&seeded.sudo_tokens).clone();
    let provider_token = rng.pick(&seeded.provider_tokens).clone();
    Some(match route.path {
        "/auth/v1/signup" => {
            json!({"email": address, "verification_token": verification_token, "password": PASSWORD})
        }
        "/auth/v1/token" => {
            json!({"grant_type": "refresh_token", "refresh_token": rng.pick(&seeded.refresh_tokens)})
        }
        "/auth/v1/user/sudo" => json!({"verification_token": verification_token}),
        "/auth/v1/verification" => {
            json!({"email": address, "target": rng.pick(&["ANY", "USER", "NOT_USER", "CUR_USER"])})
        }
        "/auth/v1/verification/verify" => {
            // The id with its own code, or with another's.
            let (id, code) = rng.pick(&seeded.codes).clone();
            let code = if rng.chance(50) {
                code
            } else {
                rng.pick(&seeded.codes).1.clone()
            };
            json!({"verification_id": id, "verification_code": code})
        }
        "/auth/v1/user/contact" => {
            json!({"sudo_token": sudo_token, "verification_token": verification_token, "email": address})
        }
        // The WeChat fake grants codes `ok:<name>`.
        "/auth/v1/provider/token" => {
            json!({"provider_id": "wx_open", "provider_code": format!("ok:load{}", n % 64)})
        }
        "/auth/v1/user/provider/bind" | "/auth/v1/signin/with/provider" => {
            json!({"provider_token": provider_token})
        }
        _ => return None,
    })
}

/// One generated request: method, path, whether it carries a pool token, headers, body.
struct Generated {
    method: &'static str,
    path: String,
    pool_token: Option<usize>,
    authorization: Option<String>,
    body: Vec<u8>,
    label: String,
}

fn generate(rng: &mut Rng, pool: &Pool, n: u64) -> Generated {
    let route = &ROUTES[rng.below(ROUTES.len())];
    let (method, mut path, label) = match rng.below(20) {
        0 => {
            let method = *rng.pick(&["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]);
            (
                method,
                route.path.to_string(),
                format!("{method} {}", route.path),
            )
        }
        1 => {
            let path = format!(
                "/auth/v1/{}",
                rng.printable(12)
                    .replace(|c: char| !c.is_ascii_alphanumeric(), "/")
            );
            ("POST", path, "POST (no route)".to_string())
        }
        _ => (
            route.method,
            route.path.to_string(),
            format!("{} {}", route.method, route.path),
        ),
    };
    if path.contains("{provider_id}") {
        let len = rng.below(10);
        let param = if rng.chance(70) {
            "wx_open".to_string()
        } else {
            rng.hex(len)
        };
        path = path.replace("{provider_id}", &param);
    }
    // Sign-out and revoke end the session of a valid token: rarely give them one.
    let valid_percent = if matches!(route.path, "/auth/v1/user/signout" | "/auth/v1/revoke") {
        2
    } else {
        50
    };
    let (pool_token, authorization) = if rng.chance(valid_percent) {
        let index = rng.below(ACCOUNTS);
        let token = pool.tokens.lock().unwrap()[index].clone();
        (Some(index), Some(format!("Bearer {token}")))
    } else {
        match rng.below(4) {
            0 => (None, Some(format!("Bearer {}", string_value(rng, pool, n)))),
            1 => (None, Some(rng.printable(30))),
            _ => (None, None),
        }
    };
    let body = match rng.below(20) {
        0..=8 => valid_body(route, rng, pool, n).to_string().into_bytes(),
        9..=11 => {
            // A valid body with one field changed to anything, or one more field.
            let mut body = valid_body(route, rng, pool, n);
            if let Some(object) = body.as_object_mut() {
                let keys: Vec<String> = object.keys().cloned().collect();
                let key = if keys.is_empty() || rng.chance(30) {
                    rng.printable(10)
                } else {
                    rng.pick(&keys).clone()
                };
                object.insert(key, value(rng, pool, n, 0));
            }
            body.to_string().into_bytes()
        }
        12 => valid_body(route, rng, pool, n)
            .as_object()
            .map(|o| {
                // A field missing.
                let mut o = o.clone();
                if let Some(k) = o.keys().next().cloned() {
                    o.remove(&k);
                }
                Value::Object(o).to_string().into_bytes()
            })
            .unwrap_or_default(),
        13 => value(rng, pool, n, 0).to_string().into_bytes(),
        14 => {
            let text = valid_body(route, rng, pool, n).to_string();
            let cut = rng.below(text.len() + 1);
            text.as_bytes()[..cut].to_vec()
        }
        15 => (0..rng.below(64)).map(|_| rng.next() as u8).collect(),
        16 => rng.any_text(60).into_bytes(),
        17 if rng.chance(10) => {
            format!("{{\"username\":\"{}\"}}", "a".repeat(70 * 1024)).into_bytes()
        }
        _ => Vec::new(),
    };
    Generated {
        method,
        path,
        pool_token,
        authorization,
        body,
        label,
    }
}

#[derive(Default)]
struct Tally {
    by_route: BTreeMap<(String, u16), u64>,
    violations: Vec<String>,
}

const ERROR_NAMES: &[&str] = &[
    "invalid_argument",
    "invalid_password",
    "invalid_verification_code",
    "unauthenticated",
    "invalid_grant",
    "invalid_username_or_password",
    "permission_denied",
    "not_found",
    "already_exists",
    "failed_precondition",
    "resource_exhausted",
    "unavailable",
    "internal",
];

/// What is wrong with an answer, if anything.
fn judge(
    status: u16,
    head: bool,
    headers: &reqwest::header::HeaderMap,
    bytes: &[u8],
) -> Option<String> {
    if status >= 500 {
        return Some(format!("status {status}"));
    }
    if !headers.contains_key("x-request-id") {
        return Some("no x-request-id".into());
    }
    if head {
        // An answer to HEAD has no body by definition.
        return None;
    }
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(bytes) else {
        return Some(format!(
            "not a JSON object: {:?}",
            String::from_utf8_lossy(bytes)
        ));
    };
    if status == 200 {
        if body.contains_key("error") || body.contains_key("error_code") {
            return Some("a success with an error key".into());
        }
    } else {
        let name = body.get("error").and_then(Value::as_str).unwrap_or("");
        let described = body
            .get("error_description")
            .and_then(Value::as_str)
            .is_some_and(|d| !d.is_empty());
        if !ERROR_NAMES.contains(&name) || !described {
            return Some(format!("status {status} outside the error shape"));
        }
        if status == 429 && !headers.contains_key("retry-after") {
            return Some("429 without Retry-After".into());
        }
    }
    None
}

async fn sign_in(client: &reqwest::Client, origin: &str, username: &str) -> Option<String> {
    let answer: Value = client
        .post(format!("{origin}/auth/v1/signin"))
        .body(json!({"username": username, "password": PASSWORD}).to_string())
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    answer["access_token"].as_str().map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a load run of about a minute: cargo test --workspace --test load -- --ignored"]
async fn a_hundred_thousand_generated_requests_get_no_5xx_and_the_server_keeps_serving() {
    let total = setting("LOAD_REQUESTS", 100_000);
    let concurrency = setting("LOAD_CONCURRENCY", 16);
    let bound = Duration::from_secs(setting("LOAD_SECONDS", 300));
    let seed = setting("LOAD_SEED", 0x5eed);
    let fake = wechat::start().await;
    let mut settings = wechat::settings(&fake);
    settings.push(("RUST_LOG", "warn".to_string()));
    settings.push(("AUTH_CODE_RESEND_INTERVAL_SECS", "0".to_string()));
    settings.extend(LIMITS.iter().map(|name| (*name, UNLIMITED.to_string())));
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start(EXE, Backend::Embedded, &pairs).await;
    let origin = server.origin.clone();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(concurrency as usize)
        .build()
        .expect("HTTP client");

    let usernames: Vec<String> = (0..ACCOUNTS).map(|i| format!("loadowner{i}")).collect();
    let mut tokens = Vec::new();
    let mut seeded = Seeded {
        sudo_tokens: Vec::new(),
        verification_tokens: Vec::new(),
        codes: Vec::new(),
        provider_tokens: Vec::new(),
        refresh_tokens: Vec::new(),
    };
    for name in &usernames {
        let reply = server
            .post(
                "/auth/v1/signup",
                json!({"username": name, "password": PASSWORD}),
            )
            .await;
        let access = reply.text("access_token");
        seeded.refresh_tokens.push(reply.text("refresh_token"));
        let sudo = server
            .call(
                "POST",
                "/auth/v1/user/sudo",
                Some(&access),
                Some(json!({"password": PASSWORD})),
            )
            .await;
        seeded.sudo_tokens.push(sudo.text("sudo_token"));
        tokens.push(access);
    }
    for i in 0..2 * CODES {
        let email = format!("seeded{i}@example.com");
        let id = server.send_code("email", &email).await;
        let code = server.latest_code(&email).await;
        if i < CODES {
            seeded.codes.push((id, code));
        } else {
            let verified = server
                .post(
                    "/auth/v1/verification/verify",
                    json!({"verification_id": id, "verification_code": code}),
                )
                .await;
            seeded
                .verification_tokens
                .push((verified.text("verification_token"), email));
        }
    }
    for i in 0..ACCOUNTS {
        let grant = server
            .post(
                "/auth/v1/provider/token",
                json!({"provider_id": "wx_open", "provider_code": format!("ok:seeded{i}")}),
            )
            .await;
        seeded.provider_tokens.push(grant.text("provider_token"));
    }
    let pool = Arc::new(Pool {
        usernames,
        tokens: Mutex::new(tokens),
        seeded,
    });

    let next = Arc::new(AtomicU64::new(0));
    let renewals = Arc::new(AtomicU64::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let deadline = started + bound;
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let (client, origin, pool, next, renewals, tally) = (
            client.clone(),
            origin.clone(),
            Arc::clone(&pool),
            Arc::clone(&next),
            Arc::clone(&renewals),
            Arc::clone(&tally),
        );
        workers.push(tokio::spawn(async move {
            let mut rng = Rng(seed ^ (worker.wrapping_mul(0x1000_0001)));
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total || Instant::now() > deadline {
                    return;
                }
                let generated = generate(&mut rng, &pool, n);
                let method =
                    reqwest::Method::from_bytes(generated.method.as_bytes()).expect("a method");
                let mut request = client
                    .request(method, format!("{origin}{}", generated.path))
                    .header("content-type", "text/plain;charset=UTF-8")
                    .header("x-request-id", format!("{n:032x}"))
                    .body(generated.body);
                // Only what can travel as a header value: the rest is a client-side error.
                let authorization = generated
                    .authorization
                    .as_deref()
                    .and_then(|v| reqwest::header::HeaderValue::from_str(v).ok());
                if let Some(value) = authorization {
                    request = request.header("authorization", value);
                }
                let head = generated.method == "HEAD";
                let (status, verdict) = match request.send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let headers = response.headers().clone();
                        match response.bytes().await {
                            Ok(bytes) => (status, judge(status, head, &headers, &bytes)),
                            Err(err) => (status, Some(format!("reading the body failed: {err}"))),
                        }
                    }
                    Err(err) => (0, Some(format!("no answer: {err}"))),
                };
                if let (Some(index), 401) = (generated.pool_token, status) {
                    // A generated sign-out ended this account's session: sign in again.
                    if let Some(token) = sign_in(&client, &origin, &pool.usernames[index]).await {
                        pool.tokens.lock().unwrap()[index] = token;
                        renewals.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let mut tally = tally.lock().unwrap();
                *tally
                    .by_route
                    .entry((generated.label.clone(), status))
                    .or_default() += 1;
                if let Some(problem) = verdict {
                    if tally.violations.len() < 50 {
                        tally
                            .violations
                            .push(format!("request {n} ({}): {problem}", generated.label));
                    } else {
                        tally.violations.push(String::new());
                    }
                }
            }
        }));
    }
    for worker in workers {
        worker.await.expect("a worker panicked");
    }
    let elapsed = started.elapsed();
    let tally = Arc::try_unwrap(tally)
        .unwrap_or_else(|_| panic!("the workers are done"))
        .into_inner()
        .unwrap();
    let sent: u64 = tally.by_route.values().sum();
    let mut by_status: BTreeMap<u16, u64> = BTreeMap::new();
    for ((_, status), count) in &tally.by_route {
        *by_status.entry(*status).or_default() += count;
    }
    eprintln!(
        "{sent} requests in {:.1} s ({:.0}/s), {concurrency} concurrent, seed {seed:#x}; \
         statuses {by_status:?}; {} sessions renewed after generated sign-outs",
        elapsed.as_secs_f64(),
        sent as f64 / elapsed.as_secs_f64(),
        renewals.load(Ordering::Relaxed)
    );
    for ((label, status), count) in &tally.by_route {
        eprintln!("  {count:>7}  {status}  {label}");
    }
    // Every operation got past the limits: few 429s, and answers of every other kind.
    let mut limited = Vec::new();
    eprintln!("  per operation: requests, 429s, other answers");
    for route in ROUTES {
        let label = format!("{} {}", route.method, route.path);
        let (mut all, mut throttled) = (0u64, 0u64);
        for ((l, status), count) in &tally.by_route {
            if *l == label {
                all += count;
                if *status == 429 {
                    throttled += count;
                }
            }
        }
        eprintln!("  {all:>7} {throttled:>7} {:>7}  {label}", all - throttled);
        if all == 0 || throttled * 100 > all * MAX_LIMITED_PERCENT {
            limited.push(format!("{label}: {throttled} of {all} answered 429"));
        }
    }
    let shallow: Vec<&str> = DEEP
        .iter()
        .copied()
        .filter(|label| !tally.by_route.contains_key(&(label.to_string(), 200)))
        .collect();

    if !tally.violations.is_empty() {
        let output = server.output();
        let lines: Vec<&str> = output.lines().collect();
        eprintln!(
            "the server's last output:\n{}",
            lines[lines.len().saturating_sub(30)..].join("\n")
        );
    }
    assert!(
        tally.violations.is_empty(),
        "{} answers broke the contract, the first ones:\n{}",
        tally.violations.len(),
        tally
            .violations
            .iter()
            .filter(|v| !v.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(
        sent, total,
        "only {sent} of {total} requests went out within {bound:?}"
    );
    assert!(
        limited.is_empty(),
        "operations whose requests mostly stopped at a limit (more than {MAX_LIMITED_PERCENT}% 429s), \
         so their deep paths went untested:\n{}",
        limited.join("\n")
    );
    assert!(
        shallow.is_empty(),
        "never a success, so the seeded secrets never reached them: {shallow:?}"
    );
    let panics: Vec<String> = server
        .logs()
        .into_iter()
        .filter(|line| line.contains("panicked"))
        .collect();
    assert!(
        panics.is_empty(),
        "the server panicked:\n{}",
        panics.join("\n")
    );

    // Still serving: a fresh account signs up, signs in and reads itself.
    let account = server.new_account().await;
    let me = server
        .call("GET", "/auth/v1/user/me", Some(&account.access_token), None)
        .await;
    assert_eq!(me.assert_ok()["username"], json!(account.username));
}
