//! The README's front door. Its first command must find `local-api` from the repository root
//! (this fails when, say, a binary-less package becomes the workspace's only default member),
//! its curl walk-through must get the answers it promises from that binary
//! (`tests/front_door.py`, which CI also runs with the first command itself, as written), and
//! every command block of the README and `docs/` must run in CI or say why it does not.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// The README's Nth command (1 or 2), as `tests/front_door.py` reads it.
fn readme_command(n: &str) -> String {
    let output = Command::new("python3")
        .arg(format!("{ROOT}/tests/front_door.py"))
        .args(["command", n])
        .output()
        .expect("python3 runs tests/front_door.py");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn the_readme_first_command_finds_local_api_from_the_repository_root() {
    let first = readme_command("1");
    let words: Vec<&str> = first
        .split('#')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        words[..],
        ["cargo", "run", "--bin", "local-api"],
        "the README's first command changed: {first}"
    );
    // `cargo run --bin NAME` from the root looks only at the workspace's default members.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(ROOT)
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "{output:?}");
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata is JSON");
    let defaults: BTreeSet<&str> = metadata["workspace_default_members"]
        .as_array()
        .expect("cargo names the default members")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let found: Vec<&str> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter(|package| {
            package["id"]
                .as_str()
                .is_some_and(|id| defaults.contains(id))
        })
        .filter(|package| {
            package["targets"].as_array().is_some_and(|targets| {
                targets.iter().any(|target| {
                    target["name"] == "local-api"
                        && target["kind"]
                            .as_array()
                            .is_some_and(|kinds| kinds.iter().any(|k| k == "bin"))
                })
            })
        })
        .filter_map(|package| package["name"].as_str())
        .collect();
    assert_eq!(
        found,
        ["local-api"],
        "`{first}` from the repository root needs exactly one default member with the \
         local-api binary; default members: {defaults:?}"
    );
}

#[test]
fn the_readme_second_command_runs_every_test_of_the_workspace() {
    assert!(readme_command("2").starts_with("cargo test --workspace"));
}

#[test]
fn the_readme_curl_walk_through_gets_the_answers_it_promises() {
    let output = Command::new("python3")
        .arg(format!("{ROOT}/tests/front_door.py"))
        .args(["--exe", env!("CARGO_BIN_EXE_local-api"), "--port", "0"])
        .current_dir(ROOT)
        .output()
        .expect("python3 runs tests/front_door.py");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{report}");
    assert!(
        report.contains("front door: the walk-through passed"),
        "{report}"
    );
}

/// The blocks `.ci/run` runs: those its `block` and `start_block` calls name, and the two
/// that `tests/front_door.py` runs when called with no arguments.
fn blocks_run_by_ci() -> BTreeSet<(String, String)> {
    let ci = std::fs::read_to_string(format!("{ROOT}/.ci/run")).expect(".ci/run is readable");
    let mut run = BTreeSet::new();
    for line in ci.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
        if line == "python3 tests/front_door.py" {
            run.insert(("README.md".to_string(), "two-commands".to_string()));
            run.insert(("README.md".to_string(), "walk-through".to_string()));
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        for (index, word) in words.iter().enumerate() {
            let call = word.rsplit("$(").next().unwrap_or(word);
            // Calls with a document's name, not the helpers' definitions.
            if (call == "block" || call == "start_block")
                && index + 2 < words.len()
                && words[index + 1].ends_with(".md")
            {
                let name = words[index + 2].trim_end_matches([')', '"']);
                run.insert((words[index + 1].to_string(), name.to_string()));
            }
        }
    }
    run
}

/// Every command block a reader is told to type either runs in CI (`<!-- ci: NAME -->` before
/// it, and `.ci/run` runs that block) or says why it cannot (`<!-- not in ci: ... -->`).
#[test]
fn every_command_block_of_the_docs_runs_in_ci_or_says_why_not() {
    let root = Path::new(ROOT);
    let mut documents = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).expect("docs/ is readable") {
        let path = entry.expect("a docs/ entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            documents.push(path);
        }
    }
    let run = blocks_run_by_ci();
    let mut marked = BTreeSet::new();
    let mut blocks = 0;
    for path in documents {
        let text = std::fs::read_to_string(&path).expect("a readable document");
        let relative = path
            .strip_prefix(root)
            .expect("under the root")
            .display()
            .to_string();
        let lines: Vec<&str> = text.lines().collect();
        for (index, line) in lines.iter().enumerate() {
            if *line != "```sh" {
                continue;
            }
            blocks += 1;
            let marker = index.checked_sub(1).map(|i| lines[i]).unwrap_or("");
            if let Some(name) = marker
                .strip_prefix("<!-- ci: ")
                .and_then(|rest| rest.strip_suffix(" -->"))
            {
                let block = (relative.clone(), name.to_string());
                assert!(
                    run.contains(&block),
                    "{relative}:{} is marked `ci: {name}` but .ci/run never runs it",
                    index + 1
                );
                marked.insert(block);
            } else {
                assert!(
                    marker.starts_with("<!-- not in ci: ") && marker.ends_with(" -->"),
                    "{relative}:{}: a sh block without `<!-- ci: NAME -->` or \
                     `<!-- not in ci: why -->` on the line before it",
                    index + 1
                );
            }
        }
    }
    assert!(blocks >= 10, "only {blocks} sh blocks found");
    let unknown: Vec<_> = run.difference(&marked).collect();
    assert!(
        unknown.is_empty(),
        ".ci/run runs blocks no document marks: {unknown:?}"
    );
}

/// Every `AUTH_*` setting the code reads, as the configuration reads it by name.
fn settings_read_by_the_code() -> BTreeSet<String> {
    let source = std::fs::read_to_string(format!("{ROOT}/shared/src/config.rs"))
        .expect("shared/src/config.rs");
    let mut names = BTreeSet::new();
    for piece in source.split('"').skip(1).step_by(2) {
        if piece.starts_with("AUTH_") && piece.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
        {
            names.insert(piece.to_string());
        }
    }
    names
}

#[test]
fn every_setting_the_code_reads_is_in_the_readme_configuration_table() {
    let readme = std::fs::read_to_string(format!("{ROOT}/README.md")).expect("README.md");
    let names = settings_read_by_the_code();
    assert!(
        names.contains("AUTH_SMS_SENDS_PER_HOUR") && names.len() > 20,
        "the settings were not found in config.rs: {names:?}"
    );
    let table_rows: Vec<&str> = readme.lines().filter(|l| l.starts_with("| `")).collect();
    let missing: Vec<&String> = names
        .iter()
        .filter(|name| {
            !table_rows.iter().any(|row| {
                row.split('|')
                    .nth(1)
                    .is_some_and(|c| c.contains(&format!("`{name}`")))
            })
        })
        .collect();
    assert!(
        missing.is_empty(),
        "README's configuration table lacks {missing:?}"
    );
}
