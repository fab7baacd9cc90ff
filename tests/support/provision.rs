//! What the suites need beyond Rust, provisioned by the tests themselves, once per checkout:
//! moto in a virtual environment of its own under `target/test-tools/`, pinned by
//! `tests/support/moto-requirements.txt`, and a Node suite's npm packages from its lock file.
//! A newcomer's `cargo test --workspace` needs only Rust, Python 3, Node.js and, for the
//! console's browser tests, Chromium on `PATH` (which needs root to install, so it is found
//! here, not installed).
//!
//! Test processes may run side by side (`cargo nextest`), so each installation happens under
//! a file lock, and a stamp written last says it finished. When provisioning cannot work, the
//! process stops with one sentence naming what is missing and the command that fixes it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

const WORKSPACE: &str = env!("CARGO_MANIFEST_DIR");
const MOTO_REQUIREMENTS: &str = include_str!("moto-requirements.txt");

/// `target/test-tools/` of the build running the tests (found from the test binary, so a
/// `CARGO_TARGET_DIR` elsewhere is honoured).
pub fn tools_dir() -> PathBuf {
    let target = std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .find(|dir| dir.join("CACHEDIR.TAG").is_file())
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| Path::new(WORKSPACE).join("target"));
    target.join("test-tools")
}

/// The Python of the virtual environment that holds the pinned moto, installing it first
/// when needed.
pub fn moto_python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(install_moto).clone()
}

fn install_moto() -> PathBuf {
    let venv = tools_dir().join("moto-venv");
    let python = venv.join("bin/python");
    let stamp = venv.join("installed-requirements.txt");
    let installed = || std::fs::read_to_string(&stamp).is_ok_and(|s| s == MOTO_REQUIREMENTS);
    if installed() {
        return python;
    }
    let _lock = lock(&tools_dir().join("moto-venv.lock"));
    if installed() {
        return python;
    }
    let version = MOTO_REQUIREMENTS
        .lines()
        .find_map(|line| line.strip_prefix("moto=="))
        .unwrap_or("pinned");
    if which("python3").is_none() {
        fail(
            "The DynamoDB, SES and SNS tests need python3 on PATH to install moto: install \
             Python 3 (Debian: `apt install python3 python3-venv`), or start a moto_server and \
             set AWS_ENDPOINT_URL to it.",
        );
    }
    say(&format!(
        "test support: installing moto {version} into {} (once; about 30 s)",
        venv.display()
    ));
    let log = tools_dir().join("moto-venv.log");
    let fix = format!(
        "python3 -m venv {venv} && {venv}/bin/pip install -r {WORKSPACE}/tests/support/moto-requirements.txt",
        venv = venv.display()
    );
    let _ = std::fs::remove_dir_all(&venv);
    if !run_logged(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        &log,
    ) {
        fail(&format!(
            "python3 could not create a virtual environment for moto (see {}): install the \
             venv module (Debian: `apt install python3-venv`), then run `cargo test` again.",
            log.display()
        ));
    }
    let requirements = tools_dir().join("moto-requirements.txt");
    write_file(&requirements, MOTO_REQUIREMENTS);
    if !run_logged(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "-r",
            ])
            .arg(&requirements),
        &log,
    ) {
        fail(&format!(
            "pip could not install moto from the package index (see {}): when you are online \
             again run `{fix}`, or start a moto_server and set AWS_ENDPOINT_URL to it.",
            log.display()
        ));
    }
    write_file(&stamp, MOTO_REQUIREMENTS);
    python
}

/// Installs the npm packages of the Node project in `dir` with `npm ci` unless its
/// `node_modules` already holds exactly what `package-lock.json` names.
pub fn npm_packages(dir: &Path) {
    let dir = &dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let lock_file = dir.join("package-lock.json");
    let wanted = std::fs::read_to_string(&lock_file)
        .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", lock_file.display())));
    // npm ci leaves the lock file's contents as node_modules/.package-lock.json's packages;
    // comparing a stamp of our own is simpler and survives npm versions.
    let stamp = dir.join("node_modules/.installed-package-lock.json");
    let installed = || std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted);
    if installed() {
        return;
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let _lock = lock(&tools_dir().join(format!("npm-{name}.lock")));
    if installed() {
        return;
    }
    if which("npm").is_none() || which("node").is_none() {
        fail(
            "The browser and SDK tests need Node.js and npm on PATH: install Node.js 20 or \
             later (Debian: `apt install nodejs npm`), then run `cargo test` again.",
        );
    }
    say(&format!(
        "test support: installing the npm packages of {} (npm ci, once)",
        dir.display()
    ));
    let log = tools_dir().join(format!("npm-{name}.log"));
    if !run_logged(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(dir),
        &log,
    ) {
        fail(&format!(
            "npm could not install the packages of {dir} (see {log}): when the npm registry \
             is reachable run `cd {dir} && npm ci`, then `cargo test` again.",
            dir = dir.display(),
            log = log.display()
        ));
    }
    write_file(&stamp, &wanted);
}

/// Where `program` is on `PATH`, if anywhere.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            use std::os::unix::fs::PermissionsExt;
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Runs a command with its output appended to `log`; true when it succeeded.
fn run_logged(command: &mut Command, log: &Path) -> bool {
    let output = OpenOptions::new().create(true).append(true).open(log);
    let Ok(output) = output else {
        fail(&format!("cannot write {}", log.display()));
    };
    let errors = output
        .try_clone()
        .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", log.display())));
    command
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(errors)
        .status()
        .is_ok_and(|status| status.success())
}

/// Holds an exclusive lock on `path` until dropped.
fn lock(path: &Path) -> File {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", dir.display())));
    }
    let file = File::create(path)
        .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", path.display())));
    file.lock()
        .unwrap_or_else(|e| fail(&format!("cannot lock {}: {e}", path.display())));
    file
}

fn write_file(path: &Path, contents: &str) {
    std::fs::write(path, contents)
        .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", path.display())));
}

/// One line to the terminal, past the test harness's output capture.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Servers this process started and has not stopped yet: `fail` stops them, since exiting
/// skips the drops that would.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

pub fn started_child(pid: u32) {
    CHILDREN.lock().unwrap_or_else(|p| p.into_inner()).push(pid);
}

pub fn stopped_child(pid: u32) {
    CHILDREN
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|&child| child != pid);
}

/// Stops the whole test process with one sentence: every test after this one would fail for
/// the same reason, and a page of identical panics hides it.
fn fail(sentence: &str) -> ! {
    say(&format!("\n{sentence}\n"));
    let children = CHILDREN.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for pid in children {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    std::process::exit(1);
}

/// Debian's Chromium (or `CHROMIUM_PATH`), which the console's browser tests drive.
pub fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM_PATH") {
        return PathBuf::from(path);
    }
    which("chromium")
        .or_else(|| which("chromium-browser"))
        .unwrap_or_else(|| {
            fail(
                "The console's browser tests need Chromium: install it (Debian: `apt install \
                 chromium`) or set CHROMIUM_PATH to a Chromium or Chrome binary.",
            )
        })
}
