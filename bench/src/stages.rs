//! The stages of a run that need no emulator of AWS: cold starts, the in-process flow, warm
//! requests through the Runtime API emulator on the embedded store, and `local-api` load.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use shared::config::{Runtime, Settings};
use shared::domain::{Password, SessionId, UserId};

use crate::flow::{self, Flow};
use crate::keys::token_costs;
use crate::process::{self, FunctionProcess};
use crate::results::{Results, SoloResult};
use crate::{load, pairs, solo, unix_now, Run, AUDIENCE, FLOOR, ISSUER};

/// Cold starts, interleaved: round r starts every binary once, in an order rotated by r, so
/// that drift in machine load spreads evenly. Round 0 warms the page cache, unrecorded.
pub(crate) async fn cold_starts(run: &Run<'_>, results: &mut Results) -> Result<(), String> {
    let names: Vec<&str> = [FLOOR]
        .into_iter()
        .chain(run.functions.iter().copied())
        .collect();
    eprintln!(
        "bench: cold starts ({} binaries x {})",
        names.len(),
        run.args.starts
    );
    for round in 0..=run.args.starts {
        for k in 0..names.len() {
            let name = names[(k + round) % names.len()];
            let process =
                FunctionProcess::start(&run.bin(name), name, run.lambda_env, None).await?;
            let cold = process.cold_start;
            process.stop().await;
            if round > 0 {
                results.cold.entry(name.to_string()).or_default().push(cold);
            }
        }
    }
    Ok(())
}

/// In process, embedded store: the whole flow through `shared::http::handle`, then Argon2id
/// and the access tokens' signatures alone.
pub(crate) async fn in_process(run: &Run<'_>, results: &mut Results) -> Result<(), String> {
    let args = run.args;
    eprintln!("bench: in-process flow x {}", args.iterations);
    let mut vars: HashMap<String, String> = pairs(&[
        ("AUTH_JWT_PRIVATE_KEY", run.pem),
        ("AUTH_CODE_RESEND_INTERVAL_SECS", "0"),
    ])
    .into_iter()
    .collect();
    vars.extend(run.fakes.wechat_settings());
    let settings = Settings::from_vars(Runtime::Local, &vars).map_err(|e| e.to_string())?;
    let mut app = shared::bootstrap::build(settings)
        .await
        .map_err(|e| e.to_string())?;
    let captured = std::sync::Arc::new(flow::Captured::default());
    app.delivery = captured.clone();
    let mut flow = Flow::in_process(&app, captured, &format!("{}p", run.tag));
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
    Ok(())
}

/// Through the emulator, embedded store: the floor, then one request kind per function.
pub(crate) async fn through_emulator(run: &Run<'_>, results: &mut Results) -> Result<(), String> {
    let args = run.args;
    let mut memory_env = run.lambda_env.to_vec();
    memory_env.push(("AUTH_STORE".into(), "memory".into()));
    let context = solo::SoloContext {
        minted_access_token: shared::crypto::AccessTokens::from_pems(run.pem, "", AUDIENCE)
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
        tag: run.tag.to_string(),
    };
    const WARM_UP: usize = 10;
    eprintln!("bench: floor through the emulator x {}", args.solo_requests);
    let floor = FunctionProcess::start(
        &run.bin(FLOOR),
        FLOOR,
        &memory_env,
        Some(&run.work.join("hello.log")),
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
        .filter(|c| run.functions.contains(&c.function))
    {
        let count = if case.hashing {
            args.hashing_requests
        } else {
            args.solo_requests
        };
        eprintln!("bench: {} (embedded store) x {count}", case.function);
        let process = FunctionProcess::start(
            &run.bin(case.function),
            case.function,
            &memory_env,
            Some(&run.work.join(format!("{}-memory.log", case.function))),
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
    Ok(())
}

/// `local-api` throughput, per request kind.
pub(crate) async fn local_api_load(run: &Run<'_>, results: &mut Results) -> Result<(), String> {
    eprintln!("bench: local-api load");
    let api = load::LocalApi::start(&run.bin("local-api")).await?;
    // All load comes from 127.0.0.1; see LocalApi::start for the raised per-IP limits.
    let token = api.access_token(&format!("load{}", run.tag)).await?;
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
            run.args.connections,
            Duration::from_secs(run.args.load_secs),
        )
        .await;
        results.load.push((label.to_string(), outcome));
    }
    results.local_api_rss = process::peak_rss_kib(api.pid()).map(|kib| kib * 1024);
    api.stop().await;
    Ok(())
}
/// The functions log as on Lambda (JSON at `info`); in process the lines go nowhere, but
/// they are still formatted, as a function would.
pub(crate) fn init_logging_to_nowhere() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .without_time()
        .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
        .with_writer(std::io::sink)
        .try_init();
}
