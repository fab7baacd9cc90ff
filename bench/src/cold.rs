//! Cold requests: what a user waits for after idle. The event is queued at the Runtime API
//! emulator before the process is spawned, as Lambda holds the event that starts an instance,
//! and the time runs from just before `spawn` to the response fully received: init (AWS
//! clients, the signing key read from SSM) and the first invocation together. The AWS
//! requests of that window are logged by the proxy, so the cold path's sequential round
//! trips (SSM included) stand beside the warm ones of the same request.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::fakes::Fakes;
use crate::flow::{function_of, source_ip, PASSWORD};
use crate::process::{event, FunctionProcess, Invoked};
use crate::proxy::{sequential, Proxy, Record};

/// Warm requests each cold-started process answers after its first: the warm column.
pub const WARM_PER_START: usize = 3;

/// One row of the cold-request table: a program, its settings and the request it gets.
pub struct Case {
    pub label: String,
    /// The function name the emulator and `AWS_LAMBDA_FUNCTION_NAME` give it.
    pub function: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub request: String,
    pub make: Box<dyn Fn(usize) -> Value>,
}

/// The AWS requests of one invocation (or of a start with its first invocation).
#[derive(Clone, Debug, Default)]
pub struct Trips {
    pub requests: usize,
    pub sequential: usize,
    /// Operations in order of start, concurrent ones joined with `+`.
    pub shape: String,
}

impl Trips {
    pub fn of(records: &[Record]) -> Self {
        let mut all: Vec<&Record> = records.iter().collect();
        all.sort_by_key(|r| r.start);
        let mut rounds: Vec<(std::time::Instant, Vec<String>)> = Vec::new();
        for record in &all {
            let name = match record.target.strip_prefix("AmazonSSM.") {
                Some(op) => format!("SSM {op}"),
                None => record.outcome(),
            };
            match rounds.last_mut() {
                Some((end, ops)) if record.start < *end => {
                    ops.push(name);
                    *end = (*end).max(record.end);
                }
                _ => rounds.push((record.end, vec![name])),
            }
        }
        Self {
            requests: all.len(),
            sequential: sequential(&all),
            shape: rounds
                .iter_mut()
                .map(|(_, ops)| {
                    ops.sort();
                    ops.join("+")
                })
                .collect::<Vec<_>>()
                .join(" → "),
        }
    }
}

#[derive(Default)]
pub struct CaseResult {
    pub label: String,
    pub request: String,
    pub cold: Vec<Duration>,
    pub first_poll: Vec<Duration>,
    pub warm: Vec<Duration>,
    pub cold_trips: Vec<Trips>,
    pub warm_trips: Vec<Trips>,
    pub statuses: BTreeMap<u16, usize>,
    /// The largest `VmHWM` of its processes, after their warm requests, in bytes.
    pub rss: Option<u64>,
}

/// Starts every case `rounds` times, interleaved round-robin with the order rotated each
/// round (after one unrecorded round, which warms the page cache), so that drift in machine
/// load spreads over all of them alike. After its cold request each process answers
/// `WARM_PER_START` more of the same kind.
pub async fn run(
    cases: &[Case],
    rounds: usize,
    proxy: &Proxy,
    work: &Path,
) -> Result<Vec<CaseResult>, String> {
    let mut results: Vec<CaseResult> = cases
        .iter()
        .map(|c| CaseResult {
            label: c.label.clone(),
            request: c.request.clone(),
            ..CaseResult::default()
        })
        .collect();
    let mut i = 0;
    for round in 0..=rounds {
        for k in 0..cases.len() {
            let index = (k + round) % cases.len();
            let case = &cases[index];
            let record = round > 0;
            let mark = proxy.mark();
            let log = work.join(format!("cold-{}.log", case.label.replace(['/', ' '], "_")));
            let (process, cold) = FunctionProcess::start_cold(
                &case.program,
                &case.args,
                &case.function,
                &case.env,
                Some(&log),
                &(case.make)(i),
            )
            .await?;
            i += 1;
            let cold_trips = Trips::of(&proxy.since(mark));
            let result = &mut results[index];
            if record {
                result.cold.push(cold.response);
                result.first_poll.push(cold.first_poll);
                result.cold_trips.push(cold_trips);
                *result.statuses.entry(cold.invoked.status).or_default() += 1;
            }
            for _ in 0..WARM_PER_START {
                let mark = proxy.mark();
                let invoked = process.invoke(&(case.make)(i)).await?;
                i += 1;
                if record {
                    result.warm.push(invoked.elapsed);
                    result.warm_trips.push(Trips::of(&proxy.since(mark)));
                    *result.statuses.entry(invoked.status).or_default() += 1;
                }
            }
            if let Some(kib) = process.peak_rss_kib() {
                result.rss = Some(result.rss.unwrap_or(0).max(kib * 1024));
            }
            process.stop().await;
        }
    }
    Ok(results)
}

/// One step of the seed flow, cold (its function started by the step's event) and warm.
#[derive(Default)]
pub struct FlowStep {
    pub label: &'static str,
    pub function: &'static str,
    pub cold: Vec<Duration>,
    pub warm: Vec<Duration>,
    pub cold_trips: Vec<Trips>,
    pub warm_trips: Vec<Trips>,
}

/// The functions of one pass of the flow: started by their first event when `cold`.
struct Pass<'a> {
    bin_dir: &'a Path,
    env: &'a [(String, String)],
    proxy: &'a Proxy,
    work: &'a Path,
    running: HashMap<&'static str, FunctionProcess>,
}

impl Pass<'_> {
    /// Sends one request; starts its function with it when the function is not running.
    /// Answers the body of a 200 and the time the user waited.
    async fn call(
        &mut self,
        step: &mut FlowStep,
        record: bool,
        (method, path): (&str, &str),
        bearer: Option<&str>,
        body: Option<Value>,
        ip: &str,
    ) -> Result<Value, String> {
        let function = function_of(method, path);
        let event = event(method, path, bearer, body.as_ref(), ip);
        let mark = self.proxy.mark();
        let cold = !self.running.contains_key(function);
        let (invoked, waited): (Invoked, Duration) = if cold {
            let (process, cold) = FunctionProcess::start_cold(
                &self.bin_dir.join(function),
                &[],
                function,
                self.env,
                Some(&self.work.join(format!("flow-{function}.log"))),
                &event,
            )
            .await?;
            self.running.insert(function, process);
            (cold.invoked, cold.response)
        } else {
            let invoked = self.running[function].invoke(&event).await?;
            let elapsed = invoked.elapsed;
            (invoked, elapsed)
        };
        let trips = Trips::of(&self.proxy.since(mark));
        if invoked.status != 200 {
            return Err(format!(
                "{} ({method} {path}) answered {}: {}",
                step.label, invoked.status, invoked.body
            ));
        }
        step.function = function;
        if record {
            if cold {
                step.cold.push(waited);
                step.cold_trips.push(trips);
            } else {
                step.warm.push(waited);
                step.warm_trips.push(trips);
            }
        }
        Ok(invoked.body)
    }
}

fn text(value: &Value, field: &str) -> Result<String, String> {
    value[field]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("the answer has no `{field}`: {value}"))
}

pub const FLOW_STEPS: [&str; 5] = [
    "sign in (username + password)",
    "sudo (password)",
    "code (email)",
    "verify (right code)",
    "bind (email)",
];

/// The seed flow: sign in, sudo, code, verify, bind, with every function it touches cold
/// (each started by its step's event), then the same flow for another account against the
/// same, now warm, processes. The accounts are made beforehand by a `signup` process that is
/// not timed. One unrecorded round first.
pub async fn flow(
    rounds: usize,
    bin_dir: &Path,
    env: &[(String, String)],
    proxy: &Proxy,
    fakes: &Fakes,
    work: &Path,
    tag: &str,
) -> Result<Vec<FlowStep>, String> {
    let mut steps: [FlowStep; 5] = FLOW_STEPS.map(|label| FlowStep {
        label,
        ..FlowStep::default()
    });
    let signup = FunctionProcess::start(
        &bin_dir.join("signup"),
        "signup",
        env,
        Some(&work.join("flow-signup.log")),
    )
    .await?;
    for round in 0..=rounds {
        let mut pass = Pass {
            bin_dir,
            env,
            proxy,
            work,
            running: HashMap::new(),
        };
        // Cold, then warm: the same processes, another account.
        for (n, _) in ["cold", "warm"].iter().enumerate() {
            let i = 2 * round + n;
            let ip = source_ip(50_000 + i);
            let user = format!("f{tag}x{i}");
            let email = format!("{user}@example.com");
            let made = signup
                .invoke(&event(
                    "POST",
                    "/auth/v1/signup",
                    None,
                    Some(&json!({"username": user, "password": PASSWORD})),
                    &ip,
                ))
                .await?;
            if made.status != 200 {
                return Err(format!("signup for the flow answered {}", made.status));
            }
            let record = round > 0;
            let [signin, sudo, code, verify, bind] = &mut steps;
            let credentials = pass
                .call(
                    signin,
                    record,
                    ("POST", "/auth/v1/signin"),
                    None,
                    Some(json!({"username": user, "password": PASSWORD})),
                    &ip,
                )
                .await?;
            let access = text(&credentials, "access_token")?;
            let bearer = Some(access.as_str());
            let granted = pass
                .call(
                    sudo,
                    record,
                    ("POST", "/auth/v1/user/sudo"),
                    bearer,
                    Some(json!({"password": PASSWORD})),
                    &ip,
                )
                .await?;
            let sudo_token = text(&granted, "sudo_token")?;
            let sent = pass
                .call(
                    code,
                    record,
                    ("POST", "/auth/v1/verification"),
                    None,
                    Some(json!({"email": email})),
                    &ip,
                )
                .await?;
            let verification_id = text(&sent, "verification_id")?;
            let verified = pass
                .call(
                    verify,
                    record,
                    ("POST", "/auth/v1/verification/verify"),
                    None,
                    Some(json!({
                        "verification_id": verification_id,
                        "verification_code": fakes.latest_code(&email)?,
                    })),
                    &ip,
                )
                .await?;
            let verification_token = text(&verified, "verification_token")?;
            pass.call(
                bind,
                record,
                ("PATCH", "/auth/v1/user/contact"),
                bearer,
                Some(json!({
                    "sudo_token": sudo_token,
                    "email": email,
                    "verification_token": verification_token,
                })),
                &ip,
            )
            .await?;
        }
        for (_, process) in pass.running.drain() {
            process.stop().await;
        }
    }
    signup.stop().await;
    Ok(Vec::from(steps))
}
