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

mod cold;
mod emulator;
mod fakes;
mod flow;
mod load;
mod machine;
mod moto;
mod process;
mod proxy;
mod report;
mod solo;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use shared::config::{Runtime, Settings};
use shared::domain::{Password, SessionId, UserId};

use crate::fakes::Fakes;
use crate::flow::{Backend, Flow, StepStats};
use crate::process::FunctionProcess;
use crate::proxy::Proxy;
use crate::report::{median, mib, ms, ms2, ms_minus, percentile, Table};

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

struct Args {
    build: bool,
    starts: usize,
    iterations: usize,
    dynamo_iterations: usize,
    dynamo_delay_ms: u64,
    solo_requests: usize,
    hashing_requests: usize,
    load_secs: u64,
    connections: usize,
    markdown: Option<PathBuf>,
    dynamodb: bool,
    load: bool,
    warm: bool,
    bin_dir: Option<PathBuf>,
    only: Option<Vec<String>>,
    function_env: Vec<(String, String)>,
    cold_requests: usize,
    cold_flows: usize,
    cold: bool,
}

const USAGE: &str =
    "usage: bench [--no-build] [--starts N] [--iterations N] [--dynamo-iterations N] [--dynamodb-delay-ms D]
             [--solo-requests N] [--hashing-requests N] [--load-secs S] [--connections C]
             [--cold-requests N] [--cold-flows N]
             [--skip-dynamodb] [--skip-load] [--skip-warm] [--skip-cold] [--markdown PATH]
             [--bin-dir DIR] [--functions a,b,...] [--function-env NAME=VALUE]...

  --no-build            do not run `cargo build -p functions -p local-api -p bench --bins` first
                        (the binaries must then exist next to this one)
  --starts N            cold starts per binary (default 40)
  --iterations N        in-process flow iterations, embedded store (default 100)
  --dynamo-iterations N flow iterations through the functions on moto_server (default 30)
  --dynamodb-delay-ms D the proxy holds each DynamoDB request D ms, a stand-in for the
                        network round trip, so concurrent requests always overlap (default 2)
  --solo-requests N     requests per function through the emulator, embedded store (default 300)
  --hashing-requests N  the same for requests that hash a password (default 30)
  --load-secs S         local-api load duration per request kind (default 5)
  --connections C       local-api load connections (default 16)
  --cold-requests N     cold requests per function, floor and Node.js peer (default 20)
  --cold-flows N        seed flows with every function cold, and the same warm (default 10)
  --skip-dynamodb       no moto_server run (its targets are then not measured)
  --skip-load           no local-api load
  --skip-warm           no warm latency at all (in process, embedded, DynamoDB)
  --skip-cold           no cold requests (they need moto_server; the Node.js peer needs npm)
  --bin-dir DIR         measure the binaries in DIR (implies --no-build; to compare profiles)
  --functions a,b,...   only these function binaries (the floor always runs)
  --function-env N=V    one more variable for every function process (experiments, e.g.
                        MALLOC_ARENA_MAX=1); repeatable
  --markdown PATH       also write the results as Markdown to PATH";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        build: true,
        starts: 40,
        iterations: 100,
        dynamo_iterations: 30,
        dynamo_delay_ms: 2,
        solo_requests: 300,
        hashing_requests: 30,
        load_secs: 5,
        connections: 16,
        markdown: None,
        dynamodb: true,
        load: true,
        warm: true,
        bin_dir: None,
        only: None,
        function_env: Vec::new(),
        cold_requests: 20,
        cold_flows: 10,
        cold: true,
    };
    let mut raw = std::env::args().skip(1);
    while let Some(arg) = raw.next() {
        let mut number = |name: &str| -> Result<usize, String> {
            raw.next()
                .and_then(|v| v.parse().ok())
                .filter(|&v: &usize| v > 0)
                .ok_or_else(|| format!("{name} needs a positive whole number\n{USAGE}"))
        };
        match arg.as_str() {
            "--no-build" => args.build = false,
            "--starts" => args.starts = number("--starts")?,
            "--iterations" => args.iterations = number("--iterations")?,
            "--dynamo-iterations" => args.dynamo_iterations = number("--dynamo-iterations")?,
            "--dynamodb-delay-ms" => {
                args.dynamo_delay_ms = number("--dynamodb-delay-ms")?.min(1000) as u64
            }
            "--solo-requests" => args.solo_requests = number("--solo-requests")?,
            "--hashing-requests" => args.hashing_requests = number("--hashing-requests")?,
            "--load-secs" => args.load_secs = number("--load-secs")?.min(60) as u64,
            "--connections" => args.connections = number("--connections")?.min(256),
            "--skip-dynamodb" => args.dynamodb = false,
            "--skip-load" => args.load = false,
            "--skip-warm" => args.warm = false,
            "--skip-cold" => args.cold = false,
            "--cold-requests" => args.cold_requests = number("--cold-requests")?,
            "--cold-flows" => args.cold_flows = number("--cold-flows")?,
            "--bin-dir" => {
                args.build = false;
                args.bin_dir = Some(
                    raw.next()
                        .ok_or_else(|| format!("--bin-dir needs a directory\n{USAGE}"))?
                        .into(),
                );
            }
            "--function-env" => {
                let pair = raw
                    .next()
                    .and_then(|v| {
                        v.split_once('=')
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                    })
                    .ok_or_else(|| format!("--function-env needs NAME=VALUE\n{USAGE}"))?;
                args.function_env.push(pair);
            }
            "--functions" => {
                args.only = Some(
                    raw.next()
                        .ok_or_else(|| format!("--functions needs a list\n{USAGE}"))?
                        .split(',')
                        .map(str::to_string)
                        .collect(),
                );
            }
            "--markdown" => {
                args.markdown = Some(
                    raw.next()
                        .ok_or_else(|| format!("--markdown needs a path\n{USAGE}"))?
                        .into(),
                )
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(args)
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

fn pem(document: &[u8]) -> String {
    use base64::Engine;
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(document)
    )
}

fn ed25519_pem() -> String {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    pem(aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&rng)
        .expect("Ed25519 key generation")
        .as_ref())
}

/// A P-256 key: what deployments sign with (ES256).
fn p256_pem() -> String {
    use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let rng = aws_lc_rs::rand::SystemRandom::new();
    pem(
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("P-256 key generation")
            .as_ref(),
    )
}

/// Signing and verifying access tokens in process, per key kind: (kind, sign, verify).
type TokenCosts = Vec<(&'static str, Vec<Duration>, Vec<Duration>)>;

fn token_costs(samples: usize) -> Result<TokenCosts, String> {
    let mut costs = Vec::new();
    for (kind, pem) in [
        ("ES256 (P-256)", p256_pem()),
        ("EdDSA (Ed25519)", ed25519_pem()),
    ] {
        let tokens = shared::crypto::AccessTokens::from_pems(&pem, "", AUDIENCE)
            .map_err(|e| e.to_string())?;
        let (user, session) = (UserId::generate(), SessionId::generate());
        let (mut sign, mut verify) = (Vec::new(), Vec::new());
        for _ in 0..samples {
            let started = Instant::now();
            let token = tokens
                .issue(
                    ISSUER,
                    &user,
                    &session,
                    shared::crypto::Scope::User,
                    unix_now(),
                    7200,
                )
                .map_err(|e| e.to_string())?;
            sign.push(started.elapsed());
            let started = Instant::now();
            tokens
                .verify(&token, ISSUER, unix_now())
                .map_err(|e| e.to_string())?;
            verify.push(started.elapsed());
        }
        costs.push((kind, sign, verify));
    }
    Ok(costs)
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

/// Everything measured, for the report and the targets.
#[derive(Default)]
struct Results {
    build: Option<Duration>,
    sizes: Vec<(String, u64, Option<bool>)>,
    cold: BTreeMap<String, Vec<Duration>>,
    in_process: Vec<StepStats>,
    argon2_verify: Vec<Duration>,
    token_costs: TokenCosts,
    solo: Vec<SoloResult>,
    floor_warm: Vec<Duration>,
    rss_embedded: HashMap<String, u64>,
    first_embedded: HashMap<String, Duration>,
    dynamo: Option<DynamoResults>,
    load: Vec<(String, load::LoadResult)>,
    local_api_rss: Option<u64>,
    cold_requests: Option<ColdResults>,
}

struct ColdResults {
    cases: Vec<cold::CaseResult>,
    flow: Vec<cold::FlowStep>,
    rounds: usize,
    flows: usize,
    delay_ms: u64,
    /// Why the Node.js peer is missing from the run, when it is.
    peer_missing: Option<String>,
}

struct SoloResult {
    function: &'static str,
    request: &'static str,
    hashing: bool,
    statuses: BTreeMap<u16, usize>,
    samples: Vec<Duration>,
}

struct DynamoResults {
    steps: Vec<StepStats>,
    first_calls: Vec<(&'static str, Duration)>,
    rss: HashMap<String, u64>,
    iterations: usize,
    delay_ms: u64,
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
    let pem = p256_pem();
    let mut lambda_env = pairs(&[
        ("AUTH_TABLE_NAME", TABLE),
        ("AUTH_EMAIL_FROM", SENDER),
        ("AUTH_JWT_PRIVATE_KEY", &pem),
        ("AUTH_SECRET_HASH_KEY", SECRET_HASH_KEY),
        ("AWS_ENDPOINT_URL", &fakes.origin),
    ]);
    lambda_env.extend(fakes.wechat_settings());
    lambda_env.extend(args.function_env.iter().cloned());

    // 1. Cold starts, interleaved: round r starts every binary once, in an order rotated by r,
    //    so that drift in machine load spreads evenly. Round 0 warms the page cache, unrecorded.
    let names: Vec<&str> = [FLOOR]
        .into_iter()
        .chain(functions.iter().copied())
        .collect();
    eprintln!(
        "bench: cold starts ({} binaries x {})",
        names.len(),
        args.starts
    );
    for round in 0..=args.starts {
        for k in 0..names.len() {
            let name = names[(k + round) % names.len()];
            let process = FunctionProcess::start(&bin(name), name, &lambda_env, None).await?;
            let cold = process.cold_start;
            process.stop().await;
            if round > 0 {
                results.cold.entry(name.to_string()).or_default().push(cold);
            }
        }
    }

    // 2. In process, embedded store: the whole flow through `shared::http::handle`.
    init_logging_to_nowhere();
    if args.warm {
        eprintln!("bench: in-process flow x {}", args.iterations);
        let mut vars: HashMap<String, String> = pairs(&[
            ("AUTH_JWT_PRIVATE_KEY", &pem),
            ("AUTH_CODE_RESEND_INTERVAL_SECS", "0"),
        ])
        .into_iter()
        .collect();
        vars.extend(fakes.wechat_settings());
        let settings = Settings::from_vars(Runtime::Local, &vars).map_err(|e| e.to_string())?;
        let mut app = shared::bootstrap::build(settings)
            .await
            .map_err(|e| e.to_string())?;
        let captured = std::sync::Arc::new(flow::Captured::default());
        app.delivery = captured.clone();
        let mut flow = Flow::in_process(&app, captured, &format!("{tag}p"));
        const WARM_UP: usize = 3;
        for i in 0..WARM_UP + args.iterations {
            flow.iteration(i, i >= WARM_UP).await?;
        }
        results.in_process = flow.steps;
        let password = || Password::parse(flow::PASSWORD).expect("a valid password");
        let hash = app
            .passwords
            .hash(password())
            .await
            .map_err(|e| e.to_string())?;
        for _ in 0..args.hashing_requests {
            let started = Instant::now();
            app.passwords
                .verify(password(), Some(&hash))
                .await
                .map_err(|e| e.to_string())?;
            results.argon2_verify.push(started.elapsed());
        }
        results.token_costs = token_costs(args.hashing_requests * 10)?;
    }

    // 3. Through the emulator, embedded store: the floor, then one request kind per function.
    if args.warm {
        let mut memory_env = lambda_env.clone();
        memory_env.push(("AUTH_STORE".into(), "memory".into()));
        let context = solo::SoloContext {
            minted_access_token: shared::crypto::AccessTokens::from_pems(&pem, "", AUDIENCE)
                .map_err(|e| e.to_string())?
                .issue(
                    ISSUER,
                    &UserId::generate(),
                    &SessionId::generate(),
                    shared::crypto::Scope::User,
                    unix_now(),
                    7200,
                )
                .map_err(|e| e.to_string())?,
            tag: tag.clone(),
        };
        const WARM_UP: usize = 10;
        eprintln!("bench: floor through the emulator x {}", args.solo_requests);
        let floor = FunctionProcess::start(
            &bin(FLOOR),
            FLOOR,
            &memory_env,
            Some(&work.join("hello.log")),
        )
        .await?;
        for i in 0..WARM_UP + args.solo_requests {
            let invoked = floor.invoke(&solo::hello_event(i)).await?;
            if i >= WARM_UP {
                results.floor_warm.push(invoked.elapsed);
            }
        }
        if let Some(kib) = floor.peak_rss_kib() {
            results.rss_embedded.insert(FLOOR.into(), kib * 1024);
        }
        floor.stop().await;
        for case in solo::SOLO
            .iter()
            .filter(|c| functions.contains(&c.function))
        {
            let count = if case.hashing {
                args.hashing_requests
            } else {
                args.solo_requests
            };
            eprintln!("bench: {} (embedded store) x {count}", case.function);
            let process = FunctionProcess::start(
                &bin(case.function),
                case.function,
                &memory_env,
                Some(&work.join(format!("{}-memory.log", case.function))),
            )
            .await?;
            let mut result = SoloResult {
                function: case.function,
                request: case.request,
                hashing: case.hashing,
                statuses: BTreeMap::new(),
                samples: Vec::new(),
            };
            for i in 0..WARM_UP + count {
                let invoked = process.invoke(&(case.make)(&context, i)).await?;
                if i == 0 {
                    results
                        .first_embedded
                        .insert(case.function.into(), invoked.elapsed);
                }
                if i >= WARM_UP {
                    *result.statuses.entry(invoked.status).or_default() += 1;
                    result.samples.push(invoked.elapsed);
                }
            }
            if let Some(kib) = process.peak_rss_kib() {
                results
                    .rss_embedded
                    .insert(case.function.into(), kib * 1024);
            }
            process.stop().await;
            results.solo.push(result);
        }
    }

    // 4. Through the emulator, DynamoDB on moto_server behind the counting proxy.
    // The flow needs every function.
    if args.dynamodb && args.warm && args.only.is_none() {
        results.dynamo = Some(
            dynamo_run(
                &args,
                &workspace,
                &work,
                &bin_dir,
                &functions,
                &lambda_env,
                &tag,
            )
            .await?,
        );
    }

    // 5. Cold requests, the floors and the Node.js peer, and the seed flow cold and warm.
    if args.cold && args.dynamodb {
        results.cold_requests = Some(
            cold_run(
                &args,
                &workspace,
                &work,
                &bin_dir,
                &functions,
                &lambda_env,
                &fakes,
                &pem,
                &tag,
            )
            .await?,
        );
    }

    // 6. local-api throughput.
    if args.load {
        eprintln!("bench: local-api load");
        let api = load::LocalApi::start(&bin("local-api")).await?;
        // All load comes from 127.0.0.1; see LocalApi::start for the raised per-IP limits.
        let token = api.access_token(&format!("load{tag}")).await?;
        let kinds = [
            (
                "POST /auth/v1/verification/verify (wrong code, unknown well-formed id)",
                load::Template {
                    method: hyper::Method::POST,
                    path: "/auth/v1/verification/verify".into(),
                    bearer: None,
                    body: Some(
                        serde_json::json!({
                            "verification_id": hex::encode(shared::domain::random_bytes::<16>()),
                            "verification_code": "000000",
                        })
                        .to_string(),
                    ),
                },
            ),
            (
                "GET /auth/v1/user/me (valid token)",
                load::Template {
                    method: hyper::Method::GET,
                    path: "/auth/v1/user/me".into(),
                    bearer: Some(token),
                    body: None,
                },
            ),
        ];
        for (label, template) in kinds {
            let outcome = load::run(
                &api.addr,
                template,
                args.connections,
                Duration::from_secs(args.load_secs),
            )
            .await;
            results.load.push((label.to_string(), outcome));
        }
        results.local_api_rss = process::peak_rss_kib(api.pid()).map(|kib| kib * 1024);
        api.stop().await;
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

/// The functions log as on Lambda (JSON at `info`); in process the lines go nowhere, but
/// they are still formatted, as a function would.
fn init_logging_to_nowhere() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .without_time()
        .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
        .with_writer(std::io::sink)
        .try_init();
}

async fn dynamo_run(
    args: &Args,
    workspace: &Path,
    work: &Path,
    bin_dir: &Path,
    functions: &[&'static str],
    lambda_env: &[(String, String)],
    tag: &str,
) -> Result<DynamoResults, String> {
    eprintln!("bench: starting moto_server");
    let moto = moto::Moto::start(workspace, &work.join("moto.log")).await?;
    moto.create_table(TABLE).await?;
    moto.verify_sender(SENDER).await?;
    let proxy = Proxy::start(&moto.origin, Duration::from_millis(args.dynamo_delay_ms))
        .await
        .map_err(|e| format!("starting the proxy: {e}"))?;
    let mut env: Vec<(String, String)> = lambda_env
        .iter()
        .filter(|(k, _)| k != "AWS_ENDPOINT_URL")
        .cloned()
        .collect();
    env.extend(pairs(&[
        ("AUTH_STORE", "dynamodb"),
        ("AWS_ENDPOINT_URL", &proxy.origin),
        // The flow sends two codes to one address within a second (bind, then CUR_USER).
        ("AUTH_CODE_RESEND_INTERVAL_SECS", "0"),
        // moto on a busy machine sometimes takes over a second; the default 1 s attempt
        // timeout would then retry a write that committed and settle it with a read, and
        // that invocation would count the retry as round trips (the tests use 2.5 s too).
        ("AUTH_AWS_ATTEMPT_TIMEOUT_MS", "2500"),
    ]));
    let mut running: HashMap<String, FunctionProcess> = HashMap::new();
    for &name in functions {
        let process = FunctionProcess::start(
            &bin_dir.join(name),
            name,
            &env,
            Some(&work.join(format!("{name}-dynamodb.log"))),
        )
        .await?;
        running.insert(name.to_string(), process);
    }
    eprintln!(
        "bench: DynamoDB flow through the functions x {}",
        args.dynamo_iterations
    );
    let outcome = async {
        let mut flow = Flow::new(
            Backend::Processes {
                functions: &running,
                proxy: &proxy,
                moto: &moto,
            },
            &format!("{tag}d"),
        );
        for i in 0..=args.dynamo_iterations {
            flow.iteration(i, i > 0).await?;
        }
        Ok::<_, String>((flow.steps, flow.first_calls))
    }
    .await;
    let rss = running
        .iter()
        .filter_map(|(name, p)| p.peak_rss_kib().map(|kib| (name.clone(), kib * 1024)))
        .collect();
    for (_, process) in running.drain() {
        process.stop().await;
    }
    drop(proxy);
    moto.stop().await;
    let (steps, first_calls) = outcome?;
    Ok(DynamoResults {
        steps,
        first_calls,
        rss,
        iterations: args.dynamo_iterations,
        delay_ms: args.dynamo_delay_ms,
    })
}

/// `node` on the PATH and the peer's dependencies installed (`npm ci` from its lock file when
/// `node_modules` is missing): the program and arguments that run the peer.
fn node_peer(workspace: &Path) -> Result<(PathBuf, Vec<String>), String> {
    let dir = workspace.join("bench/node-peer");
    let on_path = |program: &str| {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(program))
                .find(|candidate| candidate.is_file())
        })
    };
    let node = on_path("node").ok_or("no `node` on PATH")?;
    if !dir.join("node_modules").exists() {
        let npm = on_path("npm").ok_or("no `npm` on PATH")?;
        eprintln!("bench: npm ci in {}", dir.display());
        let status = std::process::Command::new(npm)
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .map_err(|e| format!("running npm ci: {e}"))?;
        if !status.success() {
            return Err(format!("npm ci in {} failed ({status})", dir.display()));
        }
    }
    Ok((node, vec![dir.join("runtime.mjs").display().to_string()]))
}

#[allow(clippy::too_many_arguments)]
async fn cold_run(
    args: &Args,
    workspace: &Path,
    work: &Path,
    bin_dir: &Path,
    functions: &[&'static str],
    lambda_env: &[(String, String)],
    fakes: &Fakes,
    pem: &str,
    tag: &str,
) -> Result<ColdResults, String> {
    eprintln!("bench: starting moto_server for the cold requests");
    let moto = moto::Moto::start(workspace, &work.join("moto-cold.log")).await?;
    moto.create_table(TABLE).await?;
    moto.put_secure_string(JWT_PARAMETER, pem).await?;
    moto.put_secure_string(SECRET_HASH_PARAMETER, SECRET_HASH_KEY)
        .await?;
    moto.put_secure_string(WX_SECRET_PARAMETER, fakes::WX_APP_SECRET)
        .await?;
    let proxy = Proxy::start_split(
        &moto.origin,
        Some(&fakes.origin),
        Duration::from_millis(args.dynamo_delay_ms),
    )
    .await
    .map_err(|e| format!("starting the proxy: {e}"))?;
    // As on Lambda: the store is DynamoDB, every AWS call goes through the delaying proxy
    // (SES and SNS on to the fakes), and the secrets are SSM SecureStrings.
    let secrets = [
        "AUTH_JWT_PRIVATE_KEY",
        "AUTH_SECRET_HASH_KEY",
        "AUTH_WX_OPEN_APP_SECRET",
    ];
    let mut base: Vec<(String, String)> = lambda_env
        .iter()
        .filter(|(k, _)| k != "AWS_ENDPOINT_URL" && !secrets.contains(&k.as_str()))
        .cloned()
        .collect();
    base.extend(pairs(&[
        ("AUTH_STORE", "dynamodb"),
        ("AWS_ENDPOINT_URL", &proxy.origin),
        // See dynamo_run: moto on a busy machine sometimes takes over a second.
        ("AUTH_AWS_ATTEMPT_TIMEOUT_MS", "2500"),
    ]));
    let mut ssm_env = base.clone();
    ssm_env.extend(pairs(&[
        ("AUTH_JWT_PRIVATE_KEY_PARAMETER", JWT_PARAMETER),
        ("AUTH_SECRET_HASH_KEY_PARAMETER", SECRET_HASH_PARAMETER),
        ("AUTH_WX_OPEN_APP_SECRET_PARAMETER", WX_SECRET_PARAMETER),
    ]));
    let mut key_env = base.clone();
    key_env.extend(
        lambda_env
            .iter()
            .filter(|(k, _)| secrets.contains(&k.as_str()))
            .cloned(),
    );
    let context = std::sync::Arc::new(solo::SoloContext {
        minted_access_token: shared::crypto::AccessTokens::from_pems(pem, "", AUDIENCE)
            .map_err(|e| e.to_string())?
            .issue(
                ISSUER,
                &UserId::generate(),
                &SessionId::generate(),
                shared::crypto::Scope::User,
                unix_now(),
                7200,
            )
            .map_err(|e| e.to_string())?,
        tag: format!("{tag}c"),
    });
    let bin = |name: &str| bin_dir.join(name);
    let mut cases = vec![
        cold::Case {
            label: format!("{FLOOR} (floor)"),
            function: FLOOR.into(),
            program: bin(FLOOR),
            args: Vec::new(),
            env: base.clone(),
            request: "any event → 200 `hello`".into(),
            make: Box::new(solo::hello_event),
        },
        cold::Case {
            label: format!("{SSM_FLOOR} (floor)"),
            function: SSM_FLOOR.into(),
            program: bin(SSM_FLOOR),
            args: Vec::new(),
            env: [base.clone(), pairs(&[("FLOOR_PARAMETER", JWT_PARAMETER)])].concat(),
            request: "init: default AWS config, one SSM GetParameter; request: one GetItem → 404"
                .into(),
            make: Box::new(solo::hello_event),
        },
    ];
    if functions.contains(&"user-me") {
        cases.push(cold::Case {
            label: NO_IO.into(),
            function: "user-me".into(),
            program: bin("user-me"),
            args: Vec::new(),
            env: key_env.clone(),
            request: "GET /user/me without a token → 401, no network I/O at all".into(),
            make: Box::new(|i| {
                process::event("GET", "/auth/v1/user/me", None, None, &flow::source_ip(i))
            }),
        });
    }
    for case in solo::SOLO
        .iter()
        .filter(|c| functions.contains(&c.function))
    {
        let context = std::sync::Arc::clone(&context);
        cases.push(cold::Case {
            label: case.function.into(),
            function: case.function.into(),
            program: bin(case.function),
            args: Vec::new(),
            env: ssm_env.clone(),
            request: case.request.into(),
            make: Box::new(move |i| (case.make)(&context, i)),
        });
    }
    let peer_missing = match node_peer(workspace) {
        Ok((node, node_args)) => {
            let context = std::sync::Arc::clone(&context);
            cases.push(cold::Case {
                label: PEER.into(),
                function: "user-me".into(),
                program: node,
                args: node_args,
                env: ssm_env.clone(),
                request: "as user-me: valid ES256 token of an unknown session → 401".into(),
                make: Box::new(move |i| {
                    process::event(
                        "GET",
                        "/auth/v1/user/me",
                        Some(&context.minted_access_token),
                        None,
                        &flow::source_ip(i),
                    )
                }),
            });
            None
        }
        Err(why) => {
            eprintln!("bench: the Node.js peer is left out: {why}");
            Some(why)
        }
    };
    eprintln!(
        "bench: cold requests ({} cases x {})",
        cases.len(),
        args.cold_requests
    );
    let outcome = async {
        let cases = cold::run(&cases, args.cold_requests, &proxy, work).await?;
        let needed = [
            "signup",
            "signin",
            "sudo",
            "verification",
            "verify",
            "bind-contact",
        ];
        let flow = if needed.iter().all(|f| functions.contains(f)) {
            eprintln!("bench: the seed flow cold and warm x {}", args.cold_flows);
            cold::flow(args.cold_flows, bin_dir, &ssm_env, &proxy, fakes, work, tag).await?
        } else {
            Vec::new()
        };
        Ok::<_, String>((cases, flow))
    }
    .await;
    drop(proxy);
    moto.stop().await;
    let (cases, flow) = outcome?;
    Ok(ColdResults {
        cases,
        flow,
        rounds: args.cold_requests,
        flows: args.cold_flows,
        delay_ms: args.dynamo_delay_ms,
        peer_missing,
    })
}

struct Verdict {
    target: String,
    met: Option<bool>,
    detail: String,
}

/// The cold-request targets of issue 15.
fn cold_verdicts(results: &Results, functions: &[&'static str]) -> Vec<Verdict> {
    let targets = [
        format!("cold request of a request that needs no I/O ≤ {NO_IO_RATIO}× the bare hello's"),
        format!("cold request of every function ≤ {SSM_FLOOR_RATIO}× the SSM + GetItem floor's"),
        "cold request of every function ≤ ⅓ of the Node.js peer's".to_string(),
        "peak RSS of every function ≤ ⅓ of the Node.js peer's".to_string(),
        "cold path sequential round trips ≤ warm + 1 (SSM included)".to_string(),
    ];
    let Some(cold) = &results.cold_requests else {
        return targets
            .into_iter()
            .map(|target| Verdict {
                target,
                met: None,
                detail: "not measured in this run".into(),
            })
            .collect();
    };
    let case = |label: &str| cold.cases.iter().find(|c| c.label == label);
    let cold_median = |label: &str| case(label).map(|c| median(&c.cold));
    let ours: Vec<&cold::CaseResult> = cold
        .cases
        .iter()
        .filter(|c| functions.contains(&c.label.as_str()))
        .collect();
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    let mut verdicts = Vec::new();

    let hello = cold_median(&format!("{FLOOR} (floor)"));
    verdicts.push(match (cold_median(NO_IO), hello) {
        (Some(no_io), Some(hello)) => {
            let r = ratio(no_io, hello);
            Verdict {
                target: targets[0].clone(),
                met: Some(r <= NO_IO_RATIO),
                detail: format!("{r:.2}× ({} ms against {} ms)", ms2(no_io), ms2(hello)),
            }
        }
        _ => Verdict {
            target: targets[0].clone(),
            met: None,
            detail: "user-me not measured".into(),
        },
    });

    // Each function against a reference median: the ratios over `limit`, and the worst.
    let against = |target: &String, reference: Option<Duration>, limit: f64, name: &str| {
        let Some(reference) = reference.filter(|_| !ours.is_empty()) else {
            return Verdict {
                target: target.clone(),
                met: None,
                detail: format!("{name} not measured"),
            };
        };
        let ratios: Vec<(String, f64)> = ours
            .iter()
            .map(|c| (c.label.clone(), ratio(median(&c.cold), reference)))
            .collect();
        let over: Vec<String> = ratios
            .iter()
            .filter(|(_, r)| *r > limit)
            .map(|(f, r)| format!("{f} {r:.2}×"))
            .collect();
        let worst = ratios
            .iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(f, r)| format!("{f} {r:.2}×"))
            .unwrap_or_default();
        Verdict {
            target: target.clone(),
            met: Some(over.is_empty()),
            detail: if over.is_empty() {
                format!("worst {worst} ({name} {} ms)", ms2(reference))
            } else {
                format!("over ({name} {} ms): {}", ms2(reference), over.join(", "))
            },
        }
    };
    verdicts.push(against(
        &targets[1],
        cold_median(&format!("{SSM_FLOOR} (floor)")),
        SSM_FLOOR_RATIO,
        "floor",
    ));
    verdicts.push(against(&targets[2], cold_median(PEER), PEER_SHARE, "peer"));

    let peak = |f: &str| -> Option<u64> {
        let embedded = results.rss_embedded.get(f).copied();
        let dynamo = results.dynamo.as_ref().and_then(|d| d.rss.get(f).copied());
        let cold = case(f).and_then(|c| c.rss);
        embedded.into_iter().chain(dynamo).chain(cold).max()
    };
    verdicts.push(match case(PEER).and_then(|c| c.rss) {
        Some(peer) => {
            let over: Vec<String> = functions
                .iter()
                .filter_map(|f| peak(f).map(|b| (f, b)))
                .filter(|(_, b)| *b as f64 > peer as f64 * PEER_SHARE)
                .map(|(f, b)| format!("{f} {} MiB", mib(b)))
                .collect();
            let worst = functions.iter().filter_map(|f| peak(f)).max().unwrap_or(0);
            Verdict {
                target: targets[3].clone(),
                met: Some(over.is_empty()),
                detail: format!(
                    "peer {} MiB; {}",
                    mib(peer),
                    if over.is_empty() {
                        format!("worst function {} MiB", mib(worst))
                    } else {
                        format!("over: {}", over.join(", "))
                    }
                ),
            }
        }
        None => Verdict {
            target: targets[3].clone(),
            met: None,
            detail: cold
                .peer_missing
                .clone()
                .unwrap_or_else(|| "the peer was not measured".into()),
        },
    });

    let most = |trips: &[cold::Trips]| trips.iter().map(|t| t.sequential).max().unwrap_or(0);
    let rows = ours
        .iter()
        .map(|c| (c.label.clone(), most(&c.cold_trips), most(&c.warm_trips)))
        .chain(cold.flow.iter().map(|s| {
            (
                format!("flow: {}", s.label),
                most(&s.cold_trips),
                most(&s.warm_trips),
            )
        }));
    let (mut over, mut worst) = (Vec::new(), 0usize);
    for (label, cold_trips, warm_trips) in rows {
        let extra = cold_trips.saturating_sub(warm_trips);
        worst = worst.max(extra);
        if extra > 1 {
            over.push(format!(
                "{label} {cold_trips} cold against {warm_trips} warm"
            ));
        }
    }
    verdicts.push(Verdict {
        target: targets[4].clone(),
        met: (!ours.is_empty()).then_some(over.is_empty()),
        detail: if over.is_empty() {
            format!("worst: warm + {worst}")
        } else {
            format!("over: {}", over.join("; "))
        },
    });
    verdicts
}

fn verdicts(results: &Results, functions: &[&'static str]) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    verdicts.extend(cold_verdicts(results, functions));

    match &results.dynamo {
        Some(dynamo) => {
            let over: Vec<String> = dynamo
                .steps
                .iter()
                .filter_map(|s| {
                    let worst = s.dynamo.iter().map(|d| d.sequential).max().unwrap_or(0);
                    (worst > MAX_SEQUENTIAL).then(|| {
                        let shape = s
                            .dynamo
                            .first()
                            .map(|d| d.shape.clone())
                            .unwrap_or_default();
                        format!("{} {worst} ({shape})", s.label)
                    })
                })
                .collect();
            let worst = dynamo
                .steps
                .iter()
                .flat_map(|s| s.dynamo.iter().map(|d| d.sequential))
                .max()
                .unwrap_or(0);
            verdicts.push(Verdict {
                target: format!(
                    "no operation needs more than {MAX_SEQUENTIAL} sequential DynamoDB round trips"
                ),
                met: Some(over.is_empty()),
                detail: if over.is_empty() {
                    format!("worst {worst}")
                } else {
                    format!("over: {}", over.join("; "))
                },
            });
            let binding: Vec<String> = dynamo
                .steps
                .iter()
                .filter(|s| s.label.starts_with("bind-"))
                .map(|s| {
                    let ok = s
                        .dynamo
                        .iter()
                        .all(|d| d.transactions == 1 && d.plain_writes == 0);
                    let shape = s
                        .dynamo
                        .first()
                        .map(|d| d.shape.clone())
                        .unwrap_or_default();
                    format!(
                        "{}: {} ({shape})",
                        s.label,
                        if ok {
                            "one TransactWriteItems, no other write"
                        } else {
                            "NOT one write transaction"
                        }
                    )
                })
                .collect();
            let binding_ok = dynamo
                .steps
                .iter()
                .filter(|s| s.label.starts_with("bind-"))
                .all(|s| {
                    s.dynamo
                        .iter()
                        .all(|d| d.transactions == 1 && d.plain_writes == 0)
                });
            verdicts.push(Verdict {
                target: "binding needs exactly one write transaction".into(),
                met: Some(binding_ok && !binding.is_empty()),
                detail: binding.join("; "),
            });
        }
        None => {
            for target in [
                format!(
                    "no operation needs more than {MAX_SEQUENTIAL} sequential DynamoDB round trips"
                ),
                "binding needs exactly one write transaction".to_string(),
            ] {
                verdicts.push(Verdict {
                    target,
                    met: None,
                    detail: "not measured in this run".into(),
                });
            }
        }
    }

    let peak = |f: &str| -> Option<u64> {
        let a = results.rss_embedded.get(f).copied();
        let b = results.dynamo.as_ref().and_then(|d| d.rss.get(f).copied());
        let c = results
            .cold_requests
            .as_ref()
            .and_then(|cold| cold.cases.iter().find(|c| c.label == f))
            .and_then(|c| c.rss);
        a.into_iter().chain(b).chain(c).max()
    };
    let heavy: Vec<String> = functions
        .iter()
        .filter_map(|f| {
            let bytes = peak(f)?;
            (bytes as f64 > MAX_RSS_MIB * 1024.0 * 1024.0)
                .then(|| format!("{f} {} MiB", mib(bytes)))
        })
        .collect();
    let worst_rss = functions.iter().filter_map(|f| peak(f)).max().unwrap_or(0);
    verdicts.push(Verdict {
        target: format!("peak RSS of every function < {MAX_RSS_MIB} MiB"),
        met: (worst_rss > 0).then_some(heavy.is_empty()),
        detail: if heavy.is_empty() {
            format!("worst {} MiB", mib(worst_rss))
        } else {
            format!("over: {}", heavy.join(", "))
        },
    });
    let big: Vec<String> = results
        .sizes
        .iter()
        .filter(|(name, size, _)| {
            functions.contains(&name.as_str()) && *size as f64 > MAX_BINARY_MIB * 1024.0 * 1024.0
        })
        .map(|(name, size, _)| format!("{name} {} MiB", mib(*size)))
        .collect();
    let unstripped: Vec<&str> = results
        .sizes
        .iter()
        .filter(|(name, _, symbols)| functions.contains(&name.as_str()) && *symbols != Some(false))
        .map(|(name, _, _)| name.as_str())
        .collect();
    let worst_size = results
        .sizes
        .iter()
        .filter(|(name, _, _)| functions.contains(&name.as_str()))
        .map(|(_, size, _)| *size)
        .max()
        .unwrap_or(0);
    verdicts.push(Verdict {
        target: format!("stripped binary of every function < {MAX_BINARY_MIB} MiB"),
        met: Some(big.is_empty() && unstripped.is_empty()),
        detail: if big.is_empty() && unstripped.is_empty() {
            format!("worst {} MiB, all stripped", mib(worst_size))
        } else {
            let mut problems = Vec::new();
            if !big.is_empty() {
                problems.push(format!("over: {}", big.join(", ")));
            }
            if !unstripped.is_empty() {
                problems.push(format!("not stripped: {}", unstripped.join(", ")));
            }
            problems.join("; ")
        },
    });

    let floor_warm = median(&results.floor_warm);
    let mut over = Vec::new();
    let mut worst_in_process = (Duration::ZERO, "");
    for step in results.in_process.iter().filter(|s| !s.hashing) {
        let m = median(&step.samples);
        if m > worst_in_process.0 {
            worst_in_process = (m, step.label);
        }
        if m >= MAX_OVERHEAD {
            over.push(format!("{} in process {} ms", step.label, ms(m)));
        }
    }
    let mut worst_emulated = (Duration::ZERO, "");
    for solo in results.solo.iter().filter(|s| !s.hashing) {
        let overhead = median(&solo.samples).saturating_sub(floor_warm);
        if overhead > worst_emulated.0 {
            worst_emulated = (overhead, solo.function);
        }
        if overhead >= MAX_OVERHEAD {
            over.push(format!(
                "{} through the emulator {} ms over the floor",
                solo.function,
                ms(overhead)
            ));
        }
    }
    let measured = !results.in_process.is_empty() && !results.solo.is_empty();
    verdicts.push(Verdict {
        target: "warm overhead of our code (embedded store, no password hashing) < 1 ms median per operation".into(),
        met: measured.then_some(over.is_empty()),
        detail: if over.is_empty() {
            format!(
                "worst in process {} ms ({}); worst through the emulator {} ms over the floor ({})",
                ms(worst_in_process.0),
                worst_in_process.1,
                ms(worst_emulated.0),
                worst_emulated.1
            )
        } else {
            format!("over: {}", over.join("; "))
        },
    });
    verdicts
}

fn tables(args: &Args, results: &Results, functions: &[&'static str]) -> Vec<Table> {
    let mut tables = Vec::new();
    let floor_cold = median(results.cold.get(FLOOR).map(Vec::as_slice).unwrap_or(&[]));
    let mut t = Table::new(
        "Binaries: stripped size, cold start (process start → first poll of /invocation/next), first invocation, peak RSS",
        &[
            "binary",
            "size (MiB)",
            "stripped",
            "cold start median (ms)",
            "p90 (ms)",
            "× floor",
            "1st invocation, DynamoDB (ms)",
            "1st invocation, embedded (ms)",
            "peak RSS embedded (MiB)",
            "peak RSS DynamoDB (MiB)",
        ],
    );
    for (name, size, symbols) in &results.sizes {
        let cold = results.cold.get(name);
        let first_dynamo = results
            .dynamo
            .as_ref()
            .and_then(|d| d.first_calls.iter().find(|(f, _)| f == name))
            .map(|(_, d)| ms2(*d));
        let rss_dynamo = results
            .dynamo
            .as_ref()
            .and_then(|d| d.rss.get(name))
            .map(|b| mib(*b));
        let rss_embedded = if name == "local-api" {
            results
                .local_api_rss
                .map(|b| format!("{} (under load)", mib(b)))
        } else {
            results.rss_embedded.get(name).map(|b| mib(*b))
        };
        t.row(vec![
            if name == FLOOR {
                format!("{name} (floor)")
            } else {
                name.clone()
            },
            mib(*size),
            match symbols {
                Some(false) => "yes".into(),
                Some(true) => "NO".into(),
                None => "?".into(),
            },
            cold.map(|c| ms2(median(c))).unwrap_or_else(|| "—".into()),
            cold.map(|c| ms2(percentile(c, 90.0)))
                .unwrap_or_else(|| "—".into()),
            cold.map(|c| format!("{:.2}", median(c).as_secs_f64() / floor_cold.as_secs_f64()))
                .unwrap_or_else(|| "—".into()),
            first_dynamo.unwrap_or_else(|| "—".into()),
            results
                .first_embedded
                .get(name)
                .map(|d| ms2(*d))
                .unwrap_or_else(|| "—".into()),
            rss_embedded.unwrap_or_else(|| "—".into()),
            rss_dynamo.unwrap_or_else(|| "—".into()),
        ]);
    }
    t.note(format!(
        "cold start: {} starts per binary, interleaved round-robin, after one unrecorded round; the same Lambda environment for every binary",
        args.starts
    ));
    t.note("1st invocation: the function's first event after its start (the request alone: the app, with its AWS clients and keys, is built during init, before the first poll); not part of the cold start column");
    t.note("peak RSS: VmHWM of the process after all its warm invocations (embedded: the requests of the emulator table; DynamoDB: the whole flow)");
    tables.push(t);

    let mut t = Table::new(
        "Warm latency in process, embedded store (event JSON → lambda_http::Request → shared::http::handle → response)",
        &["operation", "function", "samples", "median (ms)", "p99 (ms)", "hashes a password"],
    );
    for step in &results.in_process {
        t.row(vec![
            step.label.into(),
            step.function.into(),
            step.samples.len().to_string(),
            ms(median(&step.samples)),
            ms(percentile(&step.samples, 99.0)),
            if step.hashing {
                "yes (Argon2id)".into()
            } else {
                "no".into()
            },
        ]);
    }
    if !results.argon2_verify.is_empty() {
        t.row(vec![
            "(Argon2id verify alone, for reference)".into(),
            "—".into(),
            results.argon2_verify.len().to_string(),
            ms(median(&results.argon2_verify)),
            ms(percentile(&results.argon2_verify, 99.0)),
            "yes".into(),
        ]);
    }
    t.note(format!(
        "{} iterations of the whole flow after 3 unrecorded ones; every answer checked (HTTP 200); codes kept in memory instead of SES/SNS; provider-token includes 2 HTTP GETs to a loopback WeChat fake",
        args.iterations
    ));
    t.note("AUTH_CODE_RESEND_INTERVAL_SECS=0 (the flow sends two codes to one address within a second); every other setting is the default");
    tables.push(t);

    if !results.token_costs.is_empty() {
        let mut t = Table::new(
            "Access tokens: signing and verifying one, in process",
            &[
                "key",
                "samples",
                "sign median (µs)",
                "sign p99 (µs)",
                "verify median (µs)",
                "verify p99 (µs)",
            ],
        );
        let us = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1e6);
        for (kind, sign, verify) in &results.token_costs {
            t.row(vec![
                kind.to_string(),
                sign.len().to_string(),
                us(median(sign)),
                us(percentile(sign, 99.0)),
                us(median(verify)),
                us(percentile(verify, 99.0)),
            ]);
        }
        t.note("ES256 is what deployments sign with (API Gateway's JWT authorizer accepts it); EdDSA only verifies tokens issued before a switch. Verification includes decoding and the claim checks.");
        tables.push(t);
    }

    let floor_warm = median(&results.floor_warm);
    let mut t = Table::new(
        "Warm latency through the Runtime API emulator, embedded store (AUTH_STORE=memory), one process per function",
        &["function", "request", "status", "samples", "median (ms)", "p99 (ms)", "median − floor (ms)"],
    );
    t.row(vec![
        "hello (floor)".into(),
        "GET /auth/v1/user/me → 200 `hello`".into(),
        "200".into(),
        results.floor_warm.len().to_string(),
        ms(floor_warm),
        ms(percentile(&results.floor_warm, 99.0)),
        "0".into(),
    ]);
    for solo in &results.solo {
        t.row(vec![
            solo.function.into(),
            solo.request.into(),
            solo.statuses
                .iter()
                .map(|(s, n)| {
                    if solo.statuses.len() == 1 {
                        s.to_string()
                    } else {
                        format!("{s}×{n}")
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
            solo.samples.len().to_string(),
            ms(median(&solo.samples)),
            ms(percentile(&solo.samples, 99.0)),
            ms_minus(median(&solo.samples), floor_warm),
        ]);
    }
    t.note("time from the emulator handing out the event (answer to GET /invocation/next) to the function's POST /invocation/{id}/response fully received; 10 unrecorded requests first");
    t.note("each function process has its own embedded store, so each gets a request it can answer alone; 'valid token of an unknown session' is an ES256 access token signed with the functions' key for a session no process has");
    tables.push(t);

    if let Some(dynamo) = &results.dynamo {
        let mut t = Table::new(
            "Warm latency through the emulator, DynamoDB on moto_server (whole flow across the function processes), with DynamoDB requests counted by a proxy",
            &[
                "operation",
                "function",
                "samples",
                "median (ms)",
                "p99 (ms)",
                "DynamoDB requests",
                "sequential round trips",
                "write transactions",
                "DynamoDB requests in order (a+b: concurrent)",
                "other AWS calls",
            ],
        );
        for step in &dynamo.steps {
            let range = |f: fn(&proxy::DynamoUse) -> usize| {
                let lo = step.dynamo.iter().map(f).min().unwrap_or(0);
                let hi = step.dynamo.iter().map(f).max().unwrap_or(0);
                if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}–{hi}")
                }
            };
            let mut shapes: Vec<&str> = step.dynamo.iter().map(|d| d.shape.as_str()).collect();
            shapes.sort();
            shapes.dedup();
            t.row(vec![
                step.label.into(),
                step.function.into(),
                step.samples.len().to_string(),
                ms(median(&step.samples)),
                ms(percentile(&step.samples, 99.0)),
                range(|d| d.requests),
                range(|d| d.sequential),
                range(|d| d.transactions),
                shapes.join(" / "),
                step.other_aws.join(", "),
            ]);
        }
        t.note(format!(
            "{} iterations of the whole flow after 1 unrecorded one, each function one process with its own emulator; moto_server serialised (tests/support/serial_moto.py), so latency is moto's, not DynamoDB's; the proxy holds each DynamoDB request {} ms (a stand-in for the network round trip, so that requests issued together always overlap)",
            dynamo.iterations, dynamo.delay_ms
        ));
        t.note("sequential round trips: the most requests of one invocation that ran one after another (no two overlapping), from each request's start and end at the proxy");
        t.note("AUTH_AWS_ATTEMPT_TIMEOUT_MS=2500 in this view: moto sometimes takes over a second, and a retried attempt would count as round trips the operation does not need");
        t.note("p99 is nearest-rank: with fewer than 100 samples it is the slowest sample");
        tables.push(t);
    }

    if let Some(cold) = &results.cold_requests {
        tables.extend(cold_tables(cold));
    }

    if !results.load.is_empty() {
        let mut t = Table::new(
            "local-api throughput (embedded store), closed loop: each connection sends its next request when the answer is in",
            &["request", "connections", "seconds", "requests", "requests/s", "median (ms)", "p99 (ms)", "statuses", "errors"],
        );
        for (label, outcome) in &results.load {
            t.row(vec![
                label.clone(),
                args.connections.to_string(),
                format!("{:.1}", outcome.elapsed.as_secs_f64()),
                outcome.requests.to_string(),
                format!("{:.0}", outcome.per_second()),
                ms(median(&outcome.latencies)),
                ms(percentile(&outcome.latencies, 99.0)),
                outcome
                    .statuses
                    .iter()
                    .map(|(s, n)| format!("{s}×{n}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                outcome.errors.to_string(),
            ]);
        }
        t.note("the load generator runs on the same machine and shares its cores with local-api");
        tables.push(t);
    }

    let mut t = Table::new("Targets", &["target", "met", "detail"]);
    t.note("reasons and next steps for targets not met: BENCHMARKS.md");
    for verdict in verdicts(results, functions) {
        t.row(vec![
            verdict.target,
            match verdict.met {
                Some(true) => "met".into(),
                Some(false) => "NOT MET".into(),
                None => "not measured".into(),
            },
            verdict.detail,
        ]);
    }
    tables.push(t);
    tables
}

/// The cold-request table and the seed flow, cold against warm.
fn cold_tables(cold: &ColdResults) -> Vec<Table> {
    let mut tables = Vec::new();
    let reference = |label: String| {
        cold.cases
            .iter()
            .find(|c| c.label == label)
            .map(|c| median(&c.cold))
    };
    let floor = reference(format!("{SSM_FLOOR} (floor)"));
    let hello = reference(format!("{FLOOR} (floor)"));
    let times = |a: Duration, b: Option<Duration>| {
        b.map(|b| format!("{:.2}", a.as_secs_f64() / b.as_secs_f64()))
            .unwrap_or_else(|| "—".into())
    };
    let range = |values: Vec<usize>| {
        let lo = values.iter().min().copied().unwrap_or(0);
        let hi = values.iter().max().copied().unwrap_or(0);
        if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}–{hi}")
        }
    };
    let shapes = |trips: &[cold::Trips]| {
        let mut shapes: Vec<&str> = trips.iter().map(|t| t.shape.as_str()).collect();
        shapes.sort();
        shapes.dedup();
        shapes.join(" / ")
    };
    let mut t = Table::new(
        "Cold request: spawn, with the event already queued, → response fully received (Lambda settings: secrets from SSM SecureStrings, DynamoDB through the delaying proxy, SES/SNS fakes)",
        &[
            "case",
            "request",
            "statuses",
            "cold request median (ms)",
            "p90 (ms)",
            "× SSM + GetItem floor",
            "× hello",
            "spawn → first poll median (ms)",
            "warm median (ms)",
            "cold − warm (ms)",
            "AWS requests, cold",
            "sequential round trips, cold",
            "sequential round trips, warm",
            "cold path (a+b: concurrent)",
            "peak RSS (MiB)",
        ],
    );
    for case in &cold.cases {
        let m = median(&case.cold);
        t.row(vec![
            case.label.clone(),
            case.request.clone(),
            case.statuses
                .iter()
                .map(|(s, n)| format!("{s}×{n}"))
                .collect::<Vec<_>>()
                .join(" "),
            ms2(m),
            ms2(percentile(&case.cold, 90.0)),
            times(m, floor),
            times(m, hello),
            ms2(median(&case.first_poll)),
            ms2(median(&case.warm)),
            ms_minus(m, median(&case.warm)),
            range(case.cold_trips.iter().map(|t| t.requests).collect()),
            range(case.cold_trips.iter().map(|t| t.sequential).collect()),
            range(case.warm_trips.iter().map(|t| t.sequential).collect()),
            shapes(&case.cold_trips),
            case.rss.map(mib).unwrap_or_else(|| "—".into()),
        ]);
    }
    t.note(format!(
        "{} cold requests per case, interleaved round-robin (order rotated each round) after one unrecorded round; each process then answers {} warm requests of the same kind (the warm column: event handed out → response received)",
        cold.rounds,
        cold::WARM_PER_START
    ));
    t.note(format!(
        "the proxy holds each DynamoDB and SSM request {} ms (a stand-in for the network round trip); connections are plain HTTP on loopback, so no TLS handshake is in these times",
        cold.delay_ms
    ));
    t.note("peak RSS: VmHWM after the warm requests, the largest over the case's processes");
    if let Some(why) = &cold.peer_missing {
        t.note(format!("the Node.js peer is not in this run: {why}"));
    }
    tables.push(t);

    if !cold.flow.is_empty() {
        let mut t = Table::new(
            "The seed flow with every function cold (each started by its step's event) against the same flow warm",
            &[
                "step",
                "function",
                "cold median (ms)",
                "warm median (ms)",
                "cold − warm (ms)",
                "sequential round trips, cold",
                "sequential round trips, warm",
            ],
        );
        let (mut cold_total, mut warm_total) = (Duration::ZERO, Duration::ZERO);
        for step in &cold.flow {
            let (c, w) = (median(&step.cold), median(&step.warm));
            cold_total += c;
            warm_total += w;
            t.row(vec![
                step.label.into(),
                step.function.into(),
                ms2(c),
                ms2(w),
                ms_minus(c, w),
                range(step.cold_trips.iter().map(|t| t.sequential).collect()),
                range(step.warm_trips.iter().map(|t| t.sequential).collect()),
            ]);
        }
        t.row(vec![
            "whole flow (sum of the medians)".into(),
            "—".into(),
            ms2(cold_total),
            ms2(warm_total),
            ms_minus(cold_total, warm_total),
            "—".into(),
            "—".into(),
        ]);
        t.note(format!(
            "{} flows after 1 unrecorded one; each a fresh account made by a warm signup process (not timed); cold: spawn → response; warm: the next account's flow on the same processes",
            cold.flows
        ));
        tables.push(t);
    }
    tables
}

fn header(
    args: &Args,
    results: &Results,
    machine: &machine::Machine,
    profile: &str,
) -> Vec<(String, String)> {
    let mut lines = vec![
        ("date".into(), machine.date.clone()),
        ("commit".into(), machine.commit.clone()),
        (
            "machine".into(),
            format!(
                "{} CPUs ({}), {} RAM, Linux {}",
                machine.cpus, machine.cpu_model, machine.memory, machine.kernel
            ),
        ),
        ("rustc".into(), machine.rustc.clone()),
        ("release profile".into(), profile.to_string()),
        (
            "build step".into(),
            results
                .build
                .map(|d| {
                    format!(
                        "cargo build -p functions -p local-api -p bench --bins took {:.1} s",
                        d.as_secs_f64()
                    )
                })
                .unwrap_or_else(|| "skipped (--no-build)".into()),
        ),
        (
            "load average (1, 5, 15 min) at start, at end".into(),
            format!("{}; {}", machine.load_at_start, machine::load_average()),
        ),
    ];
    if let Some(dir) = &args.bin_dir {
        lines.push(("binaries measured".into(), dir.display().to_string()));
    }
    if !args.function_env.is_empty() {
        let extra: Vec<String> = args
            .function_env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        lines.push(("extra function environment".into(), extra.join(" ")));
    }
    lines
}

fn render(
    args: &Args,
    results: &Results,
    machine: &machine::Machine,
    profile: &str,
    functions: &[&'static str],
) -> String {
    let mut out = String::from("\nBenchmark results\n");
    for (key, value) in header(args, results, machine, profile) {
        out += &format!("  {key}: {value}\n");
    }
    for table in tables(args, results, functions) {
        out += &table.text();
    }
    out
}

fn render_markdown(
    args: &Args,
    results: &Results,
    machine: &machine::Machine,
    profile: &str,
    functions: &[&'static str],
) -> String {
    let mut out = String::new();
    for (key, value) in header(args, results, machine, profile) {
        out += &format!("- **{key}**: {value}\n");
    }
    for table in tables(args, results, functions) {
        out += &table.markdown();
    }
    out
}
