//! A DynamoDB for tests: `AWS_ENDPOINT_URL` when it is set, else one `moto_server` per test
//! process on 127.0.0.1 and a free port, stopped when the process exits. That moto is the
//! pinned one the tests install themselves (`provision.rs`), whatever else is on `PATH`.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::Client;
use shared::adapters::dynamodb::DynamoStore;

/// The region and static credentials every test client uses.
pub const REGION: &str = "us-east-1";
pub const ACCESS_KEY_ID: &str = "test";
pub const SECRET_ACCESS_KEY: &str = "test";

static ENDPOINT: OnceLock<String> = OnceLock::new();

/// The DynamoDB endpoint: `AWS_ENDPOINT_URL` if set, else this process's `moto_server`,
/// started on first use. Blocks while moto starts.
pub fn endpoint() -> String {
    ENDPOINT
        .get_or_init(|| match std::env::var("AWS_ENDPOINT_URL") {
            Ok(url) if !url.trim().is_empty() => url.trim().to_string(),
            _ => start_moto(),
        })
        .clone()
}

/// moto's server with every request handled under one lock (see the script for why).
const SERIALISED_MOTO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/serial_moto.py");

/// Starts the pinned moto (`provision::moto_python`, installed on first use), serialised (see
/// `SERIALISED_MOTO`), on a free port of 127.0.0.1 under a small shell watchdog that stops it
/// once this process is gone (test binaries have no exit hook).
fn start_moto() -> String {
    let python = crate::provision::moto_python();
    let port = free_port();
    let parent = std::process::id();
    // One log per test binary, overwritten by its next run.
    let suite = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|stem| {
            stem.rsplit_once('-')
                .map_or(stem.clone(), |(name, _)| name.to_string())
        })
        .unwrap_or_default();
    let log = crate::provision::tools_dir().join(format!("moto-{suite}.log"));
    let script = r#"
        "$4" "$3" -H 127.0.0.1 -p "$1" >"$5" 2>&1 &
        moto=$!
        trap 'kill "$moto" 2>/dev/null' EXIT INT TERM
        while kill -0 "$2" 2>/dev/null && kill -0 "$moto" 2>/dev/null; do sleep 1; done
    "#;
    let mut watchdog = Command::new("sh")
        .args([
            "-c",
            script,
            "moto-watchdog",
            &port.to_string(),
            &parent.to_string(),
            SERIALISED_MOTO,
        ])
        .arg(&python)
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot run sh to start moto_server");
    // Reaps the watchdog should moto stop early.
    std::thread::spawn(move || watchdog.wait());
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto_server did not start on {address} within 60 s; its output is in {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    format!("http://{address}")
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("no free port on 127.0.0.1")
}

/// The SDK configuration for the test endpoint: static test credentials and `us-east-1`,
/// without reading or touching the process environment.
pub fn dynamodb_config(endpoint: &str) -> aws_sdk_dynamodb::Config {
    aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            None,
            None,
            "test-support",
        ))
        .endpoint_url(endpoint)
        .build()
}

/// A client of the test DynamoDB, starting moto if needed.
pub async fn dynamodb_client() -> Client {
    let endpoint = tokio::task::spawn_blocking(endpoint)
        .await
        .expect("starting moto_server panicked");
    Client::from_conf(dynamodb_config(&endpoint))
}

/// A table name no other test (or test process) uses: `prefix`, then the process id, a
/// counter and the clock, restricted to the characters DynamoDB allows.
pub fn unique_table_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let clean: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(180)
        .collect();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{clean}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A `DynamoStore` on a fresh table of its own.
pub async fn fresh_store(prefix: &str) -> DynamoStore {
    let store = DynamoStore::new(dynamodb_client().await, unique_table_name(prefix));
    store
        .ensure_table()
        .await
        .unwrap_or_else(|err| panic!("cannot create table {}: {err}", store.table()));
    store
}
