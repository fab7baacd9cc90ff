//! Runs a Node test suite (`node --test`) of `tests/` against a server the Rust test started.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

use crate::server::Server;

/// A suite folder under the workspace's `tests/`, with its npm packages installed.
pub async fn suite(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name);
    let packages = dir.clone();
    tokio::task::spawn_blocking(move || crate::provision::npm_packages(&packages))
        .await
        .expect("installing the npm packages panicked");
    dir
}

/// Runs the suite in `dir` with `env` and prints its report; fails with the report and the
/// server's output unless every test passed and there were at least `at_least` of them (a
/// suite that quietly ran nothing must not pass).
pub async fn run(dir: &Path, env: &[(&str, &str)], at_least: u32, server: &Server, what: &str) {
    let output = Command::new("node")
        .args(["--test", "--test-reporter=spec"])
        .current_dir(dir)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .await
        .expect("node runs");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{report}");
    assert!(
        output.status.success(),
        "{what} failed:\n{report}\n--- server output ---\n{}",
        server.output()
    );
    let passed: u32 = report
        .lines()
        .find_map(|line| line.trim().strip_prefix("ℹ pass "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        passed >= at_least,
        "{what} ran too few tests ({passed}):\n{report}"
    );
}
