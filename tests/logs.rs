//! No code, token, password, secret or full address reaches the log at any level: the whole
//! seed flow (and WeChat) runs with debug logging, then every captured log line is scanned.

use serde_json::json;
use test_support::server::{e164, unique, unique_email, unique_phone, Backend, Server};
use test_support::{logscan, wechat};

const EXE: &str = env!("CARGO_BIN_EXE_local-api");

async fn secrets_never_reach_the_log(backend: Backend) {
    let fake = wechat::start().await;
    let mut settings = wechat::settings(&fake);
    settings.push(("RUST_LOG", "debug".into()));
    // The replayed refresh token below must take the reuse path, not the grace's.
    settings.push(("AUTH_REFRESH_REUSE_GRACE_SECS", "0".into()));
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start(EXE, backend, &pairs).await;

    let account = server.new_account().await;
    let mut secrets = vec![
        account.password.clone(),
        account.access_token.clone(),
        account.refresh_token.clone(),
        wechat::APP_SECRET.to_string(),
    ];
    let sudo = server.sudo(&account).await;
    secrets.push(sudo.clone());

    let email = unique_email();
    let id = server.send_code("email", &email).await;
    let code = server.latest_code(&email).await;
    let verified = server
        .post(
            "/auth/v1/verification/verify",
            json!({"verification_id": id, "verification_code": code}),
        )
        .await;
    let token = verified.text("verification_token");
    secrets.extend([code, token.clone(), email.clone()]);
    server
        .bind_contact(&account, &sudo, "email", &email, &token)
        .await
        .assert_ok();

    let phone = unique_phone();
    let id = server.send_code("phone_number", &phone).await;
    let code = server.latest_code(&e164(&phone)).await;
    let token = server
        .post(
            "/auth/v1/verification/verify",
            json!({"verification_id": id, "verification_code": code}),
        )
        .await
        .text("verification_token");
    secrets.extend([
        code,
        token.clone(),
        e164(&phone),
        phone.trim_start_matches("+86 ").to_string(),
    ]);
    server
        .bind_contact(&account, &sudo, "phone_number", &phone, &token)
        .await
        .assert_ok();

    let signin = server
        .post(
            "/auth/v1/signin",
            json!({"username": email, "password": account.password}),
        )
        .await;
    secrets.extend([signin.text("access_token"), signin.text("refresh_token")]);
    let refreshed = server
        .post(
            "/auth/v1/token",
            json!({"grant_type": "refresh_token", "refresh_token": signin.text("refresh_token")}),
        )
        .await;
    secrets.extend([
        refreshed.text("access_token"),
        refreshed.text("refresh_token"),
    ]);
    // A wrong password and a replayed refresh token (which ends that session) go through
    // the refusal paths too.
    server
        .post(
            "/auth/v1/signin",
            json!({"username": email, "password": "a wrong password"}),
        )
        .await
        .assert_error(400, "invalid_username_or_password");
    secrets.push("a wrong password".into());
    server
        .post(
            "/auth/v1/token",
            json!({"grant_type": "refresh_token", "refresh_token": signin.text("refresh_token")}),
        )
        .await
        .assert_error(400, "invalid_grant");

    // The provider code, and what WeChat answers for it, are secrets too.
    let wechat_user = unique("wx");
    let provider_code = format!("ok:{wechat_user}");
    secrets.push(provider_code.clone());
    secrets.extend(logscan::wechat_oauth_tokens(&wechat_user));
    let grant = server
        .post(
            "/auth/v1/provider/token",
            json!({"provider_id": "wx_open", "provider_code": provider_code}),
        )
        .await;
    let provider_token = grant.text("provider_token");
    secrets.push(provider_token.clone());
    server
        .call(
            "POST",
            "/auth/v1/user/provider/bind",
            Some(&account.access_token),
            Some(json!({"provider_token": provider_token})),
        )
        .await
        .assert_ok();
    server
        .call(
            "POST",
            "/auth/v1/user/signout",
            Some(&account.access_token),
            None,
        )
        .await
        .assert_ok();

    let logs = server.logs();
    assert!(
        logs.iter().any(|line| line.contains("DEBUG")),
        "debug logging was not on: {logs:?}"
    );
    // Each secret whole, and the secret half of each `<id>.<secret>` token on its own.
    logscan::assert_no_secret(&logs, &secrets);
    // Masked addresses are what the log may carry.
    assert!(
        logs.iter().any(|line| line.contains("***@example.com")),
        "no masked address logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_debug_log_on_the_embedded_store() {
    secrets_never_reach_the_log(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_debug_log_on_dynamodb_ses_and_sns() {
    secrets_never_reach_the_log(Backend::Aws).await;
}
