//! moto_server on a free loopback port: DynamoDB (the table made like `local-api` makes it),
//! SES (the sender verified) and the codes it recorded as sent.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub const REGION: &str = "us-east-1";

pub struct Moto {
    pub origin: String,
    child: Child,
    http: reqwest::Client,
}

impl Moto {
    /// Starts `tests/support/serial_moto.py` (moto with one request at a time, as the tests
    /// run it) with `python3`, or plain `moto_server` when that script is missing.
    pub async fn start(workspace: &Path, log: &Path) -> Result<Self, String> {
        let port = {
            let socket = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
                .map_err(|e| format!("finding a free port: {e}"))?;
            socket.local_addr().map_err(|e| e.to_string())?.port()
        };
        let script = workspace.join("tests/support/serial_moto.py");
        let port_text = port.to_string();
        let mut command = if script.exists() {
            let mut command = Command::new("python3");
            command.arg(&script);
            command
        } else {
            Command::new("moto_server")
        };
        let log_file =
            std::fs::File::create(log).map_err(|e| format!("creating {}: {e}", log.display()))?;
        command
            .args(["-H", "127.0.0.1", "-p", port_text.as_str()])
            .stdin(Stdio::null())
            .stdout(Stdio::from(
                log_file.try_clone().map_err(|e| format!("moto log: {e}"))?,
            ))
            .stderr(Stdio::from(log_file));
        let mut child = command
            .spawn()
            .map_err(|e| format!("starting moto_server (python3 with moto[server]): {e}"))?;
        let origin = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        // Ready when it answers; at most 60 s.
        for _ in 0..600 {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "moto_server exited ({status}); see {}",
                    log.display()
                ));
            }
            if http.get(format!("{origin}/moto-api/")).send().await.is_ok() {
                return Ok(Self {
                    origin,
                    child,
                    http,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        Err("moto_server did not answer within 60 s".into())
    }

    fn credentials() -> aws_sdk_dynamodb::config::Credentials {
        aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "bench")
    }

    /// Creates the table (with TTL) the way `local-api` does.
    pub async fn create_table(&self, table: &str) -> Result<(), String> {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new(REGION))
            .credentials_provider(Self::credentials())
            .endpoint_url(&self.origin)
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(config);
        shared::adapters::dynamodb::DynamoStore::new(client, table)
            .ensure_table()
            .await
            .map_err(|e| format!("creating the table {table} on moto: {e}"))
    }

    /// moto's SES refuses unverified senders.
    pub async fn verify_sender(&self, sender: &str) -> Result<(), String> {
        let config = aws_sdk_sesv2::Config::builder()
            .behavior_version(aws_sdk_sesv2::config::BehaviorVersion::latest())
            .region(aws_sdk_sesv2::config::Region::new(REGION))
            .credentials_provider(aws_sdk_sesv2::config::Credentials::new(
                "test", "test", None, None, "bench",
            ))
            .endpoint_url(&self.origin)
            .build();
        aws_sdk_sesv2::Client::from_conf(config)
            .create_email_identity()
            .email_identity(sender)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                format!(
                    "verifying {sender} in moto's SES: {}",
                    aws_sdk_sesv2::error::DisplayErrorContext(&e)
                )
            })
    }

    /// Stores `value` as an SSM SecureString named `name`, as a deployment does with the
    /// signing key. moto reads the region from the credential scope and checks no signature.
    pub async fn put_secure_string(&self, name: &str, value: &str) -> Result<(), String> {
        let answer = self
            .http
            .post(&self.origin)
            .header("x-amz-target", "AmazonSSM.PutParameter")
            .header("content-type", "application/x-amz-json-1.1")
            .header(
                "authorization",
                format!("AWS4-HMAC-SHA256 Credential=test/20250101/{REGION}/ssm/aws4_request, SignedHeaders=host, Signature=0"),
            )
            .body(
                serde_json::json!({
                    "Name": name,
                    "Value": value,
                    "Type": "SecureString",
                    "Overwrite": true,
                })
                .to_string(),
            )
            .send()
            .await
            .map_err(|e| format!("putting SSM parameter {name} into moto: {e}"))?;
        if !answer.status().is_success() {
            return Err(format!(
                "moto refused SSM parameter {name}: {}",
                answer.status()
            ));
        }
        Ok(())
    }

    /// The six-digit code of the newest email moto recorded to `to`.
    pub async fn latest_code(&self, to: &str) -> Result<String, String> {
        let data: Value = self
            .http
            .get(format!("{}/moto-api/data.json", self.origin))
            .send()
            .await
            .map_err(|e| format!("reading moto's data.json: {e}"))?
            .json()
            .await
            .map_err(|e| format!("moto's data.json: {e}"))?;
        data["ses"]["Message"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| {
                m["destinations"]["ToAddresses"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|r| r == to)
            })
            .filter_map(|m| code_in(m["body"].as_str().unwrap_or("")))
            .next_back()
            .ok_or_else(|| format!("moto recorded no code to {to}"))
    }

    pub async fn stop(self) {
        // Drop kills and reaps the process.
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first run of exactly six digits.
pub fn code_in(body: &str) -> Option<String> {
    body.split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == 6)
        .map(str::to_string)
}
