//! Fault injection: `local-api` on DynamoDB, SES and SNS (moto_server) through a proxy that
//! makes chosen calls throttle, fail with HTTP 500, answer too late, drop the connection or
//! refuse outright, once (the retries must absorb it, but for the refusal) or every time (the
//! dependency is down).
//!
//! Every operation that touches AWS must then succeed or answer a clean `unavailable` (503 in
//! the contract's shape), within the time budget, and leave the table consistent: all of a
//! change or none of it, read straight from the table. The same operation without the fault
//! then succeeds.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use test_support::fault_proxy::{table_items, Call, Fault, FaultProxy, Times};
use test_support::server::{
    e164, unique, unique_email, unique_phone, Account, Backend, Reply, Server,
};
use test_support::wechat;

const EXE: &str = env!("CARGO_BIN_EXE_local-api");

/// The attempt timeout the service gets here (`AUTH_AWS_ATTEMPT_TIMEOUT_MS`): the default, as
/// debug builds on a busy machine need it.
const ATTEMPT_TIMEOUT_MS: u64 = 1000;
/// How late a slow answer comes: well past the attempt timeout.
const SLOW: Duration = Duration::from_millis(1500);
/// No answer may take longer, whatever the fault (the CloudBase SDK gives up after 10 s).
const ANSWER_WITHIN: Duration = Duration::from_secs(8);

const FAULTS: [Fault; 5] = [
    Fault::Throttle,
    Fault::ServerError,
    Fault::Slow(SLOW),
    Fault::Drop,
    Fault::Reject,
];
/// Once (a transient fault) or every time (a dependency that stays down).
const PERSISTENCE: [Times; 2] = [Times::Next(1), Times::Always];

// ---------------------------------------------------------------------------------------------
// The rig: a fault proxy in front of moto, and the server pointed at it

struct Rig {
    proxy: FaultProxy,
    server: Server,
}

impl Rig {
    /// The server with the call budget set explicitly (three attempts of at most 1 s), through
    /// a fresh proxy.
    async fn start(extra: &[(&str, String)]) -> Rig {
        let mut settings = vec![
            (
                "AUTH_AWS_ATTEMPT_TIMEOUT_MS",
                ATTEMPT_TIMEOUT_MS.to_string(),
            ),
            ("AUTH_AWS_MAX_ATTEMPTS", "3".to_string()),
        ];
        settings.extend(extra.iter().cloned());
        Self::start_with(&settings).await
    }

    /// The server with exactly these settings (besides the endpoint and the per-client
    /// limits, which these tests exceed from 127.0.0.1 and do not test).
    async fn start_with(extra: &[(&str, String)]) -> Rig {
        let proxy = FaultProxy::start().await;
        let mut settings = vec![
            ("AWS_ENDPOINT_URL", proxy.origin().to_string()),
            ("AUTH_CODE_SENDS_PER_IP_PER_HOUR", "100000".to_string()),
            ("AUTH_VERIFY_ATTEMPTS_PER_IP_PER_HOUR", "100000".to_string()),
            ("AUTH_PROVIDER_GRANTS_PER_IP_PER_HOUR", "100000".to_string()),
        ];
        settings.extend(extra.iter().cloned());
        let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let server = Server::start(EXE, Backend::Aws, &pairs).await;
        Rig { proxy, server }
    }

    /// Sends `request` with the case's fault armed. Checks that the fault was met, that the
    /// answer came in time and is a success or a clean `unavailable`, that a single transient
    /// fault was absorbed, and that a needed call that never got through (always failing, or
    /// refused) made the operation fail.
    async fn under(&self, case: &Case, request: impl Future<Output = Reply>) -> Reply {
        self.proxy.inject(case.call.clone(), case.fault, case.times);
        let started = Instant::now();
        let reply = request.await;
        let took = started.elapsed();
        let hits = self.proxy.clear();
        assert!(
            hits > 0,
            "{case}: the operation never made this call, so nothing was tested"
        );
        assert!(
            took < ANSWER_WITHIN,
            "{case}: the answer took {took:?}\n{}",
            self.log()
        );
        match reply.status {
            200 => {
                reply.assert_ok();
            }
            503 => reply.assert_error(503, "unavailable"),
            status => panic!(
                "{case}: expected success or `unavailable`, got {status} {}\n{}",
                reply.body,
                self.log()
            ),
        }
        if case.times == Times::Next(1) && case.fault.transient() {
            assert_eq!(
                reply.status,
                200,
                "{case}: one fault must be absorbed by the retries; got {}\n{}",
                reply.body,
                self.log()
            );
        }
        if !case.needed {
            // The operation succeeds without this call: whatever happens to it, success.
            assert_eq!(
                reply.status,
                200,
                "{case}: the operation does not need this call, yet it answered {}\n{}",
                reply.body,
                self.log()
            );
        }
        let never_through = case.times == Times::Always || !case.fault.transient();
        if never_through && case.needed && !case.fault.forwards() {
            assert_eq!(
                reply.status, 503,
                "{case}: a call the operation needs never got through, yet it answered {}",
                reply.body
            );
        }
        reply
    }

    /// Sends a code (no fault armed); answers its verification id and the code delivered to
    /// `to` (the address as stored).
    async fn code(&self, field: &str, address: &str, to: &str) -> (String, String) {
        let id = self.server.send_code(field, address).await;
        let code = self
            .proxy
            .latest_code(to)
            .unwrap_or_else(|| panic!("no code was delivered to {to}"));
        (id, code)
    }

    /// A verification token for an email, earned without faults.
    async fn verification_token(&self, email: &str) -> String {
        let (id, code) = self.code("email", email, email).await;
        verify(&self.server, &id, &code)
            .await
            .text("verification_token")
    }

    /// The server's last complaints about dependencies, for failure messages.
    fn log(&self) -> String {
        let output = self.server.output();
        let lines: Vec<&str> = output
            .lines()
            .filter(|line| line.contains("dependency failed") || line.contains("WARN"))
            .collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }
}

/// One call an operation makes, and whether the operation cannot succeed without it.
struct Target {
    call: Call,
    needed: bool,
}

fn needed(call: Call) -> Target {
    Target { call, needed: true }
}

fn optional(call: Call) -> Target {
    Target {
        call,
        needed: false,
    }
}

/// A fault on one call, once or always.
#[derive(Clone, Debug)]
struct Case {
    call: Call,
    needed: bool,
    fault: Fault,
    times: Times,
}

impl Case {
    /// Every fault, once and always, on the target; a refusal only once, as it is never
    /// retried (once is always).
    fn of(target: &Target) -> Vec<Case> {
        let mut cases = Vec::new();
        for fault in FAULTS {
            for times in PERSISTENCE {
                if !fault.transient() && times == Times::Always {
                    continue;
                }
                cases.push(Case {
                    call: target.call.clone(),
                    needed: target.needed,
                    fault,
                    times,
                });
            }
        }
        cases
    }
}

impl std::fmt::Display for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let times = match self.times {
            Times::Next(n) => format!("the next {n} time(s)"),
            Times::Always => "every time".to_string(),
        };
        write!(f, "{:?} on {}, {times}", self.fault, self.call)
    }
}

// ---------------------------------------------------------------------------------------------
// The table, read straight from moto

/// Every item but the rate-limit counters and cooldowns, which count attempts, failed ones
/// included, by design.
async fn state(server: &Server) -> BTreeMap<String, Value> {
    table_items(&server.table)
        .await
        .into_iter()
        .filter(|(pk, _)| !pk.starts_with("COUNT#") && !pk.starts_with("COOLDOWN#"))
        .collect()
}

/// What an operation changed in the table.
struct Diff {
    added: Vec<String>,
    removed: Vec<String>,
    changed: Vec<String>,
}

fn diff(before: &BTreeMap<String, Value>, after: &BTreeMap<String, Value>) -> Diff {
    Diff {
        added: after
            .keys()
            .filter(|pk| !before.contains_key(*pk))
            .cloned()
            .collect(),
        removed: before
            .keys()
            .filter(|pk| !after.contains_key(*pk))
            .cloned()
            .collect(),
        changed: after
            .iter()
            .filter(|(pk, item)| before.get(*pk).is_some_and(|old| old != *item))
            .map(|(pk, _)| pk.clone())
            .collect(),
    }
}

impl Diff {
    /// Asserts that nothing changed but items added under `orphans`: after a failure, records
    /// of secrets the operation made but never handed out, which nobody can use.
    #[track_caller]
    fn assert_nothing_but(&self, rig: &Rig, case: &Case, orphans: &[&str]) {
        let stray: Vec<&String> = self
            .added
            .iter()
            .filter(|pk| !orphans.iter().any(|prefix| pk.starts_with(prefix)))
            .collect();
        assert!(
            stray.is_empty() && self.removed.is_empty() && self.changed.is_empty(),
            "{case}: changes beyond new {orphans:?} items: added {:?}, removed {:?}, changed {:?}\n{}",
            self.added,
            self.removed,
            self.changed,
            rig.log()
        );
    }

    /// Asserts that the change is exactly this: these items added, removed and changed, and
    /// nothing else anywhere in the table.
    #[track_caller]
    fn assert_exactly(
        &self,
        rig: &Rig,
        case: &Case,
        added: &[String],
        removed: &[String],
        changed: &[String],
    ) {
        let sorted = |items: &[String]| {
            let mut items = items.to_vec();
            items.sort();
            items
        };
        assert_eq!(
            (
                sorted(&self.added),
                sorted(&self.removed),
                sorted(&self.changed)
            ),
            (sorted(added), sorted(removed), sorted(changed)),
            "{case}: the table changed otherwise than by (added, removed, changed) as expected\n{}",
            rig.log()
        );
    }

    fn added_with(&self, prefix: &str) -> Vec<&String> {
        self.added
            .iter()
            .filter(|pk| pk.starts_with(prefix))
            .collect()
    }
}

/// Whether the table holds provider tokens of WeChat user `name` and every one is spent.
fn provider_tokens_spent(items: &BTreeMap<String, Value>, name: &str) -> bool {
    let subject = format!("unionid-{name}");
    let mut tokens = items
        .iter()
        .filter(|(pk, item)| pk.starts_with("PTOKEN#") && item["subject"] == subject.as_str())
        .peekable();
    tokens.peek().is_some() && tokens.all(|(_, item)| item["used"] == true)
}

/// The `pk` of the one item under `prefix` whose `field` is `value`; fails unless there is
/// exactly one, so that what is said of it is never said of nothing.
#[track_caller]
fn the_one(items: &BTreeMap<String, Value>, prefix: &str, field: &str, value: &str) -> String {
    let matching: Vec<&String> = items
        .iter()
        .filter(|(pk, item)| pk.starts_with(prefix) && item[field] == value)
        .map(|(pk, _)| pk)
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "expected exactly one {prefix} item with {field} {value}: {matching:?}"
    );
    matching[0].clone()
}

/// The `pk` of the session a refresh token belongs to (`<session id>.<user id>.<secret>`).
fn session_pk(refresh_token: &str) -> String {
    let (session, _) = refresh_token
        .split_once('.')
        .expect("a refresh token starts with <session id>.");
    format!("SESSION#{session}")
}

/// The login keys held by an account, as stored.
fn logins_of(items: &BTreeMap<String, Value>, sub: &str) -> Vec<String> {
    items
        .iter()
        .filter(|(pk, item)| pk.starts_with("LOGIN#") && item["user_id"] == sub)
        .map(|(pk, _)| pk.clone())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Calls

async fn sign_in(server: &Server, account: &Account) -> Reply {
    server
        .post(
            "/auth/v1/signin",
            json!({"username": account.username, "password": account.password}),
        )
        .await
}

async fn verify(server: &Server, verification_id: &str, code: &str) -> Reply {
    server
        .post(
            "/auth/v1/verification/verify",
            json!({"verification_id": verification_id, "verification_code": code}),
        )
        .await
}

/// Asserts the credentials work: the access token reads the account.
#[track_caller]
fn assert_credentials_for(reply: &Reply, sub: Option<&str>) {
    let body = reply.assert_ok();
    for field in ["access_token", "refresh_token", "sub"] {
        assert!(body[field].is_string(), "no {field} in {body}");
    }
    if let Some(sub) = sub {
        assert_eq!(body["sub"], sub, "credentials of another account: {body}");
    }
}

async fn assert_signed_in(server: &Server, reply: &Reply) {
    let me = server.me(&reply.text("access_token")).await;
    assert_eq!(me.assert_ok()["sub"], reply.body["sub"]);
}

// ---------------------------------------------------------------------------------------------
// Running the cases

/// Runs `run` on every case of every target, each target on a rig of its own and all targets
/// at once: most of the time goes to waiting out timeouts and backoffs. `setup` runs once per
/// rig, before its cases; its result goes to each of them.
async fn each_target<T, S, SF, R, RF>(
    settings: Vec<(&'static str, String)>,
    targets: Vec<Target>,
    setup: S,
    run: R,
) where
    T: Send + Sync + 'static,
    S: Fn(Arc<Rig>) -> SF + Clone + Send + 'static,
    SF: Future<Output = T> + Send,
    R: Fn(Arc<Rig>, Arc<T>, Case) -> RF + Clone + Send + 'static,
    RF: Future<Output = ()> + Send,
{
    let mut tasks = tokio::task::JoinSet::new();
    for target in targets {
        let (settings, setup, run) = (settings.clone(), setup.clone(), run.clone());
        tasks.spawn(async move {
            let rig = Arc::new(Rig::start(&settings).await);
            let prepared = Arc::new(setup(Arc::clone(&rig)).await);
            for case in Case::of(&target) {
                run(Arc::clone(&rig), Arc::clone(&prepared), case).await;
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(()) => {}
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(err) => panic!("a target's cases did not finish: {err}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Accounts

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_creates_the_whole_account_or_nothing_under_faults() {
    let targets = vec![
        needed(Call::dynamodb_on("UpdateItem", "COUNT#")),
        needed(Call::dynamodb("TransactWriteItems")),
    ];
    each_target(
        vec![],
        targets,
        |_| async {},
        |rig, _, case| async move {
            let s = &rig.server;
            let username = unique("u");
            let request = json!({"username": username, "password": "correct horse battery"});
            let before = state(s).await;
            let mut reply = rig
                .under(&case, s.post("/auth/v1/signup", request.clone()))
                .await;
            let changes = diff(&before, &state(s).await);
            if reply.status == 503 {
                // The account and its session are one transaction: neither stays behind.
                changes.assert_nothing_but(&rig, &case, &[]);
                reply = s.post("/auth/v1/signup", request).await;
            }
            assert_credentials_for(&reply, None);
            // The account, its login key and its session: nothing else.
            let sub = reply.text("sub");
            diff(&before, &state(s).await).assert_exactly(
                &rig,
                &case,
                &[
                    format!("USER#{sub}"),
                    format!("LOGIN#username#{username}"),
                    session_pk(&reply.text("refresh_token")),
                ],
                &[],
                &[],
            );
            assert_signed_in(s, &reply).await;
            let items = state(s).await;
            assert_eq!(
                logins_of(&items, &sub),
                vec![format!("LOGIN#username#{username}")],
                "{case}"
            );
            assert_eq!(items[&format!("USER#{sub}")]["username"], username);
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_starts_a_session_or_is_unavailable_under_faults() {
    let targets = vec![
        needed(Call::dynamodb_on("PutItem", "COOLDOWN#")),
        needed(Call::dynamodb("GetItem")),
        needed(Call::dynamodb_on("PutItem", "SESSION#")),
    ];
    let setup = |rig: Arc<Rig>| async move { rig.server.new_account().await };
    each_target(vec![], targets, setup, |rig, account, case| async move {
        let s = &rig.server;
        let before = state(s).await;
        let mut reply = rig.under(&case, sign_in(s, &account)).await;
        let changes = diff(&before, &state(s).await);
        if reply.status == 503 {
            changes.assert_nothing_but(&rig, &case, &["SESSION#"]);
            reply = sign_in(s, &account).await;
        } else {
            changes.assert_nothing_but(&rig, &case, &["SESSION#"]);
            assert_eq!(changes.added_with("SESSION#").len(), 1, "{case}");
        }
        assert_credentials_for(&reply, Some(&account.sub));
        assert_signed_in(s, &reply).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_replaces_the_token_or_keeps_the_old_one_working_under_faults() {
    // The session is read with its account (whose epoch says whether it is alive).
    let targets = vec![
        needed(Call::dynamodb("BatchGetItem")),
        needed(Call::dynamodb("UpdateItem")),
    ];
    // The account, and the refresh token the client holds now.
    let setup = |rig: Arc<Rig>| async move {
        let account = rig.server.new_account().await;
        let current = Mutex::new(account.refresh_token.clone());
        (account, current)
    };
    each_target(vec![], targets, setup, |rig, held, case| async move {
        let s = &rig.server;
        let (account, current) = &*held;
        let token = current.lock().unwrap().clone();
        let session = session_pk(&token);
        let before = state(s).await;
        let mut reply = rig.under(&case, s.refresh(&token)).await;
        if reply.status == 503 {
            // Never retired without a replacement: the session is as it was, and the token
            // the client still holds works.
            diff(&before, &state(s).await).assert_nothing_but(&rig, &case, &[]);
            reply = s.refresh(&token).await;
        }
        assert_credentials_for(&reply, Some(&account.sub));
        let next = reply.text("refresh_token");
        assert_eq!(session_pk(&next), session, "{case}: a new session");
        let after = state(s).await;
        // The session rotated, and nothing else changed.
        diff(&before, &after).assert_exactly(&rig, &case, &[], &[], std::slice::from_ref(&session));
        let stored = after[&session].clone();
        assert_eq!(stored["revoked"], false, "{case}: the session was revoked");
        assert_ne!(
            stored["refresh_hash"], before[&session]["refresh_hash"],
            "{case}: the token was not replaced"
        );
        assert_signed_in(s, &reply).await;
        // The token handed out is the live one.
        *current.lock().unwrap() = next;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_revokes_the_session_or_leaves_it_alive_under_faults() {
    let targets = vec![
        needed(Call::dynamodb("BatchGetItem")),
        needed(Call::dynamodb("UpdateItem")),
    ];
    let setup = |rig: Arc<Rig>| async move { rig.server.new_account().await };
    each_target(vec![], targets, setup, |rig, account, case| async move {
        let s = &rig.server;
        let signed_in = sign_in(s, &account).await;
        let access_token = signed_in.text("access_token");
        let session = session_pk(&signed_in.text("refresh_token"));
        let sign_out = || s.call("POST", "/auth/v1/user/signout", Some(&access_token), None);
        let before = state(s).await;
        let mut reply = rig.under(&case, sign_out()).await;
        if reply.status == 503 {
            diff(&before, &state(s).await).assert_nothing_but(&rig, &case, &[]);
            s.me(&access_token).await.assert_ok();
            reply = sign_out().await;
        }
        reply.assert_ok();
        let after = state(s).await;
        // This session ended, and nothing else changed (the account's other sessions live).
        diff(&before, &after).assert_exactly(&rig, &case, &[], &[], std::slice::from_ref(&session));
        assert_eq!(after[&session]["revoked"], true, "{case}");
        s.me(&access_token)
            .await
            .assert_error(401, "unauthenticated");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_current_user_is_read_or_unavailable_under_faults() {
    let targets = vec![needed(Call::dynamodb("BatchGetItem"))];
    let setup = |rig: Arc<Rig>| async move { rig.server.new_account().await };
    each_target(vec![], targets, setup, |rig, account, case| async move {
        let s = &rig.server;
        let before = state(s).await;
        let mut reply = rig.under(&case, s.me(&account.access_token)).await;
        diff(&before, &state(s).await).assert_nothing_but(&rig, &case, &[]);
        if reply.status == 503 {
            reply = s.me(&account.access_token).await;
        }
        assert_eq!(reply.assert_ok()["sub"], account.sub.as_str());
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Association

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sudo_grants_a_token_or_is_unavailable_under_faults() {
    let targets = vec![
        needed(Call::dynamodb("BatchGetItem")),
        needed(Call::dynamodb_on("PutItem", "COOLDOWN#")),
        needed(Call::dynamodb_on("UpdateItem", "COUNT#")),
        needed(Call::dynamodb_on("TransactWriteItems", "SUDO#")),
    ];
    let setup = |rig: Arc<Rig>| async move { rig.server.new_account().await };
    each_target(vec![], targets, setup, |rig, account, case| async move {
        let s = &rig.server;
        let sudo = || {
            s.call(
                "POST",
                "/auth/v1/user/sudo",
                Some(&account.access_token),
                Some(json!({"password": account.password})),
            )
        };
        let before = state(s).await;
        let mut reply = rig.under(&case, sudo()).await;
        let changes = diff(&before, &state(s).await);
        if reply.status == 503 {
            // The sudo token and the session's mark are one transaction: nothing stays.
            changes.assert_nothing_but(&rig, &case, &[]);
            reply = sudo().await;
        } else {
            assert_eq!(changes.added_with("SUDO#").len(), 1, "{case}");
            assert_eq!(changes.added.len(), 1, "{case}: {:?}", changes.added);
            assert!(changes.removed.is_empty(), "{case}: {:?}", changes.removed);
            // The session is marked authenticated now (unchanged within its sign-in second).
            assert!(
                changes.changed.len() <= 1
                    && changes.changed.iter().all(|pk| pk.starts_with("SESSION#")),
                "{case}: {:?}",
                changes.changed
            );
        }
        assert!(reply.assert_ok()["sudo_token"].is_string());
    })
    .await;
}

/// Sends a code under each fault: a code is stored (verifiable) only once it was delivered,
/// and the send works again without the fault.
async fn codes_are_stored_only_once_delivered(field: &'static str, targets: Vec<Target>) {
    each_target(
        vec![],
        targets,
        |_| async {},
        move |rig, _, case| async move {
            let s = &rig.server;
            let (address, stored) = if field == "email" {
                let email = unique_email();
                (email.clone(), email)
            } else {
                let phone = unique_phone();
                let stored = e164(&phone);
                (phone, stored)
            };
            let send = || s.post("/auth/v1/verification", json!({ field: address }));
            let before = state(s).await;
            let reply = rig.under(&case, send()).await;
            let changes = diff(&before, &state(s).await);
            // A stored code must be one that was delivered, even if its id never came back.
            changes.assert_nothing_but(&rig, &case, &["VERIF#"]);
            let stored_codes = changes.added_with("VERIF#").len();
            let delivered = rig.proxy.messages_to(&stored).len();
            assert!(stored_codes <= 1, "{case}: {stored_codes} codes stored");
            assert!(
                stored_codes == 0 || delivered > 0,
                "{case}: a code that was never delivered was stored"
            );
            let reply = if reply.status == 503 {
                let again = send().await;
                assert_eq!(
                    again.status, 200,
                    "{case}: after a failed send, sending again is refused: {}",
                    again.body
                );
                again
            } else {
                assert_eq!(stored_codes, 1, "{case}: the code sent was not stored");
                reply
            };
            let id = reply.text("verification_id");
            let code = rig
                .proxy
                .latest_code(&stored)
                .unwrap_or_else(|| panic!("{case}: no code was delivered"));
            verify(s, &id, &code).await.assert_ok();
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_code_is_stored_only_once_delivered_under_faults() {
    codes_are_stored_only_once_delivered(
        "email",
        vec![
            needed(Call::dynamodb("UpdateItem")),
            needed(Call::dynamodb_on("PutItem", "COOLDOWN#")),
            needed(Call::dynamodb("GetItem")),
            needed(Call::SesSendEmail),
            needed(Call::dynamodb_on("PutItem", "VERIF#")),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_code_is_stored_only_once_delivered_under_faults() {
    codes_are_stored_only_once_delivered("phone_number", vec![needed(Call::SnsPublish)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_redeems_the_code_fully_or_not_at_all_under_faults() {
    let targets = vec![
        needed(Call::dynamodb("UpdateItem")),
        needed(Call::dynamodb("GetItem")),
        needed(Call::dynamodb("TransactWriteItems")),
    ];
    each_target(
        vec![],
        targets,
        |_| async {},
        |rig, _, case| async move {
            let s = &rig.server;
            let email = unique_email();
            let (id, code) = rig.code("email", &email, &email).await;
            let before = state(s).await;
            let mut reply = rig.under(&case, verify(s, &id, &code)).await;
            let changes = diff(&before, &state(s).await);
            if reply.status == 503 {
                changes.assert_nothing_but(&rig, &case, &[]);
                reply = verify(s, &id, &code).await;
            } else {
                // The code is spent and one token earned, nothing else.
                assert_eq!(changes.changed, vec![format!("VERIF#{id}")], "{case}");
                assert!(changes.removed.is_empty(), "{case}");
                assert_eq!(changes.added.len(), 1, "{case}");
                assert_eq!(changes.added_with("VTOKEN#").len(), 1, "{case}");
            }
            assert!(reply.assert_ok()["verification_token"].is_string());
            let items = state(s).await;
            assert_eq!(items[&format!("VERIF#{id}")]["used"], true, "{case}");
            let tokens: Vec<&Value> = items
                .iter()
                .filter(|(pk, item)| pk.starts_with("VTOKEN#") && item["address"] == email)
                .map(|(_, item)| item)
                .collect();
            assert_eq!(tokens.len(), 1, "{case}: one code earns one token");
            assert_eq!(tokens[0]["used"], false, "{case}");
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_an_email_happens_fully_or_not_at_all_under_faults() {
    let targets = vec![
        needed(Call::dynamodb("BatchGetItem")),
        needed(Call::dynamodb("TransactWriteItems")),
        // The change stands even when the notice to the old address fails.
        optional(Call::SesSendEmail),
    ];
    // An account with an address to replace (so that binding also sends the old one a
    // notice), its sudo token, and the address bound now.
    let setup = |rig: Arc<Rig>| async move {
        let s = &rig.server;
        let account = s.new_account().await;
        let sudo = s.sudo(&account).await;
        let email = unique_email();
        let token = rig.verification_token(&email).await;
        s.bind_contact(&account, &sudo, "email", &email, &token)
            .await
            .assert_ok();
        (account, sudo, Mutex::new(email))
    };
    each_target(vec![], targets, setup, |rig, held, case| async move {
        let s = &rig.server;
        let (account, sudo, bound) = &*held;
        let old = bound.lock().unwrap().clone();
        let email = unique_email();
        let token = rig.verification_token(&email).await;
        let before = state(s).await;
        let mut reply = rig
            .under(
                &case,
                s.bind_contact(account, sudo, "email", &email, &token),
            )
            .await;
        if reply.status == 503 {
            // The account, its login keys and the verification token are exactly as before.
            diff(&before, &state(s).await).assert_nothing_but(&rig, &case, &[]);
            reply = s.bind_contact(account, sudo, "email", &email, &token).await;
        }
        reply.assert_ok();
        let items = state(s).await;
        // Exactly one verification token was earned for the address, and it is spent.
        let token_pk = the_one(&items, "VTOKEN#", "address", &email);
        assert_eq!(
            items[&token_pk]["used"], true,
            "{case}: the verification token was not spent"
        );
        // The account, its new and old login keys and the token: nothing else.
        diff(&before, &items).assert_exactly(
            &rig,
            &case,
            &[format!("LOGIN#email#{email}")],
            &[format!("LOGIN#email#{old}")],
            &[format!("USER#{}", account.sub), token_pk],
        );
        let user = &items[&format!("USER#{}", account.sub)];
        assert_eq!(user["email"], email, "{case}");
        let mut logins = logins_of(&items, &account.sub);
        logins.sort();
        let mut expected = vec![
            format!("LOGIN#email#{email}"),
            format!("LOGIN#username#{}", account.username),
        ];
        expected.sort();
        assert_eq!(
            logins, expected,
            "{case}: the login keys are not the new ones"
        );
        assert!(
            !items.contains_key(&format!("LOGIN#email#{old}")),
            "{case}: the old address was not released"
        );
        *bound.lock().unwrap() = email;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Passwords

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_password_happens_fully_or_not_at_all_under_faults() {
    let targets = vec![
        needed(Call::dynamodb("BatchGetItem")),
        needed(Call::dynamodb_on("GetItem", "SUDO#")),
        needed(Call::dynamodb("TransactWriteItems")),
    ];
    let setup = |rig: Arc<Rig>| async move { Mutex::new(rig.server.new_account().await) };
    each_target(vec![], targets, setup, |rig, held, case| async move {
        let s = &rig.server;
        let account = held.lock().unwrap().clone();
        // Each case: a fresh sudo token (a change ends them all) and another device.
        let sudo = s.sudo(&account).await;
        let other = sign_in(s, &account).await.text("access_token");
        let new_password = unique("a new passphrase ");
        let change = || {
            s.call(
                "PATCH",
                "/auth/v1/user/password",
                Some(&account.access_token),
                Some(json!({"sudo_token": sudo, "new_password": new_password})),
            )
        };
        let before = state(s).await;
        let mut reply = rig.under(&case, change()).await;
        if reply.status == 503 {
            // Not the account, not its login keys, not a session: all as before.
            diff(&before, &state(s).await).assert_nothing_but(&rig, &case, &[]);
            s.me(&other).await.assert_ok();
            reply = change().await;
        }
        reply.assert_ok();
        // The account, its login key (which repeats the hash and the epoch) and the caller's
        // session (moved to the new epoch): nothing else.
        diff(&before, &state(s).await).assert_exactly(
            &rig,
            &case,
            &[],
            &[],
            &[
                format!("USER#{}", account.sub),
                format!("LOGIN#username#{}", account.username),
                session_pk(&account.refresh_token),
            ],
        );
        s.me(&account.access_token).await.assert_ok();
        s.me(&other).await.assert_error(401, "unauthenticated");
        held.lock().unwrap().password = new_password;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// WeChat

/// The settings of a server whose WeChat is a fake on loopback.
async fn wechat_settings() -> Vec<(&'static str, String)> {
    wechat::settings(&wechat::start().await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_token_is_granted_or_unavailable_under_faults() {
    let targets = vec![
        needed(Call::dynamodb("UpdateItem")),
        needed(Call::dynamodb_on("PutItem", "PTOKEN#")),
    ];
    let settings = wechat_settings().await;
    each_target(
        settings,
        targets,
        |_| async {},
        |rig, _, case| async move {
            let s = &rig.server;
            let name = unique("wx");
            let before = state(s).await;
            let mut reply = rig
                .under(&case, s.provider_token(&format!("ok:{name}")))
                .await;
            let changes = diff(&before, &state(s).await);
            // A provider token nobody was given may stay behind.
            changes.assert_nothing_but(&rig, &case, &["PTOKEN#"]);
            if reply.status == 503 {
                reply = s.provider_token(&format!("ok:{name}")).await;
            } else {
                assert_eq!(changes.added_with("PTOKEN#").len(), 1, "{case}");
            }
            assert!(reply.assert_ok()["provider_token"].is_string());
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_a_provider_happens_fully_or_not_at_all_under_faults() {
    let targets = vec![
        needed(Call::dynamodb("BatchGetItem")),
        needed(Call::dynamodb("GetItem")),
        needed(Call::dynamodb("TransactWriteItems")),
    ];
    let settings = wechat_settings().await;
    each_target(
        settings,
        targets,
        |_| async {},
        |rig, _, case| async move {
            let s = &rig.server;
            let account = s.new_account().await;
            let name = unique("wx");
            let token = s
                .provider_token(&format!("ok:{name}"))
                .await
                .text("provider_token");
            let bind = || {
                s.call(
                    "POST",
                    "/auth/v1/user/provider/bind",
                    Some(&account.access_token),
                    Some(json!({ "provider_token": token })),
                )
            };
            let before = state(s).await;
            let mut reply = rig.under(&case, bind()).await;
            if reply.status == 503 {
                diff(&before, &state(s).await).assert_nothing_but(&rig, &case, &[]);
                reply = bind().await;
            }
            reply.assert_ok();
            let items = state(s).await;
            // Both of WeChat's names of the person (unionid and openid) reserved.
            let keys = [
                format!("LOGIN#provider#wx_open#unionid-{name}"),
                format!("LOGIN#provider-app#wx_open#openid-{name}"),
            ];
            // The login keys added, the account and the provider token changed: nothing else.
            let subject = format!("unionid-{name}");
            diff(&before, &items).assert_exactly(
                &rig,
                &case,
                &keys,
                &[],
                &[
                    format!("USER#{}", account.sub),
                    the_one(&items, "PTOKEN#", "subject", &subject),
                ],
            );
            for key in &keys {
                assert_eq!(items[key]["user_id"], account.sub.as_str(), "{case}");
            }
            let user = &items[&format!("USER#{}", account.sub)];
            assert_eq!(
                user["providers"].as_array().map(Vec::len),
                Some(1),
                "{case}"
            );
            assert!(
                provider_tokens_spent(&items, &name),
                "{case}: the provider token was not spent"
            );
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_with_a_provider_starts_a_session_or_is_unavailable_under_faults() {
    // The provider token and the login key are read together; one transaction spends the
    // token and stores the session.
    let targets = vec![
        needed(Call::dynamodb("GetItem")),
        needed(Call::dynamodb("TransactWriteItems")),
    ];
    // An account with a WeChat identity bound.
    let setup = |rig: Arc<Rig>| async move {
        let s = &rig.server;
        let account = s.new_account().await;
        let name = unique("wx");
        let token = s
            .provider_token(&format!("ok:{name}"))
            .await
            .text("provider_token");
        s.call(
            "POST",
            "/auth/v1/user/provider/bind",
            Some(&account.access_token),
            Some(json!({ "provider_token": token })),
        )
        .await
        .assert_ok();
        (account, name)
    };
    let settings = wechat_settings().await;
    each_target(settings, targets, setup, |rig, held, case| async move {
        let s = &rig.server;
        let (account, name) = &*held;
        let token = s
            .provider_token(&format!("ok:{name}"))
            .await
            .text("provider_token");
        let sign_in = || {
            s.post(
                "/auth/v1/signin/with/provider",
                json!({ "provider_token": token }),
            )
        };
        let before = state(s).await;
        let mut reply = rig.under(&case, sign_in()).await;
        if reply.status == 503 {
            // Unavailable: the token is not spent and no session was stored.
            diff(&before, &state(s).await).assert_nothing_but(&rig, &case, &[]);
            reply = sign_in().await;
        }
        assert_credentials_for(&reply, Some(&account.sub));
        let items = state(s).await;
        // A session started and this provider token spent: nothing else.
        let token_pk = diff(&before, &items)
            .changed
            .into_iter()
            .find(|pk| pk.starts_with("PTOKEN#"))
            .unwrap_or_else(|| panic!("{case}: no provider token was spent"));
        assert_eq!(
            items[&token_pk]["subject"],
            format!("unionid-{name}"),
            "{case}"
        );
        diff(&before, &items).assert_exactly(
            &rig,
            &case,
            &[session_pk(&reply.text("refresh_token"))],
            &[],
            &[token_pk],
        );
        assert_signed_in(s, &reply).await;
        assert!(
            provider_tokens_spent(&items, name),
            "{case}: the provider token was not spent"
        );
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// The budget itself

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_throttled_attempts_are_absorbed_and_a_third_makes_the_call_unavailable() {
    let rig = Rig::start(&[]).await;
    let s = &rig.server;
    let account = s.new_account().await;
    let call = Call::dynamodb("BatchGetItem");

    rig.proxy
        .inject(call.clone(), Fault::Throttle, Times::Next(2));
    s.me(&account.access_token).await.assert_ok();
    assert_eq!(rig.proxy.clear(), 2);

    rig.proxy.inject(call, Fault::Throttle, Times::Next(3));
    s.me(&account.access_token)
        .await
        .assert_error(503, "unavailable");
    assert_eq!(rig.proxy.clear(), 3, "three attempts, no more");
    s.me(&account.access_token).await.assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_default_budget_a_dependency_that_stays_slow_is_unavailable_within_four_seconds() {
    // No AUTH_AWS_* settings: three attempts of at most 1 s each.
    let rig = Rig::start_with(&[]).await;
    let s = &rig.server;
    let account = s.new_account().await;
    rig.proxy.inject(
        Call::dynamodb("BatchGetItem"),
        Fault::Slow(Duration::from_millis(1500)),
        Times::Always,
    );
    let started = Instant::now();
    let reply = s.me(&account.access_token).await;
    let took = started.elapsed();
    let attempts = rig.proxy.clear();
    reply.assert_error(503, "unavailable");
    assert_eq!(attempts, 3, "three attempts");
    assert!(
        took >= Duration::from_millis(2900) && took < Duration::from_secs(4),
        "three attempts of 1 s, with backoff, took {took:?}"
    );
    s.me(&account.access_token).await.assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attempts_and_their_timeout_are_configurable() {
    let rig = Rig::start_with(&[
        ("AUTH_AWS_ATTEMPT_TIMEOUT_MS", "300".to_string()),
        ("AUTH_AWS_MAX_ATTEMPTS", "2".to_string()),
    ])
    .await;
    let s = &rig.server;
    let account = s.new_account().await;
    rig.proxy.inject(
        Call::dynamodb("BatchGetItem"),
        Fault::Slow(Duration::from_secs(1)),
        Times::Always,
    );
    let started = Instant::now();
    let reply = s.me(&account.access_token).await;
    let took = started.elapsed();
    assert_eq!(rig.proxy.clear(), 2, "two attempts");
    reply.assert_error(503, "unavailable");
    assert!(
        took >= Duration::from_millis(550) && took < Duration::from_millis(1500),
        "two attempts of 300 ms, with backoff, took {took:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Deleting the account (issue 14)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_account_removes_all_of_it_or_nothing_under_faults() {
    let targets = vec![
        needed(Call::dynamodb("BatchGetItem")),
        needed(Call::dynamodb("TransactWriteItems")),
        // The account is gone even when the notice to its email fails.
        optional(Call::SesSendEmail),
    ];
    each_target(
        vec![],
        targets,
        |_| async {},
        |rig, _, case| async move {
            let s = &rig.server;
            let account = s.new_account().await;
            let email = unique_email();
            let token = rig.verification_token(&email).await;
            let bind_sudo = s.sudo(&account).await;
            s.bind_contact(&account, &bind_sudo, "email", &email, &token)
                .await
                .assert_ok();
            let bound = state(s).await;
            let sudo = s.sudo(&account).await;
            let before = state(s).await;
            let sudo_pk = diff(&bound, &before).added_with("SUDO#")[0].clone();
            let path = format!("/auth/v1/user/me?sudo_token={sudo}");
            let delete = || s.call("DELETE", &path, Some(&account.access_token), None);
            let mut reply = rig.under(&case, delete()).await;
            if reply.status == 503 {
                // The account, its login keys and the sudo token are exactly as before.
                diff(&before, &state(s).await).assert_nothing_but(&rig, &case, &[]);
                reply = delete().await;
            }
            reply.assert_ok();
            // The account, each of its login keys and the sudo token: nothing else.
            diff(&before, &state(s).await).assert_exactly(
                &rig,
                &case,
                &[],
                &[
                    format!("USER#{}", account.sub),
                    format!("LOGIN#username#{}", account.username),
                    format!("LOGIN#email#{email}"),
                    sudo_pk,
                ],
                &[],
            );
            s.me(&account.access_token)
                .await
                .assert_error(401, "unauthenticated");
        },
    )
    .await;
}

// Sign-in by code and binding a verified address (issue 14)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_by_code_spends_the_token_with_a_new_session_or_neither_under_faults() {
    // The verification token, then the address's login key, are read; one transaction spends
    // the token and stores the session.
    let targets = vec![
        needed(Call::dynamodb_on("GetItem", "VTOKEN#")),
        needed(Call::dynamodb_on("GetItem", "LOGIN#")),
        needed(Call::dynamodb("TransactWriteItems")),
    ];
    // Every case asks the same address for a code.
    let settings = vec![
        ("AUTH_CODE_RESEND_INTERVAL_SECS", "0".to_string()),
        ("AUTH_CODE_SENDS_PER_ADDRESS_PER_HOUR", "1000".to_string()),
    ];
    // An account with an email bound.
    let setup = |rig: Arc<Rig>| async move {
        let s = &rig.server;
        let account = s.new_account().await;
        let sudo = s.sudo(&account).await;
        let email = unique_email();
        let token = rig.verification_token(&email).await;
        s.bind_contact(&account, &sudo, "email", &email, &token)
            .await
            .assert_ok();
        (account, email)
    };
    each_target(settings, targets, setup, |rig, held, case| async move {
        let s = &rig.server;
        let (account, email) = &*held;
        let token = rig.verification_token(email).await;
        let sign_in = || {
            s.post(
                "/auth/v1/signin",
                json!({"username": email, "verification_token": token}),
            )
        };
        let before = state(s).await;
        let mut reply = rig.under(&case, sign_in()).await;
        if reply.status == 503 {
            // Unavailable: the token is not spent and no session was stored.
            diff(&before, &state(s).await).assert_nothing_but(&rig, &case, &[]);
            reply = sign_in().await;
        }
        assert_credentials_for(&reply, Some(&account.sub));
        let items = state(s).await;
        // A session started and this verification token spent: nothing else.
        let token_pk = diff(&before, &items)
            .changed
            .into_iter()
            .find(|pk| pk.starts_with("VTOKEN#"))
            .unwrap_or_else(|| panic!("{case}: no verification token was spent"));
        assert_eq!(items[&token_pk]["used"], true, "{case}");
        diff(&before, &items).assert_exactly(
            &rig,
            &case,
            &[session_pk(&reply.text("refresh_token"))],
            &[],
            &[token_pk],
        );
        assert_signed_in(s, &reply).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_a_verified_address_happens_fully_or_not_at_all_under_faults() {
    let targets = vec![
        needed(Call::dynamodb("BatchGetItem")),
        needed(Call::dynamodb("TransactWriteItems")),
        // The change stands even when the notice to the replaced address fails.
        optional(Call::SesSendEmail),
    ];
    // An anonymous account that bound an email its session verified (so that each bind
    // replaces one, and tells it).
    let setup = |rig: Arc<Rig>| async move {
        let visitor = rig
            .server
            .post("/auth/v1/signin/anonymously", json!({}))
            .await;
        let (sub, access) = (visitor.text("sub"), visitor.text("access_token"));
        let email = unique_email();
        verified_by(&rig, &access, &email).await;
        basic_edit(&rig.server, &access, &email).await.assert_ok();
        (sub, access, Mutex::new(email))
    };
    each_target(vec![], targets, setup, |rig, held, case| async move {
        let s = &rig.server;
        let (sub, access, bound) = &*held;
        let old = bound.lock().unwrap().clone();
        let email = unique_email();
        verified_by(&rig, access, &email).await;
        let before = state(s).await;
        let mut reply = rig.under(&case, basic_edit(s, access, &email)).await;
        if reply.status == 503 {
            // The account, its login keys and the memory are exactly as before.
            diff(&before, &state(s).await).assert_nothing_but(&rig, &case, &[]);
            reply = basic_edit(s, access, &email).await;
        }
        reply.assert_ok();
        let items = state(s).await;
        let memory = format!("VADDR#{sub}#email#{email}");
        assert_eq!(
            items[&memory]["used"], true,
            "{case}: the memory was not spent"
        );
        // The account, its new and old login keys and the memory: nothing else.
        diff(&before, &items).assert_exactly(
            &rig,
            &case,
            &[format!("LOGIN#email#{email}")],
            &[format!("LOGIN#email#{old}")],
            &[format!("USER#{sub}"), memory],
        );
        assert_eq!(items[&format!("USER#{sub}")]["email"], email, "{case}");
        *bound.lock().unwrap() = email;
    })
    .await;
}

/// Asks for a code to `email` with the bearer `access` (as the SDK's `updateUser` does) and
/// verifies it, without faults.
async fn verified_by(rig: &Rig, access: &str, email: &str) {
    let id = rig
        .server
        .call(
            "POST",
            "/auth/v1/verification",
            Some(access),
            Some(json!({ "email": email, "usage": "reauthentication" })),
        )
        .await
        .text("verification_id");
    let code = rig
        .proxy
        .latest_code(email)
        .unwrap_or_else(|| panic!("no code was delivered to {email}"));
    verify(&rig.server, &id, &code).await.assert_ok();
}

/// `updateUser({email})`'s bind, with no token.
async fn basic_edit(s: &Server, access: &str, email: &str) -> Reply {
    s.call(
        "POST",
        "/auth/v1/user/basic/edit",
        Some(access),
        Some(json!({ "email": email })),
    )
    .await
}
