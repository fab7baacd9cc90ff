//! A real HTTP fake of WeChat's `sns/oauth2/access_token` and `sns/userinfo` on loopback.
//!
//! Codes: `ok:<name>` is the WeChat user `<name>` (openid `openid-<name>`, unionid
//! `unionid-<name>`); `nounion:<name>` is the same user without a unionid; `nouserinfo:<name>`
//! is the same user once more, whose `sns/userinfo` fails, leaving the unionid out (WeChat
//! gives it there only); `hostile:<name>` is the user `<name>` whose profile is
//! `HOSTILE_NICKNAME` and `HOSTILE_PICTURE`; `slow:<name>` answers after 3 s; `busy` answers
//! errcode -1; `http500` fails with HTTP 500; any other code is errcode 40029 (invalid code).
//! The app must be `wx-test-app` / `wx-test-secret`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

pub const APP_ID: &str = "wx-test-app";
pub const APP_SECRET: &str = "wx-test-secret";

/// A `javascript:` URL as the picture of `hostile:` users.
pub const HOSTILE_PICTURE: &str = "javascript:alert(document.cookie)";

/// The nickname of `hostile:` users: 3,000 characters (and more bytes), starting with a
/// right-to-left override, with control characters and isolates throughout.
pub fn hostile_nickname() -> String {
    let mut name = String::from("\u{202E}\u{0007}evil\r\n");
    while name.chars().count() < 3000 {
        name.push_str("\u{2066}\u{5FAE}\u{4FE1}\u{0000}\u{200F}x\u{001B}[31m");
    }
    name.chars().take(3000).collect()
}

/// Starts the fake; answers its origin, e.g. `http://127.0.0.1:40123`.
pub async fn start() -> String {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind the WeChat fake");
    let origin = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = service_fn(|req: Request<hyper::body::Incoming>| async move {
                    Ok::<_, Infallible>(answer(req).await)
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    origin
}

fn query(req: &Request<hyper::body::Incoming>) -> HashMap<String, String> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect()
}

fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&raw[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn json_response(status: u16, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("response")
}

async fn answer(req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let q = query(&req);
    match req.uri().path() {
        "/sns/oauth2/access_token" => {
            if q.get("appid").map(String::as_str) != Some(APP_ID)
                || q.get("secret").map(String::as_str) != Some(APP_SECRET)
            {
                return json_response(
                    200,
                    json!({"errcode": 40125, "errmsg": "invalid appsecret"}),
                );
            }
            let code = q.get("code").cloned().unwrap_or_default();
            let (kind, name) = code.split_once(':').unwrap_or((code.as_str(), ""));
            match kind {
                "ok" | "nounion" | "nouserinfo" | "hostile" | "slow" if !name.is_empty() => {
                    if kind == "slow" {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                    }
                    let mut body = json!({
                        "access_token": format!("at-{kind}-{name}"),
                        "expires_in": 7200,
                        "refresh_token": format!("rt-{name}"),
                        "openid": format!("openid-{name}"),
                        "scope": "snsapi_login",
                    });
                    if kind != "nounion" && kind != "nouserinfo" {
                        body["unionid"] = json!(format!("unionid-{name}"));
                    }
                    json_response(200, body)
                }
                "busy" => json_response(200, json!({"errcode": -1, "errmsg": "system error"})),
                "http500" => json_response(500, json!({})),
                _ => json_response(200, json!({"errcode": 40029, "errmsg": "invalid code"})),
            }
        }
        "/sns/userinfo" => {
            let token = q.get("access_token").cloned().unwrap_or_default();
            let Some(rest) = token.strip_prefix("at-") else {
                return json_response(
                    200,
                    json!({"errcode": 40001, "errmsg": "invalid credential"}),
                );
            };
            let (kind, name) = rest.split_once('-').unwrap_or(("", rest));
            if kind == "nouserinfo" {
                return json_response(200, json!({"errcode": -1, "errmsg": "system error"}));
            }
            let mut body = json!({
                "openid": format!("openid-{name}"),
                "nickname": name,
                "headimgurl": format!("https://img.example/{name}.png"),
            });
            if kind == "hostile" {
                body["nickname"] = json!(hostile_nickname());
                body["headimgurl"] = json!(HOSTILE_PICTURE);
            }
            if kind != "nounion" {
                body["unionid"] = json!(format!("unionid-{name}"));
            }
            json_response(200, body)
        }
        _ => json_response(404, json!({"errcode": 404, "errmsg": "not found"})),
    }
}

/// Settings that point a server at a running fake.
pub fn settings(origin: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AUTH_WX_OPEN_APP_ID", APP_ID.to_string()),
        ("AUTH_WX_OPEN_APP_SECRET", APP_SECRET.to_string()),
        ("AUTH_WECHAT_API_BASE", origin.to_string()),
        ("AUTH_WECHAT_TIMEOUT_MS", "1000".to_string()),
    ]
}
