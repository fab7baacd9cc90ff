//! The function binaries as Lambda runs them: each its own process, started with only the
//! environment the Lambda service sets plus the function's settings, polling a Runtime API
//! emulator on loopback (the benchmark's, `bench/src/emulator.rs` and `process.rs`), on
//! DynamoDB and SES in moto_server and the WeChat fake. This is the path `local-api` does not
//! take: `Wiring::LAMBDA`, AWS configuration from the environment alone, each function
//! linking only the adapters its `main` names. Every function binary of the route table is
//! started and serves a real request of its operation, at Lambda's debug log level; their
//! JSON logs are then scanned for secrets.

// Shared with the benchmark; not every item of theirs is used here.
#[allow(dead_code)]
#[path = "../bench/src/emulator.rs"]
mod emulator;
#[allow(dead_code)]
#[path = "../bench/src/process.rs"]
mod process;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{json, Value};
use test_support::server::{unique, unique_email, SENDER};
use test_support::tickets::{self, TicketKey};
use test_support::{aws, logscan, moto, wechat};

use process::{event, FunctionProcess, Invoked};

const PASSWORD: &str = "correct horse battery";

struct Functions {
    env: Vec<(String, String)>,
    client_ip: String,
    /// Where each started function's stderr (its Lambda JSON log) goes, one file per start.
    logs: PathBuf,
    /// The function binaries started so far.
    started: Mutex<Vec<String>>,
}

impl Functions {
    /// Starts the function binary `name` (as Lambda would, cold) and sends it one request.
    async fn call(
        &self,
        name: &str,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Invoked {
        // Cargo builds every binary of the package next to each other for its tests.
        let bin = Path::new(env!("CARGO_BIN_EXE_signup")).with_file_name(name);
        let log = {
            let mut started = self.started.lock().unwrap();
            started.push(name.to_string());
            self.logs.join(format!("{:02}-{name}.log", started.len()))
        };
        let function = FunctionProcess::start(&bin, name, &self.env, Some(&log))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let event = event(method, path, bearer, body.as_ref(), &self.client_ip);
        function
            .invoke(&event)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Every line the started functions logged, in the order they ran.
    fn log_lines(&self) -> Vec<String> {
        let count = self.started.lock().unwrap().len();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.logs)
            .expect("the log directory")
            .map(|entry| entry.expect("a log file").path())
            .collect();
        files.sort();
        assert_eq!(files.len(), count, "one log per started function");
        files
            .iter()
            .flat_map(|file| {
                std::fs::read_to_string(file)
                    .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()))
                    .lines()
                    .filter(|line| !line.trim().is_empty())
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

fn ok(invoked: &Invoked, what: &str) -> Value {
    assert_eq!(invoked.status, 200, "{what}: {}", invoked.body);
    invoked.body.clone()
}

fn text(value: &Value, field: &str) -> String {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {value}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_function_binary_serves_its_step_of_the_seed_flow_through_the_runtime_api() {
    let store = moto::fresh_store("lambda-runtime").await;
    aws::verify_sender(SENDER).await;
    let wechat_origin = wechat::start().await;
    let pem = aws::p256_pem();
    let hash_secret = unique("a secret hash key of some length ");
    let ticket_key = TicketKey::generate("runtime-key");
    let mut env: Vec<(String, String)> = vec![
        ("AUTH_ENV_ID".into(), tickets::ENV_ID.into()),
        (
            "AUTH_CUSTOM_LOGIN_KEYS".into(),
            tickets::keys_setting(&[&ticket_key]),
        ),
        ("AWS_ENDPOINT_URL".into(), moto::endpoint()),
        ("AUTH_TABLE_NAME".into(), store.table().to_string()),
        ("AUTH_EMAIL_FROM".into(), SENDER.into()),
        ("AUTH_JWT_PRIVATE_KEY".into(), pem.clone()),
        ("AUTH_SECRET_HASH_KEY".into(), hash_secret.clone()),
        // Lambda's own log level setting (advanced logging controls): everything, debug too.
        ("AWS_LAMBDA_LOG_LEVEL".into(), "debug".into()), // The password reset sends a second code to the bound email.
        ("AUTH_CODE_RESEND_INTERVAL_SECS".into(), "0".into()),
    ];
    env.extend(
        wechat::settings(&wechat_origin)
            .into_iter()
            .map(|(name, value)| (name.to_string(), value)),
    );
    let logs = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("lambda-runtime-logs-{}", unique("run")));
    std::fs::create_dir_all(&logs).expect("the log directory");
    let functions = Functions {
        env,
        client_ip: "198.51.100.7".into(),
        logs,
        started: Mutex::new(Vec::new()),
    };
    // Everything that must never reach a log line, gathered along the way.
    let mut secrets: Vec<String> = vec![
        PASSWORD.into(),
        wechat::APP_SECRET.into(),
        hash_secret.clone(),
    ];
    secrets.extend(
        pem.lines()
            .filter(|line| !line.starts_with("-----"))
            .map(str::to_string),
    );

    let username = unique("lambda");
    let credentials = ok(
        &functions
            .call(
                "signup",
                "POST",
                "/auth/v1/signup",
                None,
                Some(json!({"username": username, "password": PASSWORD})),
            )
            .await,
        "signup",
    );
    let access = text(&credentials, "access_token");
    secrets.extend([access.clone(), text(&credentials, "refresh_token")]);
    let me = ok(
        &functions
            .call("user-me", "GET", "/auth/v1/user/me", Some(&access), None)
            .await,
        "user-me",
    );
    assert_eq!(me["sub"], credentials["sub"]);

    let sudo = ok(
        &functions
            .call(
                "sudo",
                "POST",
                "/auth/v1/user/sudo",
                Some(&access),
                Some(json!({"password": PASSWORD})),
            )
            .await,
        "sudo",
    );
    secrets.push(text(&sudo, "sudo_token"));
    // The code goes out through SES: `verification` is wired with message delivery.
    let email = unique_email();
    let sent = ok(
        &functions
            .call(
                "verification",
                "POST",
                "/auth/v1/verification",
                None,
                Some(json!({"email": email})),
            )
            .await,
        "verification",
    );
    let code = aws::latest_code(&email).await;
    let verified = ok(
        &functions
            .call(
                "verify",
                "POST",
                "/auth/v1/verification/verify",
                None,
                Some(json!({
                    "verification_id": sent["verification_id"],
                    "verification_code": code,
                })),
            )
            .await,
        "verify",
    );
    secrets.extend([email.clone(), code, text(&verified, "verification_token")]);
    ok(
        &functions
            .call(
                "bind-contact",
                "PATCH",
                "/auth/v1/user/contact",
                Some(&access),
                Some(json!({
                    "sudo_token": sudo["sudo_token"],
                    "email": email,
                    "verification_token": verified["verification_token"],
                })),
            )
            .await,
        "bind-contact",
    );
    let by_email = ok(
        &functions
            .call(
                "signin",
                "POST",
                "/auth/v1/signin",
                None,
                Some(json!({"username": email, "password": PASSWORD})),
            )
            .await,
        "signin with the bound email",
    );
    assert_eq!(by_email["sub"], credentials["sub"]);
    secrets.extend([
        text(&by_email, "access_token"),
        text(&by_email, "refresh_token"),
    ]);

    // `signin-anonymously` makes an account; `edit-profile` binds it an email its session
    // asked a code for and verified (`updateUser({email})`), keeping its sub.
    let visitor = ok(
        &functions
            .call(
                "signin-anonymously",
                "POST",
                "/auth/v1/signin/anonymously",
                None,
                Some(json!({})),
            )
            .await,
        "signin-anonymously",
    );
    let visitor_access = text(&visitor, "access_token");
    secrets.extend([visitor_access.clone(), text(&visitor, "refresh_token")]);
    let upgrade = unique_email();
    let sent = ok(
        &functions
            .call(
                "verification",
                "POST",
                "/auth/v1/verification",
                Some(&visitor_access),
                Some(json!({"email": upgrade, "usage": "reauthentication"})),
            )
            .await,
        "verification for the anonymous account",
    );
    let code = aws::latest_code(&upgrade).await;
    let verified = ok(
        &functions
            .call(
                "verify",
                "POST",
                "/auth/v1/verification/verify",
                None,
                Some(json!({
                    "verification_id": sent["verification_id"],
                    "verification_code": code,
                })),
            )
            .await,
        "verify for the anonymous account",
    );
    secrets.extend([upgrade.clone(), code, text(&verified, "verification_token")]);
    ok(
        &functions
            .call(
                "edit-profile",
                "POST",
                "/auth/v1/user/basic/edit",
                Some(&visitor_access),
                Some(json!({ "email": upgrade })),
            )
            .await,
        "edit-profile",
    );

    // `token` rotates the refresh token of the session just signed in.
    let refreshed = ok(
        &functions
            .call(
                "token",
                "POST",
                "/auth/v1/token",
                None,
                Some(json!({
                    "grant_type": "refresh_token",
                    "refresh_token": by_email["refresh_token"],
                })),
            )
            .await,
        "token",
    );
    assert_eq!(refreshed["sub"], credentials["sub"]);
    assert_ne!(refreshed["refresh_token"], by_email["refresh_token"]);
    // A session that signed in just now: recent enough to bind and unbind a provider.
    let recent = text(&refreshed, "access_token");
    secrets.extend([recent.clone(), text(&refreshed, "refresh_token")]);

    // `provider-token` is wired with WeChat; it reaches the fake.
    let grant_for = |code: String| {
        let functions = &functions;
        async move {
            ok(
                &functions
                    .call(
                        "provider-token",
                        "POST",
                        "/auth/v1/provider/token",
                        None,
                        Some(json!({"provider_id": "wx_open", "provider_code": code})),
                    )
                    .await,
                "provider-token",
            )
        }
    };
    let provider_code = format!("ok:{username}");
    secrets.push(provider_code.clone());
    secrets.extend(logscan::wechat_oauth_tokens(&username));
    let grant = grant_for(provider_code.clone()).await;
    assert_eq!(
        grant["provider_profile"]["sub"],
        format!("unionid-{username}")
    );
    secrets.push(text(&grant, "provider_token"));
    ok(
        &functions
            .call(
                "bind-provider",
                "POST",
                "/auth/v1/user/provider/bind",
                Some(&recent),
                Some(json!({"provider_token": grant["provider_token"]})),
            )
            .await,
        "bind-provider",
    );
    let listed = ok(
        &functions
            .call(
                "list-providers",
                "GET",
                "/auth/v1/user/provider",
                Some(&recent),
                None,
            )
            .await,
        "list-providers",
    );
    let wx = listed["data"]
        .as_array()
        .and_then(|data| data.iter().find(|p| p["id"] == "wx_open"))
        .unwrap_or_else(|| panic!("wx_open is not listed: {listed}"));
    assert_eq!(wx["bind"], true, "{listed}");

    // A provider token signs in once: a second grant signs in to the same account.
    let again = grant_for(provider_code).await;
    secrets.push(text(&again, "provider_token"));
    let by_wechat = ok(
        &functions
            .call(
                "signin-with-provider",
                "POST",
                "/auth/v1/signin/with/provider",
                None,
                Some(json!({"provider_token": again["provider_token"]})),
            )
            .await,
        "signin-with-provider",
    );
    assert_eq!(by_wechat["sub"], credentials["sub"]);
    secrets.extend([
        text(&by_wechat, "access_token"),
        text(&by_wechat, "refresh_token"),
    ]);

    ok(
        &functions
            .call(
                "unbind-provider",
                "DELETE",
                "/auth/v1/user/provider/wx_open",
                Some(&recent),
                None,
            )
            .await,
        "unbind-provider",
    );
    // `revoke` ends the session its access token belongs to.
    ok(
        &functions
            .call(
                "revoke",
                "POST",
                "/auth/v1/revoke",
                None,
                Some(json!({"token": recent})),
            )
            .await,
        "revoke",
    );
    let after = functions
        .call("user-me", "GET", "/auth/v1/user/me", Some(&recent), None)
        .await;
    assert_eq!(
        after.status, 401,
        "a revoked session still reads: {}",
        after.body
    );

    // Passwords: a change with a sudo token (its notice through SES), a reset by an email code,
    // and signing out everywhere.
    let signed_in = ok(
        &functions
            .call(
                "signin",
                "POST",
                "/auth/v1/signin",
                None,
                Some(json!({"username": email, "password": PASSWORD})),
            )
            .await,
        "signin before the password change",
    );
    let access = text(&signed_in, "access_token");
    secrets.extend([access.clone(), text(&signed_in, "refresh_token")]);
    let sudo = ok(
        &functions
            .call(
                "sudo",
                "POST",
                "/auth/v1/user/sudo",
                Some(&access),
                Some(json!({"password": PASSWORD})),
            )
            .await,
        "sudo before the password change",
    );
    let new_password = format!("{PASSWORD} renewed");
    secrets.extend([text(&sudo, "sudo_token"), new_password.clone()]);
    ok(
        &functions
            .call(
                "change-password",
                "PATCH",
                "/auth/v1/user/password",
                Some(&access),
                Some(json!({"sudo_token": sudo["sudo_token"], "new_password": new_password})),
            )
            .await,
        "change-password",
    );
    let sent = ok(
        &functions
            .call(
                "verification",
                "POST",
                "/auth/v1/verification",
                None,
                Some(json!({"email": email, "target": "USER"})),
            )
            .await,
        "verification for a reset",
    );
    let code = aws::latest_code(&email).await;
    let verified = ok(
        &functions
            .call(
                "verify",
                "POST",
                "/auth/v1/verification/verify",
                None,
                Some(
                    json!({"verification_id": sent["verification_id"], "verification_code": code}),
                ),
            )
            .await,
        "verify for a reset",
    );
    secrets.extend([code, text(&verified, "verification_token")]);
    ok(
        &functions
            .call(
                "reset-password",
                "POST",
                "/auth/v1/reset",
                None,
                Some(json!({
                    "email": email,
                    "new_password": PASSWORD,
                    "verification_token": verified["verification_token"],
                })),
            )
            .await,
        "reset-password",
    );
    let last = ok(
        &functions
            .call(
                "signin",
                "POST",
                "/auth/v1/signin",
                None,
                Some(json!({"username": email, "password": PASSWORD})),
            )
            .await,
        "signin with the reset password",
    );
    let access = text(&last, "access_token");
    secrets.extend([access.clone(), text(&last, "refresh_token")]);
    ok(
        &functions
            .call(
                "revoke-all",
                "DELETE",
                "/auth/v1/user/revoke/all",
                Some(&access),
                None,
            )
            .await,
        "revoke-all",
    );
    let after = functions
        .call("user-me", "GET", "/auth/v1/user/me", Some(&access), None)
        .await;
    assert_eq!(
        after.status, 401,
        "a session outlived revoke-all: {}",
        after.body
    );

    // `jwks` publishes the public half of the signing key, for the app's own APIs.
    let keys = ok(
        &functions
            .call("jwks", "GET", "/auth/v1/.well-known/jwks.json", None, None)
            .await,
        "jwks",
    );
    assert_eq!(keys["keys"][0]["alg"], "ES256");
    assert!(
        keys["keys"][0].get("d").is_none(),
        "a private part was published"
    );

    // The profile, then the account itself, in a session after revoke-all and with its sudo
    // token (its email hears of the deletion through SES).
    let fresh = ok(
        &functions
            .call(
                "signin",
                "POST",
                "/auth/v1/signin",
                None,
                Some(json!({"username": email, "password": PASSWORD})),
            )
            .await,
        "signin after revoke-all",
    );
    let access = text(&fresh, "access_token");
    secrets.extend([access.clone(), text(&fresh, "refresh_token")]);
    let sudo = ok(
        &functions
            .call(
                "sudo",
                "POST",
                "/auth/v1/user/sudo",
                Some(&access),
                Some(json!({"password": PASSWORD})),
            )
            .await,
        "sudo before the deletion",
    );
    secrets.push(text(&sudo, "sudo_token"));
    ok(
        &functions
            .call(
                "edit-profile",
                "POST",
                "/auth/v1/user/basic/edit",
                Some(&access),
                Some(json!({"nickname": "Lambda", "gender": "MALE"})),
            )
            .await,
        "edit-profile",
    );
    ok(
        &functions
            .call(
                "delete-user",
                "DELETE",
                &format!("/auth/v1/user/me?sudo_token={}", text(&sudo, "sudo_token")),
                Some(&access),
                None,
            )
            .await,
        "delete-user",
    );
    let gone = functions
        .call("user-me", "GET", "/auth/v1/user/me", Some(&access), None)
        .await;
    assert_eq!(
        gone.status, 401,
        "a deleted account still reads: {}",
        gone.body
    );

    // `signin-custom` signs in the app's own user by a ticket its backend minted.
    let employee = unique("Emp#");
    let ticket = ticket_key.mint(&tickets::claims(&employee));
    let by_ticket = ok(
        &functions
            .call(
                "signin-custom",
                "POST",
                "/auth/v1/signin/custom",
                None,
                Some(json!({"provider_id": "custom", "ticket": ticket})),
            )
            .await,
        "signin-custom",
    );
    let ticket_access = text(&by_ticket, "access_token");
    let me = ok(
        &functions
            .call(
                "user-me",
                "GET",
                "/auth/v1/user/me",
                Some(&ticket_access),
                None,
            )
            .await,
        "user-me of the ticket's account",
    );
    assert_eq!(me["providers"][0]["provider_user_id"], employee.as_str());
    secrets.extend([
        ticket.rsplit('.').next().unwrap_or_default().to_string(),
        ticket_access,
        text(&by_ticket, "refresh_token"),
    ]);

    // Every function binary of the route table was started and served its request.
    let started: BTreeSet<String> = functions.started.lock().unwrap().iter().cloned().collect();
    let expected: BTreeSet<String> = shared::http::routes::functions()
        .into_iter()
        .map(str::to_string)
        .collect();
    assert_eq!(started, expected, "not every function binary was started");

    // Their logs: Lambda's JSON, debug level on, and not one secret.
    let lines = functions.log_lines();
    for line in &lines {
        let parsed: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"));
        assert!(
            parsed["level"].is_string(),
            "a log line without a level: {line}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|line| serde_json::from_str::<Value>(line).unwrap()["level"] == "DEBUG"),
        "debug logging was not on: {} lines",
        lines.len()
    );
    logscan::assert_no_secret(&lines, &secrets);
    assert!(
        lines.iter().any(|line| line.contains("***@example.com")),
        "no masked address logged"
    );
}

/// The developer console lives in `local-api` alone: no function binary carries its pages,
/// its read model of the whole store, or the SDK bundle of its Try-it page.
#[test]
fn no_function_binary_carries_the_local_console() {
    let markers = [
        "local-api console",
        "/_dev/accounts",
        "registerEndPointWithKey",
    ];
    // The markers are real: the console's own sources carry each of them.
    let console: String = ["src/console.rs", "console/try.js", "console/accounts.js"]
        .iter()
        .map(|file| {
            let path = format!("{}/local-api/{file}", env!("CARGO_MANIFEST_DIR"));
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
        })
        .collect();
    for marker in markers {
        assert!(
            console.contains(marker),
            "the console no longer has `{marker}`"
        );
    }
    let dir = Path::new(env!("CARGO_BIN_EXE_signup"))
        .parent()
        .expect("the binaries' directory");
    for function in shared::http::routes::functions() {
        let binary = std::fs::read(dir.join(function))
            .unwrap_or_else(|e| panic!("reading the {function} binary: {e}"));
        // The standard library's (optimised) substring search: a byte-by-byte scan of ~50 MB
        // debug binaries in this unoptimised test would take minutes.
        let text = String::from_utf8_lossy(&binary);
        for marker in markers {
            assert!(
                !text.contains(marker),
                "the {function} binary carries `{marker}`"
            );
        }
    }
}
