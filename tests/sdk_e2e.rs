//! The unmodified `@cloudbase/js-sdk` (Node) drives the real `local-api` end to end: the
//! suite in `tests/e2e`, once on the embedded store and outbox, once on DynamoDB, SES and SNS
//! through moto_server. Its npm packages come from `npm ci`, run by the test support when missing.

use test_support::server::{Backend, Server};
use test_support::tickets::{self, TicketKey};
use test_support::{node, wechat};

const EXE: &str = env!("CARGO_BIN_EXE_local-api");
const REFRESH_GRACE_SECS: &str = "2";
/// The tests of each file of the suite: every one must run and pass.
const SDK_TESTS: u32 = 11; // sdk.test.mjs
const ACCOUNT_TESTS: u32 = 8; // account.test.mjs
const OTP_TESTS: u32 = 10; // otp.test.mjs
const PASSWORD_TESTS: u32 = 7; // password.test.mjs
const CUSTOM_TESTS: u32 = 5; // custom.test.mjs

async fn run_sdk_suite(backend: Backend) {
    let dir = node::suite("e2e").await;
    let fake = wechat::start().await;
    let mut settings = wechat::settings(&fake);
    // Short, so that the suite sees a retired refresh token both within the grace and after.
    settings.push(("AUTH_REFRESH_REUSE_GRACE_SECS", REFRESH_GRACE_SECS.into()));
    // The files run at once from one client address, some sending several codes to one
    // address in a row (a sign-in by code after binding it; a deleted account's email bound
    // by the next account; a reset or reauthentication after a bind); the resend gap and the
    // per-client quotas are tested in api.rs and abuse.rs.
    settings.push(("AUTH_CODE_RESEND_INTERVAL_SECS", "0".into()));
    settings.push(("AUTH_CODE_SENDS_PER_IP_PER_HOUR", "1000".into()));
    // Every test signs up accounts of its own, all from this one client.
    settings.push(("AUTH_SIGNUPS_PER_IP_PER_HOUR", "1000".into()));
    // Custom login: the key pair made by the README's openssl commands, its public half with
    // the server, the credentials file `@cloudbase/node-sdk` reads with the suite.
    let ticket_key = TicketKey::generate("e2e-key");
    settings.push(("AUTH_ENV_ID", tickets::ENV_ID.into()));
    settings.push((
        "AUTH_CUSTOM_LOGIN_KEYS",
        tickets::keys_setting(&[&ticket_key]),
    ));
    let custom_credentials = ticket_key.credentials(tickets::ENV_ID).to_string();
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start(EXE, backend, &pairs).await;
    let moto = match backend {
        Backend::Embedded => String::new(),
        Backend::Aws => test_support::moto::endpoint(),
    };
    let mut env = vec![
        ("AUTH_API_ORIGIN", server.origin.as_str()),
        ("E2E_REFRESH_GRACE_SECS", REFRESH_GRACE_SECS),
        ("E2E_ENV_ID", tickets::ENV_ID),
        ("E2E_CUSTOM_CREDENTIALS", custom_credentials.as_str()),
    ];
    match backend {
        Backend::Embedded => env.push(("E2E_CODE_SOURCE", "outbox")),
        Backend::Aws => env.extend([("E2E_CODE_SOURCE", "moto"), ("MOTO_URL", moto.as_str())]),
    }
    node::run(
        &dir,
        &env,
        SDK_TESTS + ACCOUNT_TESTS + OTP_TESTS + PASSWORD_TESTS + CUSTOM_TESTS,
        &server,
        &format!("the SDK suite on {backend:?}"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cloudbase_sdk_completes_every_seed_flow_on_the_embedded_store() {
    run_sdk_suite(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cloudbase_sdk_completes_every_seed_flow_on_dynamodb_ses_and_sns() {
    run_sdk_suite(Backend::Aws).await;
}
