//! The README's front door: its first command, copied out of the README and run from the
//! repository root exactly as written (on a free port), serves the README's curl
//! walk-through (`tests/front_door.py` does both and checks every answer). This fails when
//! that command stops working from the root, for example when the workspace's default
//! members lose the package of `local-api`.

use std::process::Command;

#[test]
fn the_readme_first_command_serves_its_curl_walk_through() {
    let root = env!("CARGO_MANIFEST_DIR");
    let output = Command::new("python3")
        .arg(format!("{root}/tests/front_door.py"))
        .args(["--port", "0"])
        .current_dir(root)
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

#[test]
fn the_readme_names_exactly_two_commands_running_the_api_and_every_test() {
    let root = env!("CARGO_MANIFEST_DIR");
    let command = |n: &str| {
        let output = Command::new("python3")
            .arg(format!("{root}/tests/front_door.py"))
            .args(["command", n])
            .output()
            .expect("python3 runs tests/front_door.py");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    assert!(command("1").starts_with("cargo run --bin local-api"));
    assert!(command("2").starts_with("cargo test --workspace"));
}

/// Every command block a reader is told to type either runs in CI (`<!-- ci: NAME -->` before
/// it, and `.ci/run` runs that block) or says why it cannot (`<!-- not in ci: ... -->`).
#[test]
fn every_command_block_of_the_docs_runs_in_ci_or_says_why_not() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let ci = std::fs::read_to_string(root.join(".ci/run")).expect(".ci/run is readable");
    let mut documents = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).expect("docs/ is readable") {
        let path = entry.expect("a docs/ entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            documents.push(path);
        }
    }
    let mut blocks = 0;
    for path in documents {
        let text = std::fs::read_to_string(&path).expect("a readable document");
        let relative = path.strip_prefix(root).expect("under the root").display();
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
                assert!(
                    ci.contains(&format!("{relative} {name}")),
                    "{relative}:{} is marked `ci: {name}` but .ci/run never runs it",
                    index + 1
                );
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
}
