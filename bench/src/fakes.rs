//! Instant fakes on loopback for what the embedded-store runs must not wait on: WeChat's
//! `sns/oauth2/access_token` and `sns/userinfo`, SES v2 `SendEmail` and SNS `Publish`.
//! One server answers all of them: it is both `AUTH_WECHAT_API_BASE` and `AWS_ENDPOINT_URL`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;

pub const WX_APP_ID: &str = "wx-bench-app";
pub const WX_APP_SECRET: &str = "wx-bench-secret";

/// (recipient, code) of every email sent through the fake SES, in order.
type Sent = Arc<Mutex<Vec<(String, String)>>>;

pub struct Fakes {
    pub origin: String,
    sent: Sent,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Fakes {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Fakes {
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let origin = format!("http://{}", listener.local_addr()?);
        let sent = Sent::default();
        let server_sent = Arc::clone(&sent);
        let server = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let sent = Arc::clone(&server_sent);
                connections.spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let sent = Arc::clone(&sent);
                        async move { Ok::<_, Infallible>(answer(req, &sent).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(Self {
            origin,
            sent,
            server,
        })
    }

    /// The code of the newest email sent to `to` through the fake SES.
    pub fn latest_code(&self, to: &str) -> Result<String, String> {
        self.sent
            .lock()
            .expect("lock")
            .iter()
            .rev()
            .find(|(address, _)| address == to)
            .map(|(_, code)| code.clone())
            .ok_or_else(|| format!("no code was emailed to {to}"))
    }

    /// Settings that point the service's WeChat client at this fake.
    pub fn wechat_settings(&self) -> Vec<(String, String)> {
        vec![
            ("AUTH_WX_OPEN_APP_ID".into(), WX_APP_ID.into()),
            ("AUTH_WX_OPEN_APP_SECRET".into(), WX_APP_SECRET.into()),
            ("AUTH_WECHAT_API_BASE".into(), self.origin.clone()),
        ]
    }
}

fn query_value<'a>(query: &'a str, name: &str) -> &'a str {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .unwrap_or("")
}

fn respond(content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(200)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("response")
}

/// Keeps the recipient and the code of a SES v2 `SendEmail` request.
fn keep_code(body: &[u8], sent: &Mutex<Vec<(String, String)>>) {
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    let text = request["Content"]["Simple"]["Body"]["Text"]["Data"]
        .as_str()
        .unwrap_or("");
    let Some(code) = crate::moto::code_in(text) else {
        return;
    };
    let mut sent = sent.lock().expect("lock");
    for to in request["Destination"]["ToAddresses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|to| to.as_str())
    {
        sent.push((to.to_string(), code.clone()));
    }
}

async fn answer(
    req: Request<Incoming>,
    sent: &Mutex<Vec<(String, String)>>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    match path.as_str() {
        // WeChat: a code `ok%3A<name>` or `ok:<name>` is the user <name>.
        "/sns/oauth2/access_token" => {
            let code = query_value(&query, "code").replace("%3A", ":");
            let name = code.strip_prefix("ok:").unwrap_or("");
            if query_value(&query, "appid") != WX_APP_ID
                || query_value(&query, "secret") != WX_APP_SECRET
                || name.is_empty()
            {
                return respond(
                    "application/json",
                    json!({"errcode": 40029, "errmsg": "invalid code"}).to_string(),
                );
            }
            respond(
                "application/json",
                json!({
                    "access_token": format!("at-{name}"),
                    "expires_in": 7200,
                    "refresh_token": format!("rt-{name}"),
                    "openid": format!("openid-{name}"),
                    "unionid": format!("unionid-{name}"),
                    "scope": "snsapi_login",
                })
                .to_string(),
            )
        }
        "/sns/userinfo" => {
            let token = query_value(&query, "access_token");
            let name = token.strip_prefix("at-").unwrap_or(token);
            respond(
                "application/json",
                json!({
                    "openid": format!("openid-{name}"),
                    "unionid": format!("unionid-{name}"),
                    "nickname": name,
                    "headimgurl": format!("https://img.example/{name}.png"),
                })
                .to_string(),
            )
        }
        // SES v2 SendEmail (REST JSON).
        "/v2/email/outbound-emails" => {
            keep_code(&body, sent);
            respond(
                "application/json",
                json!({"MessageId": "bench-message"}).to_string(),
            )
        }
        // SNS (query protocol): Publish.
        _ if String::from_utf8_lossy(&body).contains("Action=Publish") => respond(
            "text/xml",
            "<PublishResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishResult><MessageId>bench</MessageId></PublishResult><ResponseMetadata><RequestId>bench</RequestId></ResponseMetadata></PublishResponse>".to_string(),
        ),
        _ => Response::builder()
            .status(404)
            .body(Full::new(Bytes::from_static(b"{}")))
            .expect("response"),
    }
}
