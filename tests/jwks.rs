//! Access tokens as the app's own backend verifies them: standard libraries pointed at
//! `local-api`'s discovery document alone (PyJWT's `PyJWKClient`, Node's `jose` with
//! `createRemoteJWKSet`), with issuer, audience and algorithm pinned, as API Gateway's JWT
//! authorizer does. A fresh token passes; one signed by an unpublished key, an expired one,
//! one with `alg: none` and one for another audience are refused.

use std::collections::BTreeMap;
use std::process::Stdio;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use shared::crypto::{AccessTokens, Scope};
use shared::domain::{SessionId, UserId};
use test_support::server::{Backend, Server};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

const EXE: &str = env!("CARGO_BIN_EXE_local-api");
const AUDIENCE: &str = "cloudbase-association";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Runs a verifier program with the request on its stdin; answers its verdicts by token name.
async fn verdicts(program: &mut Command, request: &Value) -> BTreeMap<String, String> {
    let mut child = program
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the verifier starts");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(request.to_string().as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.expect("the verifier ends");
    assert!(
        output.status.success(),
        "the verifier failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "the verifier's answer is not JSON: {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_verifiers_accept_our_tokens_from_the_discovery_document_alone() {
    let pem = test_support::aws::p256_pem();
    let server = Server::start(EXE, Backend::Embedded, &[("AUTH_JWT_PRIVATE_KEY", &pem)]).await;
    let issuer = format!("{}/auth/v1", server.origin);

    let discovery_url = format!("{issuer}/.well-known/openid-configuration");
    let answer = reqwest::get(&discovery_url).await.unwrap();
    assert_eq!(
        answer.headers()["cache-control"],
        "public, max-age=300",
        "verifiers may cache the discovery document"
    );
    let discovery: Value = answer.json().await.unwrap();
    assert_eq!(discovery["issuer"], issuer.as_str());
    assert_eq!(
        discovery["jwks_uri"],
        format!("{issuer}/.well-known/jwks.json")
    );
    assert_eq!(
        discovery["id_token_signing_alg_values_supported"],
        json!(["ES256"])
    );

    let account = server.new_account().await;
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(account.access_token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "ES256");

    // Tokens a verifier must refuse, each wrong in one way only.
    let (user, session) = (UserId::generate(), SessionId::generate());
    let ours = AccessTokens::from_pems(&pem, "", AUDIENCE).unwrap();
    let unpublished = AccessTokens::ephemeral(AUDIENCE)
        .issue(&issuer, &user, &session, Scope::User, now(), 600)
        .unwrap();
    let expired = ours
        .issue(&issuer, &user, &session, Scope::User, now() - 7200, 60)
        .unwrap();
    let other_audience = AccessTokens::from_pems(&pem, "", "another-api")
        .unwrap()
        .issue(&issuer, &user, &session, Scope::User, now(), 600)
        .unwrap();
    let other_issuer = ours
        .issue(
            "https://elsewhere.example/auth/v1",
            &user,
            &session,
            Scope::User,
            now(),
            600,
        )
        .unwrap();
    let unsigned = {
        let mut header = header.clone();
        header["alg"] = "none".into();
        let payload = account.access_token.split('.').nth(1).unwrap();
        format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(header.to_string()))
    };
    // A genuine token minted here with the server's key verifies too: the check is real.
    let minted = ours
        .issue(&issuer, &user, &session, Scope::User, now(), 600)
        .unwrap();
    let request = json!({
        "discovery": discovery_url,
        "audience": AUDIENCE,
        "tokens": {
            "fresh": account.access_token,
            "minted": minted,
            "unpublished": unpublished,
            "expired": expired,
            "alg_none": unsigned,
            "other_audience": other_audience,
            "other_issuer": other_issuer,
        },
    });

    let python = verdicts(
        Command::new(test_support::provision::moto_python()).arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/jwks/verify.py"
        )),
        &request,
    )
    .await;
    let e2e = test_support::node::suite("e2e").await;
    let node = verdicts(
        Command::new("node")
            .arg("verify-access-tokens.mjs")
            .current_dir(&e2e),
        &request,
    )
    .await;
    for (verifier, verdicts) in [("PyJWT", &python), ("jose", &node)] {
        for good in ["fresh", "minted"] {
            assert_eq!(verdicts[good], "ok", "{verifier} refused the {good} token");
        }
        for bad in [
            "unpublished",
            "expired",
            "alg_none",
            "other_audience",
            "other_issuer",
        ] {
            assert_ne!(
                verdicts[bad], "ok",
                "{verifier} accepted the {bad} token: {verdicts:?}"
            );
        }
        println!("{verifier}: {verdicts:#?}");
    }
}

/// What a client gets when it names another host: tokens (from sign-up and from a refresh)
/// and the discovery document, all asked for with `Host: evil.example`.
async fn issuer_seen_by_a_client_naming(server: &Server, host: &str) -> Vec<String> {
    let post = |path: &str, body: Value| {
        server
            .raw(reqwest::Method::POST, path)
            .header("host", host)
            .body(body.to_string())
    };
    let signed_up = server
        .send(post(
            "/auth/v1/signup",
            json!({"username": test_support::server::unique("iss"), "password": "correct horse battery"}),
        ))
        .await;
    let refreshed = server
        .send(post(
            "/auth/v1/token",
            json!({"grant_type": "refresh_token", "refresh_token": signed_up.assert_ok()["refresh_token"]}),
        ))
        .await;
    let discovery = server
        .send(
            server
                .raw(
                    reqwest::Method::GET,
                    "/auth/v1/.well-known/openid-configuration",
                )
                .header("host", host),
        )
        .await;
    let iss_of = |token: String| {
        let payload = token.split('.').nth(1).expect("a JWT").to_string();
        test_support::jwt::decode_part(&payload)["iss"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let access_token = refreshed.text("access_token");
    // The token verifies on a request that names no other host, as it would at the API.
    assert_eq!(server.me(&access_token).await.status, 200);
    let jwks_uri = discovery.text("jwks_uri");
    vec![
        iss_of(signed_up.text("access_token")),
        iss_of(access_token),
        discovery.text("issuer"),
        jwks_uri
            .strip_suffix("/.well-known/jwks.json")
            .unwrap_or(&jwks_uri)
            .to_string(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_header_names_no_issuer_local_api_uses_its_own_loopback_url() {
    let server = Server::start(EXE, Backend::Embedded, &[]).await;
    let own = format!("{}/auth/v1", server.origin);
    assert!(own.starts_with("http://127.0.0.1:"), "{own}");
    assert_eq!(
        issuer_seen_by_a_client_naming(&server, "evil.example").await,
        vec![own; 4],
        "tokens' iss, discovery's issuer and its jwks_uri"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_header_names_no_issuer_when_one_is_configured() {
    let server = Server::start(
        EXE,
        Backend::Embedded,
        &[("AUTH_JWT_ISSUER", "https://auth.example.com/auth/v1/")],
    )
    .await;
    for host in ["evil.example", "localhost"] {
        assert_eq!(
            issuer_seen_by_a_client_naming(&server, host).await,
            vec!["https://auth.example.com/auth/v1".to_string(); 4],
            "tokens' iss, discovery's issuer and its jwks_uri, asked with Host: {host}"
        );
    }
}
