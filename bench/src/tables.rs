//! The report: the run's header and every table, as text and as Markdown.

use std::time::Duration;

use crate::args::Args;
use crate::proxy;
use crate::report::{median, mib, ms, ms2, ms_minus, percentile, Table};
use crate::results::{ColdResults, Results};
use crate::verdicts::verdicts;
use crate::{cold, machine, FLOOR, SSM_FLOOR};

pub(crate) fn tables(args: &Args, results: &Results, functions: &[&'static str]) -> Vec<Table> {
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
pub(crate) fn cold_tables(cold: &ColdResults) -> Vec<Table> {
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

pub(crate) fn header(
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

pub(crate) fn render(
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

pub(crate) fn render_markdown(
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
