//! `local-api`'s developer console: its read model over HTTP on both stores, and the pages in
//! a real browser (`tests/console/`: Debian's chromium driven by playwright-core), once on the
//! embedded store and once on DynamoDB through moto (codes still in the outbox, which the
//! Messages and Try it views read). The embedded run saves a screenshot of each page under
//! `target/console-screenshots/`.

use std::path::PathBuf;

use serde_json::{json, Value};
use test_support::server::{unique, Backend, Server};
use test_support::{node, provision, wechat};

const EXE: &str = env!("CARGO_BIN_EXE_local-api");

async fn get(server: &Server, path: &str) -> reqwest::Response {
    server
        .raw(reqwest::Method::GET, path)
        .send()
        .await
        .expect("local-api answers")
}

async fn accounts(server: &Server) -> Vec<Value> {
    let answer = get(server, "/_dev/accounts").await;
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.expect("JSON");
    body.as_array().expect("a list of accounts").clone()
}

/// local-api with codes in the outbox and WeChat served by the fake.
async fn console_server(backend: Backend) -> Server {
    let fake = wechat::start().await;
    let mut settings = wechat::settings(&fake);
    settings.push(("AUTH_DELIVERY", "outbox".into()));
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::start(EXE, backend, &pairs).await
}

async fn lists_accounts_with_their_addresses_and_live_sessions(backend: Backend) {
    let server = console_server(backend).await;
    let account = server.new_account().await;
    let email = format!("{}@example.com", unique("console"));
    server.bind_email(&account, &email).await.assert_ok();
    // A second session, then one ended: only live sessions are listed.
    let second = server
        .post(
            "/auth/v1/signin",
            json!({"username": email, "password": account.password}),
        )
        .await;
    second.assert_ok();
    server
        .call(
            "POST",
            "/auth/v1/user/signout",
            Some(&second.text("access_token")),
            None,
        )
        .await
        .assert_ok();
    let refreshed = server
        .post(
            "/auth/v1/token",
            json!({"grant_type": "refresh_token", "refresh_token": account.refresh_token}),
        )
        .await;
    refreshed.assert_ok();
    let wechat_name = unique("wx");
    let grant = server
        .post(
            "/auth/v1/provider/token",
            json!({"provider_id": "wx_open", "provider_code": format!("ok:{wechat_name}")}),
        )
        .await;
    server
        .call(
            "POST",
            "/auth/v1/user/provider/bind",
            Some(&refreshed.text("access_token")),
            Some(json!({"provider_token": grant.text("provider_token")})),
        )
        .await
        .assert_ok();

    let listed = accounts(&server).await;
    let found = listed
        .iter()
        .find(|a| a["sub"] == account.sub.as_str())
        .unwrap_or_else(|| panic!("{} is not listed: {listed:?}", account.sub));
    assert_eq!(found["username"], account.username.as_str());
    assert_eq!(found["email"], email.as_str());
    assert_eq!(found["phone_number"], Value::Null);
    assert_eq!(
        found["providers"],
        json!([{
            "provider_id": "wx_open",
            "subject": format!("unionid-{wechat_name}"),
            "name": wechat_name,
        }])
    );
    assert_eq!(found["has_password"], true);
    let sessions = found["sessions"].as_array().expect("sessions");
    assert_eq!(
        sessions.len(),
        1,
        "only the refreshed session lives: {found}"
    );
    for field in ["created_at", "refreshed_at", "expires_at"] {
        assert!(
            sessions[0][field]
                .as_str()
                .is_some_and(|t| t.ends_with('Z')),
            "{field} in {found}"
        );
    }
    assert!(sessions[0]["refreshed_at"].as_str() >= sessions[0]["created_at"].as_str());
    // Newest first (creation times are whole seconds).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let newer = server.new_account().await;
    assert_eq!(accounts(&server).await[0]["sub"], newer.sub.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_lists_accounts_with_addresses_and_live_sessions_on_the_embedded_store() {
    lists_accounts_with_their_addresses_and_live_sessions(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_lists_accounts_with_addresses_and_live_sessions_on_dynamodb() {
    lists_accounts_with_their_addresses_and_live_sessions(Backend::Aws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_pages_are_served_with_a_policy_that_forbids_inline_script() {
    let server = Server::start(EXE, Backend::Embedded, &[]).await;
    for path in ["/", "/_dev/messages", "/_dev/try"] {
        let answer = get(&server, path).await;
        assert_eq!(answer.status(), 200, "{path}");
        let policy = answer
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(policy.contains("script-src 'self'"), "{path}: {policy}");
        assert!(!policy.contains("unsafe-inline"), "{path}: {policy}");
        let page = answer.text().await.expect("a page");
        for label in ["Accounts", "Messages", "Try it"] {
            assert!(
                page.contains(&format!(">{label}</a>")),
                "{path} lacks {label}"
            );
        }
    }
    let bundle = get(&server, "/_dev/cloudbase-sdk.js").await;
    assert_eq!(bundle.status(), 200);
    let bundle = bundle.text().await.expect("the SDK bundle");
    assert!(
        bundle.contains("registerEndPointWithKey") && bundle.len() > 100_000,
        "the SDK bundle was not built: {}",
        &bundle[..bundle.len().min(400)]
    );
    // The API's own paths and methods stay the API's.
    let answer = server.post("/", json!({})).await;
    answer.assert_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ses_and_sns_delivery_the_console_says_there_is_no_outbox() {
    let server = Server::start(EXE, Backend::Aws, &[]).await;
    let settings: Value = get(&server, "/_dev/settings")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(settings, json!({"store": "dynamodb", "outbox": false}));
}

async fn run_browser_suite(backend: Backend, screenshots: Option<PathBuf>) {
    // One browser at a time: two at once on two cores would test the machine's load, not
    // the console's two-second promise.
    static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _turn = ONE_BROWSER.lock().await;
    let chromium = provision::chromium();
    let dir = node::suite("console").await;
    let server = console_server(backend).await;
    let screenshots = screenshots.map(|dir| dir.display().to_string());
    let mut env = vec![
        ("CONSOLE_ORIGIN", server.origin.as_str()),
        ("CHROMIUM", chromium.to_str().expect("a UTF-8 path")),
    ];
    if let Some(dir) = &screenshots {
        env.push(("SCREENSHOTS", dir));
    }
    let what = format!("the console's browser suite on {backend:?}");
    node::run(&dir, &env, 6, &server, &what).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_a_real_browser_on_the_embedded_store() {
    let screenshots = provision::tools_dir()
        .parent()
        .expect("target/")
        .join("console-screenshots");
    run_browser_suite(Backend::Embedded, Some(screenshots)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_a_real_browser_on_dynamodb() {
    run_browser_suite(Backend::Aws, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_this_machine_may_read_or_empty_the_console_and_the_outbox() {
    let server = Server::start(EXE, Backend::Embedded, &[]).await;
    let send = |method: reqwest::Method, path: &str, headers: &[(&str, &str)]| {
        let mut request = server.raw(method, path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };
    let allowed = |answer: &reqwest::Response| {
        answer
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    // A DNS name rebound to 127.0.0.1 is not this machine's name.
    for path in ["/", "/_dev/accounts", "/_dev/outbox", "/_dev/settings"] {
        let answer = send(reqwest::Method::GET, path, &[("host", "evil.example:3000")])
            .await
            .expect("an answer");
        assert_eq!(answer.status(), 403, "{path}");
    }
    // Another loopback origin (an app being developed) may read the outbox and the settings.
    let app = "http://127.0.0.1:5173";
    for path in ["/_dev/outbox", "/_dev/settings"] {
        let answer = send(reqwest::Method::GET, path, &[("origin", app)])
            .await
            .expect("an answer");
        assert_eq!(answer.status(), 200, "{path}");
        assert_eq!(allowed(&answer).as_deref(), Some(app), "{path}");
    }
    // A web site may read nothing, the accounts are for the console's own page only, and no
    // other origin is let through a preflight to empty the outbox.
    for (path, origin) in [
        ("/_dev/outbox", "https://evil.example"),
        ("/_dev/settings", "http://127.0.0.1.evil.example"),
        ("/_dev/accounts", app),
    ] {
        let answer = send(reqwest::Method::GET, path, &[("origin", origin)])
            .await
            .expect("an answer");
        assert_eq!(allowed(&answer), None, "{path} for {origin}");
    }
    let preflight = send(
        reqwest::Method::OPTIONS,
        "/_dev/outbox",
        &[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "DELETE"),
        ],
    )
    .await
    .expect("an answer");
    assert_eq!(preflight.status(), 404);
    assert_eq!(allowed(&preflight), None);
    assert!(preflight
        .headers()
        .get("access-control-allow-methods")
        .is_none());
}
