//! The benchmark command (see BENCHMARKS.md):
//!
//! ```sh
//! cargo run --release -p bench -- --markdown target/bench-results.md
//! ```
//!
//! It first runs `cargo build -p functions -p local-api -p bench --bins` with the profile and target
//! directory it was itself built with (`--no-build` skips that and then requires the
//! binaries), then measures, in one run: cold start of every function binary and of a bare
//! `lambda_http` hello world (the floor) through a Runtime API emulator on loopback; warm
//! latency per operation in process and through the emulator on the embedded store, and
//! through the emulator on DynamoDB (moto_server) with every DynamoDB request counted by a
//! proxy; peak RSS and stripped size per function; `local-api` throughput. It prints the
//! results and the targets, met or not.

//!
//! Where to look: `args.rs` (the knobs), `stages.rs`, `dynamo_stage.rs` and `cold_stage.rs`
//! (what each stage runs), `results.rs` (what is kept), `verdicts.rs` (how each target is
//! judged), `tables.rs` (the report); the measuring machinery is in the other modules.

mod args;
mod cold;
mod cold_stage;
mod dynamo_stage;
mod emulator;
mod fakes;
mod flow;
mod keys;
mod load;
mod machine;
mod moto;
mod process;
mod proxy;
mod report;
mod results;
mod solo;
mod stages;
mod tables;
mod verdicts;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::args::{parse_args, Args};
use crate::fakes::Fakes;
use crate::results::Results;
use crate::tables::{render, render_markdown};

const FLOOR: &str = "hello";
/// The second floor of the cold request: one SSM read at init, one GetItem per request.
const SSM_FLOOR: &str = "ssm-getitem";
/// The SSM SecureStrings of the cold-request runs, as a deployment names them.
const JWT_PARAMETER: &str = "/bench/jwt-private-key";
const SECRET_HASH_PARAMETER: &str = "/bench/secret-hash-key";
const WX_SECRET_PARAMETER: &str = "/bench/wx-open-app-secret";
/// Labels of the cold-request rows the targets compare with.
const NO_IO: &str = "user-me, no token (no I/O), key in the environment";
const PEER: &str = "user-me, Node.js peer (AWS SDK v3 + jose)";
const TABLE: &str = "bench-association";
const SENDER: &str = "no-reply@example.com";
/// The issuer the functions derive from the emulator's events (their API Gateway domain).
const ISSUER: &str = "https://bench.execute-api.us-east-1.amazonaws.com/auth/v1";
const AUDIENCE: &str = "cloudbase-association";
/// Keys the hashes of stored secrets, as `AUTH_SECRET_HASH_KEY_PARAMETER` does on Lambda.
const SECRET_HASH_KEY: &str = "bench secret hash key, at least thirty-two characters";

const NO_IO_RATIO: f64 = 1.5;
const SSM_FLOOR_RATIO: f64 = 1.25;
/// A function's cold request and peak RSS against the Node.js peer's: at most a third.
const PEER_SHARE: f64 = 1.0 / 3.0;
const MAX_SEQUENTIAL: usize = 2;
const MAX_RSS_MIB: f64 = 32.0;
const MAX_BINARY_MIB: f64 = 8.0;
const MAX_OVERHEAD: Duration = Duration::from_millis(1);

/// What every stage of one run shares.
#[derive(Clone, Copy)]
struct Run<'a> {
    args: &'a Args,
    workspace: &'a Path,
    /// Logs of the functions and moto_server, removed after a successful run.
    work: &'a Path,
    bin_dir: &'a Path,
    functions: &'a [&'static str],
    /// The environment every function process starts with.
    lambda_env: &'a [(String, String)],
    fakes: &'a Fakes,
    /// The signing key (PKCS#8 PEM, P-256) of the run.
    pem: &'a str,
    /// Makes this run's names (users, addresses) unique.
    tag: &'a str,
}

impl Run<'_> {
    fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }
}

#[tokio::main]
async fn main() {
    let outcome = match parse_args() {
        Ok(args) => run(args).await,
        Err(err) => Err(err),
    };
    if let Err(err) = outcome {
        eprintln!("bench: {err}");
        std::process::exit(1);
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ is inside the workspace")
        .to_path_buf()
}

/// Builds the function binaries and the floor with the profile and target directory this
/// binary was built with.
fn build(workspace: &Path, bin_dir: &Path) -> Result<Duration, String> {
    let profile = bin_dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("cannot tell the profile from the binary's directory")?;
    let target_dir = bin_dir.parent().ok_or("cannot tell the target directory")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command
        .current_dir(workspace)
        .args([
            "build",
            "-p",
            "functions",
            "-p",
            "local-api",
            "-p",
            "bench",
            "--bins",
        ])
        .arg("--target-dir")
        .arg(target_dir);
    match profile {
        "release" => command.arg("--release"),
        "debug" => {
            return Err("the benchmark measures release builds: run it with --release".into())
        }
        other => command.args(["--profile", other]),
    };
    eprintln!("bench: {command:?}");
    let started = Instant::now();
    let status = command
        .status()
        .map_err(|e| format!("running cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build failed ({status})"));
    }
    Ok(started.elapsed())
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

async fn run(args: Args) -> Result<(), String> {
    let workspace = workspace_root();
    let exe = std::env::current_exe().map_err(|e| format!("locating this binary: {e}"))?;
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => exe.parent().ok_or("no binary directory")?.to_path_buf(),
    };
    let mut results = Results::default();
    if args.build {
        results.build = Some(build(&workspace, &bin_dir)?);
    }
    let mut functions: Vec<&'static str> = shared::http::routes::functions();
    if let Some(only) = &args.only {
        if let Some(unknown) = only.iter().find(|f| !functions.contains(&f.as_str())) {
            return Err(format!("{unknown} is not a function of the route table"));
        }
        functions.retain(|f| only.iter().any(|o| o == f));
    }
    let bin = |name: &str| bin_dir.join(name);
    let local_api = args.load.then_some("local-api");
    for name in functions
        .iter()
        .copied()
        .chain([FLOOR, SSM_FLOOR])
        .chain(local_api)
    {
        if !bin(name).exists() {
            return Err(format!(
                "{} is missing: build first with `cargo build --release -p functions -p local-api -p bench --bins` (or run without --no-build)",
                bin(name).display()
            ));
        }
    }
    let machine = machine::Machine::describe(&workspace);
    let profile = machine::release_profile(&workspace);
    let work = std::env::temp_dir().join(format!("bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| format!("creating {}: {e}", work.display()))?;
    eprintln!(
        "bench: function and moto logs in {} (removed after a successful run)",
        work.display()
    );
    let tag = hex::encode(shared::domain::random_bytes::<3>());

    for name in [FLOOR, SSM_FLOOR]
        .into_iter()
        .chain(functions.iter().copied())
        .chain(local_api)
    {
        let path = bin(name);
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        results
            .sizes
            .push((name.to_string(), size, machine::has_symbols(&path)));
    }

    let fakes = Fakes::start()
        .await
        .map_err(|e| format!("starting the fakes: {e}"))?;
    let pem = keys::p256_pem();
    let mut lambda_env = pairs(&[
        ("AUTH_TABLE_NAME", TABLE),
        ("AUTH_EMAIL_FROM", SENDER),
        ("AUTH_JWT_PRIVATE_KEY", &pem),
        ("AUTH_SECRET_HASH_KEY", SECRET_HASH_KEY),
        ("AWS_ENDPOINT_URL", &fakes.origin),
    ]);
    lambda_env.extend(fakes.wechat_settings());
    lambda_env.extend(args.function_env.iter().cloned());
    let run = Run {
        args: &args,
        workspace: &workspace,
        work: &work,
        bin_dir: &bin_dir,
        functions: &functions,
        lambda_env: &lambda_env,
        fakes: &fakes,
        pem: &pem,
        tag: &tag,
    };

    stages::cold_starts(&run, &mut results).await?;
    stages::init_logging_to_nowhere();
    if args.warm {
        stages::in_process(&run, &mut results).await?;
        stages::through_emulator(&run, &mut results).await?;
    }
    // The DynamoDB flow needs every function.
    if args.dynamodb && args.warm && args.only.is_none() {
        results.dynamo = Some(dynamo_stage::dynamo_run(&run).await?);
    }
    if args.cold && args.dynamodb {
        results.cold_requests = Some(cold_stage::cold_run(&run).await?);
    }
    if args.load {
        stages::local_api_load(&run, &mut results).await?;
    }

    let document = render(&args, &results, &machine, &profile, &functions);
    println!("{document}");
    if let Some(path) = &args.markdown {
        let markdown = render_markdown(&args, &results, &machine, &profile, &functions);
        std::fs::write(path, markdown).map_err(|e| format!("writing {}: {e}", path.display()))?;
        eprintln!("bench: Markdown written to {}", path.display());
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
