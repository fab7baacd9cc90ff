//! Per-client limits as API Gateway delivers clients to the functions: events whose request
//! context carries the source IP, parsed by `lambda_http` and answered by `shared::http::handle`
//! (what each function's `main` runs), on the embedded store and on DynamoDB via moto. `local-api`
//! listens on 127.0.0.1 alone, so no IPv6 client can reach it: this is the path where one
//! IPv6 customer, holding a whole /64, sends from as many addresses as it likes.

use std::collections::HashMap;
use std::sync::Arc;

use lambda_http::Body;
use serde_json::{json, Value};
use shared::adapters::outbox::Outbox;
use shared::adapters::unwired::Unwired;
use shared::config::{Runtime, Settings};
use shared::crypto::{secret_hash_key, AccessTokens, PasswordHasher};
use shared::domain::SecretHasher;
use shared::http::routes::ROUTES;
use shared::ops::App;
use shared::ports::{Store, SystemClock};
use tokio::sync::Barrier;

const SIGNUPS_PER_CLIENT: u32 = 3;

fn app(store: Arc<dyn Store>) -> App {
    let vars = HashMap::from([(
        "AUTH_SIGNUPS_PER_IP_PER_HOUR".to_string(),
        SIGNUPS_PER_CLIENT.to_string(),
    )]);
    let settings = Settings::from_vars(Runtime::Local, &vars).unwrap();
    let access_tokens =
        AccessTokens::from_pems(&test_support::aws::p256_pem(), "", &settings.jwt_audience)
            .unwrap();
    App {
        settings,
        store,
        delivery: Arc::new(Outbox::new()),
        identity_provider: Arc::new(Unwired),
        clock: Arc::new(SystemClock),
        access_tokens,
        secrets: SecretHasher::new(
            secret_hash_key(&test_support::server::unique(
                "a secret hash key of some length ",
            ))
            .unwrap(),
        ),
        passwords: PasswordHasher::new(),
        custom_login: None,
    }
}

/// An anonymous sign-in (counted against `AUTH_SIGNUPS_PER_IP_PER_HOUR`) as API Gateway's
/// HTTP API hands it to the function: the client's address in `requestContext.http.sourceIp`.
async fn anonymous_sign_in_from(app: &App, source_ip: &str) -> (u16, Value) {
    let event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/auth/v1/signin/anonymously",
        "rawQueryString": "",
        "headers": {"host": "api.example.com", "content-type": "text/plain;charset=UTF-8"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.com",
            "http": {"method": "POST", "path": "/auth/v1/signin/anonymously",
                     "protocol": "HTTP/1.1", "sourceIp": source_ip, "userAgent": "test"},
            "requestId": "id",
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Jan/2025:00:00:00 +0000",
            "timeEpoch": 1_735_689_600_000_u64,
        },
        "body": "{}",
        "isBase64Encoded": false,
    });
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let response = shared::http::handle(app, ROUTES, request).await;
    let status = response.status().as_u16();
    let body = match response.body() {
        Body::Text(text) => serde_json::from_str(text).unwrap(),
        other => panic!("not a text body: {other:?}"),
    };
    (status, body)
}

/// Sign-ins from `sources`, released together; answers how many got in and how many were
/// refused as over the limit (anything else fails the test).
async fn simultaneously(app: &Arc<App>, sources: Vec<String>) -> (usize, usize) {
    let barrier = Arc::new(Barrier::new(sources.len()));
    let tasks: Vec<_> = sources
        .into_iter()
        .map(|source| {
            let (app, barrier) = (Arc::clone(app), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                anonymous_sign_in_from(&app, &source).await
            })
        })
        .collect();
    let (mut admitted, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            (200, body) if body["access_token"].is_string() => admitted += 1,
            (429, body) if body["error"] == "resource_exhausted" => refused += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    (admitted, refused)
}

async fn one_ipv6_64_shares_one_bucket_however_many_addresses_it_uses(store: Arc<dyn Store>) {
    let app = Arc::new(app(store));
    // Twelve addresses of one customer's /64, each new to the service, all at once.
    let one_customer: Vec<String> = (1..=12)
        .map(|n| format!("2001:db8:24:9:{n:x}:{:x}::{n}", n * 4099))
        .collect();
    assert_eq!(
        simultaneously(&app, one_customer).await,
        (
            SIGNUPS_PER_CLIENT as usize,
            12 - SIGNUPS_PER_CLIENT as usize
        ),
        "one /64 is one client"
    );
    // The neighbouring /64 is another customer, with a bucket of its own.
    let (status, body) = anonymous_sign_in_from(&app, "2001:db8:24:a::1").await;
    assert_eq!(status, 200, "{body}");

    // IPv4 stays per address, and its IPv4-mapped IPv6 form is the same client.
    let v4 = "198.51.100.24";
    let mapped = format!("::ffff:{v4}");
    let same_client = vec![v4.to_string(), mapped.clone(), v4.to_string(), mapped];
    assert_eq!(
        simultaneously(&app, same_client).await,
        (SIGNUPS_PER_CLIENT as usize, 1),
        "an address and its IPv4-mapped form are one client"
    );
    let (status, body) = anonymous_sign_in_from(&app, "198.51.100.25").await;
    assert_eq!(
        status, 200,
        "the next IPv4 address is another client: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_embedded_store_one_ipv6_64_shares_one_bucket_however_many_addresses_it_uses() {
    let store = Arc::new(shared::adapters::memory::MemoryStore::new());
    one_ipv6_64_shares_one_bucket_however_many_addresses_it_uses(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_dynamodb_one_ipv6_64_shares_one_bucket_however_many_addresses_it_uses() {
    let store = Arc::new(test_support::moto::fresh_store("client-networks").await);
    one_ipv6_64_shares_one_bucket_however_many_addresses_it_uses(store).await;
}
