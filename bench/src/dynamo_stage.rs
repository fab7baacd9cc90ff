//! The warm flow through the function binaries on DynamoDB (moto_server behind the counting
//! proxy): latency per operation, DynamoDB requests per operation and peak RSS.

use std::collections::HashMap;
use std::time::Duration;

use crate::flow::{Backend, Flow};
use crate::process::FunctionProcess;
use crate::proxy::Proxy;
use crate::results::DynamoResults;
use crate::{moto, pairs, Run, SENDER, TABLE};

pub(crate) async fn dynamo_run(run: &Run<'_>) -> Result<DynamoResults, String> {
    let Run {
        args,
        workspace,
        work,
        bin_dir,
        functions,
        lambda_env,
        tag,
        ..
    } = *run;
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
