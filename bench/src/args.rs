//! The command line: what to measure and how many times.

use std::path::PathBuf;

pub(crate) struct Args {
    pub(crate) build: bool,
    pub(crate) starts: usize,
    pub(crate) iterations: usize,
    pub(crate) dynamo_iterations: usize,
    pub(crate) dynamo_delay_ms: u64,
    pub(crate) solo_requests: usize,
    pub(crate) hashing_requests: usize,
    pub(crate) load_secs: u64,
    pub(crate) connections: usize,
    pub(crate) markdown: Option<PathBuf>,
    pub(crate) dynamodb: bool,
    pub(crate) load: bool,
    pub(crate) warm: bool,
    pub(crate) bin_dir: Option<PathBuf>,
    pub(crate) only: Option<Vec<String>>,
    pub(crate) function_env: Vec<(String, String)>,
    pub(crate) cold_requests: usize,
    pub(crate) cold_flows: usize,
    pub(crate) cold: bool,
}

pub(crate) const USAGE: &str =
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

pub(crate) fn parse_args() -> Result<Args, String> {
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
