//! Cold requests of every function against the floors and the Node.js peer, and the seed flow
//! with every function cold.

use std::path::{Path, PathBuf};
use std::time::Duration;

use shared::domain::{SessionId, UserId};

use crate::proxy::Proxy;
use crate::results::ColdResults;
use crate::{cold, fakes, flow, moto, pairs, process, Run};
use crate::{solo, unix_now, AUDIENCE, FLOOR, ISSUER, NO_IO, PEER, SSM_FLOOR};
use crate::{JWT_PARAMETER, SECRET_HASH_KEY, SECRET_HASH_PARAMETER, TABLE, WX_SECRET_PARAMETER};

/// `node` on the PATH and the peer's dependencies installed (`npm ci` from its lock file when
/// `node_modules` is missing): the program and arguments that run the peer.
pub(crate) fn node_peer(workspace: &Path) -> Result<(PathBuf, Vec<String>), String> {
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

pub(crate) async fn cold_run(run: &Run<'_>) -> Result<ColdResults, String> {
    let Run {
        args,
        workspace,
        work,
        bin_dir,
        functions,
        lambda_env,
        fakes,
        pem,
        tag,
        ..
    } = *run;
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
