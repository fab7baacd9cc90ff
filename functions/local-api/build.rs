//! Bundles the browser build of the unmodified `@cloudbase/js-sdk` for the console's Try-it
//! page: `npm ci` from `console/package-lock.json` into `target/console-npm/` (once per lock
//! file, shared by every profile), then esbuild, into `OUT_DIR/cloudbase-sdk.js`. The SDK's
//! ESM build imports sibling packages, so a browser cannot load it unbundled.
//!
//! Without Node.js, or without the npm registry, the API still builds and runs: the bundle
//! is then a module that names what went wrong, which the Try-it page shows, Cargo prints it
//! as a warning, and the next build tries again.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const INPUTS: [&str; 3] = ["package.json", "package-lock.json", "sdk-entry.js"];

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by Cargo"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by Cargo"));
    for input in INPUTS {
        println!("cargo:rerun-if-changed=console/{input}");
    }
    let bundle = out.join("cloudbase-sdk.js");
    if let Err(why) = build_bundle(&manifest.join("console"), &out, &bundle) {
        println!("cargo:warning=the console's Try-it page will not work: {why}");
        // A path that never exists: Cargo then runs this again on every build, until the
        // bundle is made.
        println!(
            "cargo:rerun-if-changed={}",
            out.join("retry-until-bundled").display()
        );
        let message = format!("The SDK bundle was not built with local-api: {why}. Install Node.js 20 or later with npm, then run `cargo run --bin local-api` again.");
        let module = format!(
            "export default null;\nexport const unavailable = {};\n",
            json_string(&message)
        );
        std::fs::write(&bundle, module).expect("OUT_DIR is writable");
    }
}

fn build_bundle(console: &Path, out: &Path, bundle: &Path) -> Result<(), String> {
    let npm_dir = target_dir(out).join("console-npm");
    std::fs::create_dir_all(&npm_dir).map_err(|e| format!("cannot create {npm_dir:?}: {e}"))?;
    let lock = File::create(npm_dir.join(".lock")).map_err(|e| e.to_string())?;
    // Debug and release builds may run this at once; npm ci empties node_modules first.
    lock.lock().map_err(|e| e.to_string())?;
    let wanted: String = INPUTS[..2]
        .iter()
        .map(|name| std::fs::read_to_string(console.join(name)).unwrap_or_default())
        .collect();
    let stamp = npm_dir.join("node_modules/.installed-from");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        for name in &INPUTS[..2] {
            std::fs::copy(console.join(name), npm_dir.join(name))
                .map_err(|e| format!("cannot copy console/{name}: {e}"))?;
        }
        run(
            Command::new("npm")
                // No install scripts: esbuild's own shim finds its binary without them.
                .args([
                    "ci",
                    "--ignore-scripts",
                    "--no-audit",
                    "--no-fund",
                    "--loglevel=error",
                ])
                .current_dir(&npm_dir),
            "npm ci",
        )?;
        std::fs::write(&stamp, &wanted).map_err(|e| e.to_string())?;
    }
    // esbuild resolves the entry's imports from node_modules beside it.
    let entry = npm_dir.join("sdk-entry.js");
    std::fs::copy(console.join("sdk-entry.js"), &entry)
        .map_err(|e| format!("cannot copy console/sdk-entry.js: {e}"))?;
    run(
        Command::new(npm_dir.join("node_modules/.bin/esbuild"))
            .arg(&entry)
            .args([
                "--bundle",
                "--format=esm",
                "--platform=browser",
                "--target=es2020",
                "--minify",
                "--legal-comments=none",
                "--log-level=error",
            ])
            .arg(format!("--outfile={}", bundle.display())),
        "esbuild",
    )
}

/// `target/` (or `CARGO_TARGET_DIR`): the first ancestor of `OUT_DIR` Cargo tagged as a cache.
fn target_dir(out: &Path) -> PathBuf {
    out.ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .unwrap_or(out)
        .to_path_buf()
}

fn run(command: &mut Command, what: &str) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what} could not run ({e})"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    Err(format!(
        "{what} failed ({}): {}",
        output.status,
        last.trim()
    ))
}

fn json_string(text: &str) -> String {
    let mut quoted = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if (c as u32) < 0x20 => quoted.push_str(&format!("\\u{:04x}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}
