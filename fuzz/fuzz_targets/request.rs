//! Bytes as the body of a request to one route, through `shared::http::handle` (what the
//! local server and every Lambda function run), on the embedded store with the outbox and a
//! single-threaded tokio runtime. The first byte picks the route, the second the method,
//! the authorization and the content type; the rest is the body.
//!
//! Fails on a 5xx, a panic, or an answer that is not a JSON object in the contract's shape.

#![no_main]

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use lambda_http::http::{self, HeaderValue};
use lambda_http::{Body, Request, Response};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

use shared::bootstrap::build_with_outbox;
use shared::config::{Runtime, Settings};
use shared::http::routes::ROUTES;
use shared::http::{handle, ClientIp};
use shared::ops::App;

const OWNER: &str = r#"{"username":"fuzz-owner","password":"correct horse battery"}"#;

struct Fixture {
    rt: tokio::runtime::Runtime,
    app: App,
    access_token: Mutex<String>,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

fn call(fixture: &Fixture, req: Request) -> Response<Body> {
    fixture.rt.block_on(handle(&fixture.app, ROUTES, req))
}

fn body_json(response: &Response<Body>) -> Value {
    let bytes: &[u8] = match response.body() {
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => b"",
    };
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

/// Signs the fixture account up (the first time) or in, and keeps its access token.
fn sign_in(fixture: &Fixture, path: &str) {
    let req = http::Request::builder()
        .method("POST")
        .uri(path)
        .body(Body::Text(OWNER.into()))
        .expect("a request");
    if let Some(token) = body_json(&call(fixture, req))["access_token"].as_str() {
        *fixture.access_token.lock().unwrap() = token.to_string();
    }
}

fn fixture() -> &'static Fixture {
    FIXTURE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        // Called in process, with neither the local server's issuer nor API Gateway's domain.
        let issuer = HashMap::from([(
            "AUTH_JWT_ISSUER".to_string(),
            "http://127.0.0.1:3000/auth/v1".to_string(),
        )]);
        let settings =
            Settings::from_vars(Runtime::Local, &issuer).expect("default settings");
        let app = rt
            .block_on(build_with_outbox(settings))
            .expect("the app")
            .app;
        let fixture = Fixture {
            rt,
            app,
            access_token: Mutex::new(String::new()),
        };
        sign_in(&fixture, "/auth/v1/signup");
        fixture
    })
}

const METHODS: [&str; 8] = [
    "GET", "POST", "PATCH", "DELETE", "PUT", "OPTIONS", "HEAD", "TRACE",
];
const CONTENT_TYPES: [&str; 4] = [
    "text/plain;charset=UTF-8",
    "application/json",
    "application/octet-stream",
    "",
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let fixture = fixture();
    let route = &ROUTES[data[0] as usize % ROUTES.len()];
    let flags = data[1];
    let body = &data[2..];
    let method = if flags & 0b111 == 0 {
        METHODS[(data[0] as usize / ROUTES.len()) % METHODS.len()]
    } else {
        route.method
    };
    let mut req = http::Request::new(if body.is_empty() {
        Body::Empty
    } else {
        Body::Binary(body.to_vec())
    });
    *req.method_mut() = http::Method::from_bytes(method.as_bytes()).expect("a method");
    *req.uri_mut() = route
        .path
        .replace("{provider_id}", "wx_open")
        .parse()
        .expect("a URI");
    let valid = (flags >> 3) & 0b11 == 1;
    let authorization = match (flags >> 3) & 0b11 {
        0 => None,
        1 => Some(format!("Bearer {}", fixture.access_token.lock().unwrap())),
        2 => Some(format!("Bearer {}", String::from_utf8_lossy(body))),
        _ => Some(String::from_utf8_lossy(body).into_owned()),
    };
    if let Some(value) = authorization.and_then(|v| HeaderValue::from_str(&v).ok()) {
        req.headers_mut().insert("authorization", value);
    }
    let content_type = CONTENT_TYPES[(flags >> 5) as usize % CONTENT_TYPES.len()];
    if !content_type.is_empty() {
        req.headers_mut()
            .insert("content-type", HeaderValue::from_static(content_type));
    }
    if flags & 0x80 != 0 {
        req.extensions_mut()
            .insert(ClientIp(std::net::Ipv4Addr::LOCALHOST.into()));
    }

    let response = call(fixture, req);
    let status = response.status().as_u16();
    assert!(
        status < 500,
        "{status} for {method} {}: {:?}",
        route.path,
        response.body()
    );
    let answer = body_json(&response);
    let object = answer
        .as_object()
        .unwrap_or_else(|| panic!("not a JSON object: {:?}", response.body()));
    if status == 200 {
        assert!(!object.contains_key("error") && !object.contains_key("error_code"));
    } else {
        assert!(object.get("error").and_then(Value::as_str).is_some());
        assert!(object
            .get("error_description")
            .and_then(Value::as_str)
            .is_some_and(|d| !d.is_empty()));
    }
    if valid && status == 401 {
        // The input signed the fixture account out: sign in again for the next one.
        sign_in(fixture, "/auth/v1/signin");
    }
});
