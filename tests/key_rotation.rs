//! Rotating the signing key, as docs/DEPLOY.md's runbook does it (add the next key as a
//! verification key, switch, retire the old one), on the embedded store and on DynamoDB via
//! moto. The deployments before and after share the store and the secret of stored hashes,
//! and are run in process through `shared::http::handle`, each with its own key ring: what
//! a fleet of functions sees while their configuration changes. The old key here is Ed25519,
//! so this is also the migration of an EdDSA deployment to ES256.

use std::collections::HashMap;
use std::sync::Arc;

use lambda_http::{Body, Request};
use serde_json::{json, Value};
use shared::adapters::outbox::Outbox;
use shared::adapters::unwired::Unwired;
use shared::config::{Runtime, Settings};
use shared::crypto::{secret_hash_key, AccessTokens, PasswordHasher};
use shared::domain::SecretHasher;
use shared::http::routes::ROUTES;
use shared::ops::App;
use shared::ports::{Store, SystemClock};
use test_support::aws::{ed25519_pem, p256_pem};
use test_support::server::{unique, unique_email};

const HASH_SECRET: &str = "the secret of stored hashes, the same before and after";

/// One deployment: a key ring over the shared store, with its own outbox.
struct Deployment {
    app: App,
    outbox: Arc<Outbox>,
}

impl Deployment {
    fn new(store: Arc<dyn Store>, signing: &str, verifying: &str) -> Self {
        // Called in process, with no API Gateway request context to name the domain: the
        // issuer is configured, as a deployment behind a custom domain does.
        let vars = HashMap::from([(
            "AUTH_JWT_ISSUER".to_string(),
            "https://auth.example.com/auth/v1".to_string(),
        )]);
        let settings = Settings::from_vars(Runtime::Local, &vars).unwrap();
        let outbox = Arc::new(Outbox::new());
        let access_tokens =
            AccessTokens::from_pems(signing, verifying, &settings.jwt_audience).unwrap();
        let app = App {
            settings,
            store,
            delivery: outbox.clone(),
            identity_provider: Arc::new(Unwired),
            clock: Arc::new(SystemClock),
            access_tokens,
            custom_login: None,
            secrets: SecretHasher::new(secret_hash_key(HASH_SECRET).unwrap()),
            passwords: PasswordHasher::new(),
        };
        Self { app, outbox }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Value,
    ) -> (u16, Value) {
        let mut request = lambda_http::http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "auth.example.com");
        if let Some(token) = bearer {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request: Request = request.body(Body::Text(body.to_string())).unwrap();
        let response = shared::http::handle(&self.app, ROUTES, request).await;
        let status = response.status().as_u16();
        let body = match response.body() {
            Body::Text(text) => serde_json::from_str(text).unwrap(),
            other => panic!("not a text body: {other:?}"),
        };
        (status, body)
    }

    async fn ok(&self, method: &str, path: &str, bearer: Option<&str>, body: Value) -> Value {
        let (status, answer) = self.call(method, path, bearer, body).await;
        assert_eq!(status, 200, "{method} {path}: {answer}");
        answer
    }

    async fn me(&self, access_token: &str) -> u16 {
        self.call("GET", "/auth/v1/user/me", Some(access_token), json!({}))
            .await
            .0
    }

    async fn kids(&self) -> Vec<String> {
        let jwks = self
            .ok("GET", "/auth/v1/.well-known/jwks.json", None, json!({}))
            .await;
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| key["kid"].as_str().unwrap().to_string())
            .collect()
    }
}

fn kid_of(access_token: &str) -> String {
    use base64::Engine;
    let header = access_token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_string()
}

async fn sessions_and_pending_codes_survive_a_signing_key_rotation(store: Arc<dyn Store>) {
    let (old_key, new_key) = (ed25519_pem(), p256_pem());
    let password = "correct horse battery";

    // Before: the old key signs. A user signs in and asks for a code.
    let before = Deployment::new(store.clone(), &old_key, "");
    let signed_up = before
        .ok(
            "POST",
            "/auth/v1/signup",
            None,
            json!({"username": unique("rot"), "password": password}),
        )
        .await;
    let old_access = signed_up["access_token"].as_str().unwrap().to_string();
    let email = unique_email();
    let sent = before
        .ok(
            "POST",
            "/auth/v1/verification",
            None,
            json!({ "email": email }),
        )
        .await;
    let code = before
        .outbox
        .entries()
        .last()
        .unwrap()
        .code
        .clone()
        .unwrap();
    let old_kid = kid_of(&old_access);

    // Published: the next key verifies (and is in the JWKS) before anything signs with it.
    let published = Deployment::new(store.clone(), &old_key, &new_key);
    assert_eq!(published.me(&old_access).await, 200);
    let kids = published.kids().await;
    assert_eq!(kids.len(), 2, "{kids:?}");
    assert_eq!(kids[0], old_kid, "the old key still signs");

    // Switched: the new key signs, the old one only verifies.
    let switched = Deployment::new(store.clone(), &new_key, &old_key);
    assert_eq!(
        switched.me(&old_access).await,
        200,
        "a token of the old key is refused before it expired"
    );
    let refreshed = switched
        .ok(
            "POST",
            "/auth/v1/token",
            None,
            json!({"grant_type": "refresh_token", "refresh_token": signed_up["refresh_token"]}),
        )
        .await;
    let new_access = refreshed["access_token"].as_str().unwrap().to_string();
    assert_ne!(kid_of(&new_access), old_kid, "the new key signs");
    assert_eq!(switched.me(&new_access).await, 200);
    // The code sent before the switch still verifies: stored hashes do not depend on the key.
    let verified = switched
        .ok(
            "POST",
            "/auth/v1/verification/verify",
            None,
            json!({"verification_id": sent["verification_id"], "verification_code": code}),
        )
        .await;
    assert!(verified["verification_token"].is_string());

    // Retired: the old key is gone; its tokens are refused, the session goes on.
    let retired = Deployment::new(store.clone(), &new_key, "");
    assert_eq!(retired.me(&old_access).await, 401);
    assert_eq!(retired.me(&new_access).await, 200);
    assert_eq!(retired.kids().await, [kid_of(&new_access)]);
    retired
        .ok(
            "POST",
            "/auth/v1/token",
            None,
            json!({"grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"]}),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_embedded_store_sessions_and_pending_codes_survive_a_signing_key_rotation() {
    let store = Arc::new(shared::adapters::memory::MemoryStore::new());
    sessions_and_pending_codes_survive_a_signing_key_rotation(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_dynamodb_sessions_and_pending_codes_survive_a_signing_key_rotation() {
    let store = Arc::new(test_support::moto::fresh_store("key-rotation").await);
    sessions_and_pending_codes_survive_a_signing_key_rotation(store).await;
}
