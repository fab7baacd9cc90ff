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

/// The counts of the summary `node --test` prints last (`ℹ tests 11`, `ℹ pass 11`, ...).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub tests: u32,
    pub pass: u32,
    pub fail: u32,
    pub cancelled: u32,
    pub skipped: u32,
    pub todo: u32,
}

impl Summary {
    /// Reads the summary from the report; a count it does not print stays `None`.
    pub fn parse(report: &str) -> Option<Summary> {
        let count = |name: &str| -> Option<u32> {
            report.lines().rev().find_map(|line| {
                line.trim()
                    .strip_prefix("ℹ ")?
                    .strip_prefix(name)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse()
                    .ok()
            })
        };
        Some(Summary {
            tests: count("tests")?,
            pass: count("pass")?,
            fail: count("fail")?,
            cancelled: count("cancelled")?,
            skipped: count("skipped")?,
            todo: count("todo")?,
        })
    }
}

/// Runs the suite in `dir` with `env` and prints its report; fails with the report and the
/// server's output unless there were at least `at_least` tests (a suite that quietly ran
/// nothing must not pass) and every one of them passed: none failed, cancelled, skipped or
/// left to do.
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
    let summary = Summary::parse(&report)
        .unwrap_or_else(|| panic!("{what}: no summary of counts in the report:\n{report}"));
    assert!(
        summary.tests >= at_least,
        "{what} ran too few tests ({} of at least {at_least}):\n{report}",
        summary.tests
    );
    assert_eq!(
        summary,
        Summary {
            tests: summary.tests,
            pass: summary.tests,
            ..Summary::default()
        },
        "{what}: not every test passed (none may fail, be cancelled, skipped or todo):\n{report}"
    );
}
