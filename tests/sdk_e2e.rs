//! The unmodified `@cloudbase/js-sdk` (Node) drives the real `local-api` end to end: the
//! suite in `tests/e2e`, once on the embedded store and outbox, once on DynamoDB, SES and SNS
//! through moto_server. Its npm packages come from `npm ci`, run by the test support when missing.

use std::path::PathBuf;
use std::process::Stdio;

use test_support::server::{Backend, Server};
use test_support::wechat;
use tokio::process::Command;

const EXE: &str = env!("CARGO_BIN_EXE_local-api");

fn suite_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e")
}

async fn run_sdk_suite(backend: Backend) {
    tokio::task::spawn_blocking(|| test_support::provision::npm_packages(&suite_dir()))
        .await
        .expect("installing the npm packages panicked");
    let fake = wechat::start().await;
    let settings = wechat::settings(&fake);
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start(EXE, backend, &pairs).await;
    let mut node = Command::new("node");
    node.args(["--test", "--test-reporter=spec"])
        .current_dir(suite_dir())
        .env("AUTH_API_ORIGIN", &server.origin)
        .stdin(Stdio::null());
    match backend {
        Backend::Embedded => node.env("E2E_CODE_SOURCE", "outbox"),
        Backend::Aws => node
            .env("E2E_CODE_SOURCE", "moto")
            .env("MOTO_URL", test_support::moto::endpoint()),
    };
    let output = node
        .output()
        .await
        .expect("node runs (is Node.js installed?)");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{report}");
    assert!(
        output.status.success(),
        "the SDK suite failed on {backend:?}:\n{report}\n--- server output ---\n{}",
        server.output()
    );
    let passed: u32 = report
        .lines()
        .find_map(|line| line.trim().strip_prefix("ℹ pass "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        passed >= 10,
        "the SDK suite ran too few tests ({passed}):\n{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cloudbase_sdk_completes_every_seed_flow_on_the_embedded_store() {
    run_sdk_suite(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cloudbase_sdk_completes_every_seed_flow_on_dynamodb_ses_and_sns() {
    run_sdk_suite(Backend::Aws).await;
}
