//! The function binaries as Lambda runs them: each its own process, started with only the
//! environment the Lambda service sets plus the function's settings, polling a Runtime API
//! emulator on loopback (the benchmark's, `bench/src/emulator.rs` and `process.rs`), on
//! DynamoDB and SES in moto_server and the WeChat fake. This is the path `local-api` does not
//! take: `Wiring::LAMBDA`, AWS configuration from the environment alone, each function
//! linking only the adapters its `main` names.

// Shared with the benchmark; not every item of theirs is used here.
#[allow(dead_code)]
#[path = "../bench/src/emulator.rs"]
mod emulator;
#[allow(dead_code)]
#[path = "../bench/src/process.rs"]
mod process;

use std::path::Path;

use serde_json::{json, Value};
use test_support::server::{unique, unique_email, SENDER};
use test_support::{aws, moto, wechat};

use process::{event, FunctionProcess, Invoked};

const PASSWORD: &str = "correct horse battery";

struct Functions {
    env: Vec<(String, String)>,
    client_ip: String,
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
        let function = FunctionProcess::start(&bin, name, &self.env, None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let event = event(method, path, bearer, body.as_ref(), &self.client_ip);
        function
            .invoke(&event)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

fn ok(invoked: &Invoked, what: &str) -> Value {
    assert_eq!(invoked.status, 200, "{what}: {}", invoked.body);
    invoked.body.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_function_binary_serves_its_step_of_the_seed_flow_through_the_runtime_api() {
    let store = moto::fresh_store("lambda-runtime").await;
    aws::verify_sender(SENDER).await;
    let wechat_origin = wechat::start().await;
    let mut env: Vec<(String, String)> = vec![
        ("AWS_ENDPOINT_URL".into(), moto::endpoint()),
        ("AUTH_TABLE_NAME".into(), store.table().to_string()),
        ("AUTH_EMAIL_FROM".into(), SENDER.into()),
        ("AUTH_JWT_PRIVATE_KEY".into(), aws::p256_pem()),
        (
            "AUTH_SECRET_HASH_KEY".into(),
            unique("a secret hash key of some length "),
        ),
    ];
    env.extend(
        wechat::settings(&wechat_origin)
            .into_iter()
            .map(|(name, value)| (name.to_string(), value)),
    );
    let functions = Functions {
        env,
        client_ip: "198.51.100.7".into(),
    };

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
    let access = credentials["access_token"]
        .as_str()
        .expect("an access token");
    let me = ok(
        &functions
            .call("user-me", "GET", "/auth/v1/user/me", Some(access), None)
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
                Some(access),
                Some(json!({"password": PASSWORD})),
            )
            .await,
        "sudo",
    );
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
    let verified = ok(
        &functions
            .call(
                "verify",
                "POST",
                "/auth/v1/verification/verify",
                None,
                Some(json!({
                    "verification_id": sent["verification_id"],
                    "verification_code": aws::latest_code(&email).await,
                })),
            )
            .await,
        "verify",
    );
    ok(
        &functions
            .call(
                "bind-contact",
                "PATCH",
                "/auth/v1/user/contact",
                Some(access),
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

    // `provider-token` is wired with WeChat; it reaches the fake.
    let grant = ok(
        &functions
            .call(
                "provider-token",
                "POST",
                "/auth/v1/provider/token",
                None,
                Some(json!({"provider_id": "wx_open", "provider_code": format!("ok:{username}")})),
            )
            .await,
        "provider-token",
    );
    assert_eq!(
        grant["provider_profile"]["sub"],
        format!("unionid-{username}")
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
