//! Least privilege, proven by running: every function binary serves its operations (the happy
//! paths and the failure paths: a failed send, a refused bind, a retried write, a released
//! lock) through the Runtime API emulator, with all of its AWS traffic through a recording
//! proxy in front of moto. Each recorded request is mapped to the IAM actions AWS would
//! authorise it by (a `TransactWriteItems` by the action of each of its items) and checked
//! against that function's role in `template.yaml`, both ways: every request allowed, and
//! every granted action used. moto's own IAM cannot do this: it authorises DynamoDB against
//! resource `*` and a transaction as one action.

#[allow(dead_code)]
#[path = "../bench/src/emulator.rs"]
mod emulator;
#[allow(dead_code)]
#[path = "../bench/src/process.rs"]
mod process;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};
use test_support::fault_proxy::{Call, Fault, FaultProxy, Seen, Times};
use test_support::server::{unique, unique_email, unique_phone, SENDER};
use test_support::template::{strings_in, Statement, Template};
use test_support::tickets::{self, claims, claims_with, now_ms, TicketKey};
use test_support::{aws, moto, wechat};

use process::{event, FunctionProcess, Invoked};

const PASSWORD: &str = "correct horse battery";
/// The services whose actions the roles grant to reach the service's data.
const CHECKED_SERVICES: &[&str] = &["dynamodb", "ses", "sns", "ssm"];
/// An answer held back past the attempt timeout: the write took effect, its answer is lost,
/// and the function settles what happened with a read.
const LOST_ANSWER: Fault = Fault::Slow(Duration::from_millis(1500));

/// Runs function binaries and keeps, per function, every AWS request it made.
struct Recorder {
    env: Vec<(String, String)>,
    table: String,
    /// The template parameter each SSM parameter of this run stands for, by its name.
    parameters: BTreeMap<String, &'static str>,
    requests: Mutex<BTreeMap<String, Vec<Seen>>>,
}

/// One call of a function: its request, and what to change for it.
struct Step<'a> {
    function: &'a str,
    method: &'a str,
    path: &'a str,
    bearer: Option<&'a str>,
    body: Option<Value>,
    settings: Vec<(&'a str, &'a str)>,
    fault: Option<(Call, Fault)>,
}

fn step<'a>(function: &'a str, method: &'a str, path: &'a str) -> Step<'a> {
    Step {
        function,
        method,
        path,
        bearer: None,
        body: None,
        settings: Vec::new(),
        fault: None,
    }
}

impl<'a> Step<'a> {
    fn bearer(mut self, token: &'a str) -> Self {
        self.bearer = Some(token);
        self
    }

    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    fn setting(mut self, name: &'a str, value: &'a str) -> Self {
        self.settings.push((name, value));
        self
    }

    /// The first matching request fails this way.
    fn fault(mut self, call: Call, fault: Fault) -> Self {
        self.fault = Some((call, fault));
        self
    }
}

impl Recorder {
    /// Starts the step's function cold, with its own recording proxy, and sends it the request.
    async fn run(&self, step: Step<'_>) -> Invoked {
        let proxy = FaultProxy::start().await;
        if let Some((call, fault)) = step.fault.clone() {
            proxy.inject(call, fault, Times::Next(1));
        }
        let mut env = self.env.clone();
        env.push(("AWS_ENDPOINT_URL".into(), proxy.origin().to_string()));
        env.extend(
            step.settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let bin = Path::new(env!("CARGO_BIN_EXE_signup")).with_file_name(step.function);
        let function = FunctionProcess::start(&bin, step.function, &env, None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let request = event(
            step.method,
            step.path,
            step.bearer,
            step.body.as_ref(),
            "198.51.100.9",
        );
        let invoked = function
            .invoke(&request)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        function.stop().await;
        if step.fault.is_some() {
            assert!(
                proxy.clear() > 0,
                "{}: the fault met no request",
                step.function
            );
        }
        self.requests
            .lock()
            .unwrap()
            .entry(step.function.to_string())
            .or_default()
            .extend(proxy.requests());
        invoked
    }

    async fn ok(&self, step: Step<'_>) -> Value {
        let what = format!("{} {} ({})", step.method, step.path, step.function);
        let invoked = self.run(step).await;
        assert_eq!(invoked.status, 200, "{what}: {}", invoked.body);
        invoked.body
    }

    async fn refused(&self, step: Step<'_>, status: u16) -> Value {
        let what = format!("{} {} ({})", step.method, step.path, step.function);
        let invoked = self.run(step).await;
        assert_eq!(invoked.status, status, "{what}: {}", invoked.body);
        invoked.body
    }

    /// The IAM actions of every request each function made.
    fn actions_used(&self) -> BTreeMap<String, BTreeSet<String>> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|(function, requests)| {
                let actions = requests
                    .iter()
                    .flat_map(|seen| actions_of(seen, &self.table, &self.parameters))
                    .collect();
                (function.clone(), actions)
            })
            .collect()
    }
}

/// The IAM actions AWS authorises a request by. A `TransactWriteItems` needs the action of
/// each of its items, on the table each names. An SSM read is told apart by its parameter:
/// `ssm:GetParameter@<template parameter naming it>`, as roles grant it per parameter.
fn actions_of(
    seen: &Seen,
    table: &str,
    parameters: &BTreeMap<String, &'static str>,
) -> Vec<String> {
    let body = || -> Value {
        serde_json::from_str(&seen.body).unwrap_or_else(|_| panic!("a JSON body: {}", seen.body))
    };
    let on_table = |request: &Value| {
        assert_eq!(
            request["TableName"].as_str(),
            Some(table),
            "a DynamoDB request on another table: {request}"
        );
    };
    if let Some(target) = &seen.target {
        if let Some(operation) = target.strip_prefix("DynamoDB_20120810.") {
            let request = body();
            return match operation {
                "TransactWriteItems" => request["TransactItems"]
                    .as_array()
                    .expect("TransactItems")
                    .iter()
                    .map(|item| {
                        let (kind, part) = item
                            .as_object()
                            .and_then(|o| o.iter().next())
                            .expect("one kind of write per item");
                        on_table(part);
                        match kind.as_str() {
                            "Put" => "dynamodb:PutItem",
                            "Update" => "dynamodb:UpdateItem",
                            "Delete" => "dynamodb:DeleteItem",
                            "ConditionCheck" => "dynamodb:ConditionCheckItem",
                            other => panic!("a transaction item of kind {other}"),
                        }
                        .to_string()
                    })
                    .collect(),
                "BatchGetItem" => {
                    let tables = request["RequestItems"].as_object().expect("RequestItems");
                    assert!(
                        tables.keys().all(|name| name == table),
                        "a batch on another table: {request}"
                    );
                    vec!["dynamodb:BatchGetItem".into()]
                }
                other => {
                    on_table(&request);
                    vec![format!("dynamodb:{other}")]
                }
            };
        }
        if let Some(operation) = target.strip_prefix("AmazonSSM.") {
            let request = body();
            let name = request["Name"].as_str().expect("a parameter name");
            let parameter = parameters
                .get(name)
                .unwrap_or_else(|| panic!("an SSM parameter this run did not make: {name}"));
            return vec![format!("ssm:{operation}@{parameter}")];
        }
        panic!("an AWS request this check does not know: target {target}");
    }
    if seen.path == "/v2/email/outbound-emails" {
        return vec!["ses:SendEmail".into()];
    }
    if seen.body.split('&').any(|pair| pair == "Action=Publish") {
        return vec!["sns:Publish".into()];
    }
    panic!(
        "an AWS request this check does not know: {} {} {}",
        seen.method, seen.path, seen.body
    );
}

/// What each function's role allows of the checked services, net of its denials of them.
fn actions_granted() -> BTreeMap<String, BTreeSet<String>> {
    let template = Template::load();
    template
        .functions()
        .iter()
        .map(|function| {
            let statements = template.function_statements(function);
            let of = |allow: bool| -> BTreeSet<String> {
                statements
                    .iter()
                    .filter(|s| if allow { s.allows() } else { s.denies() })
                    .filter(|s| {
                        // A denial of some resources only (SNS topics) takes nothing away
                        // from what is allowed elsewhere (SMS to phone numbers).
                        allow || s.resources().iter().any(|r| r.as_str() == Some("*"))
                    })
                    .flat_map(|s| {
                        s.actions()
                            .into_iter()
                            .flat_map(|action| per_parameter(&action, s))
                            .collect::<Vec<_>>()
                    })
                    .filter(|action| {
                        action
                            .split_once(':')
                            .is_some_and(|(service, _)| CHECKED_SERVICES.contains(&service))
                    })
                    .collect()
            };
            let denied = of(false);
            let granted = of(true).difference(&denied).cloned().collect();
            (function.binary.clone(), granted)
        })
        .collect()
}

/// An SSM action as granted per parameter (`ssm:GetParameter@JwtPrivateKeyParameterName`), from
/// the `${...ParameterName}` in each resource ARN; other actions as they are.
fn per_parameter(action: &str, statement: &Statement) -> Vec<String> {
    if !action.starts_with("ssm:") {
        return vec![action.to_string()];
    }
    let mut texts = Vec::new();
    for resource in statement.resources() {
        strings_in(&resource, &mut texts);
    }
    texts
        .iter()
        .filter_map(|text| {
            let start = text.find(":parameter${")? + ":parameter${".len();
            let name = &text[start..text[start..].find('}')? + start];
            Some(format!("{action}@{name}"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_uses_exactly_what_its_role_grants() {
    let store = moto::fresh_store("iam").await;
    aws::verify_sender(SENDER).await;
    let wechat_origin = wechat::start().await;
    let key_parameter = format!("/iam/{}/jwt", unique("k"));
    let verification_parameter = format!("/iam/{}/jwt-verification", unique("v"));
    let hash_parameter = format!("/iam/{}/hash", unique("h"));
    let wechat_parameter = format!("/iam/{}/wechat", unique("w"));
    let ticket_key = TicketKey::generate("iam-key");
    let tickets_parameter = format!("/iam/{}/custom-login", unique("c"));
    aws::put_secure_parameter(&tickets_parameter, &tickets::keys_setting(&[&ticket_key])).await;
    aws::put_secure_parameter(&key_parameter, &aws::p256_pem()).await;
    aws::put_secure_parameter(&verification_parameter, &aws::ed25519_pem()).await;
    let hash_secret = unique("a secret hash key of some length ");
    aws::put_secure_parameter(&hash_parameter, &hash_secret).await;
    let parameters = BTreeMap::from([
        (key_parameter.clone(), "JwtPrivateKeyParameterName"),
        (
            verification_parameter.clone(),
            "JwtVerificationKeysParameterName",
        ),
        (hash_parameter.clone(), "SecretHashKeyParameterName"),
        (wechat_parameter.clone(), "WxOpenAppSecretParameterName"),
        (tickets_parameter.clone(), "CustomLoginKeysParameterName"),
    ]);
    let mut env: Vec<(String, String)> = vec![
        ("AUTH_TABLE_NAME".into(), store.table().to_string()),
        ("AUTH_EMAIL_FROM".into(), SENDER.into()),
        ("AUTH_JWT_PRIVATE_KEY_PARAMETER".into(), key_parameter),
        ("AUTH_SECRET_HASH_KEY_PARAMETER".into(), hash_parameter),
        (
            "AUTH_JWT_VERIFICATION_KEYS_PARAMETER".into(),
            verification_parameter,
        ),
        ("AUTH_CODE_RESEND_INTERVAL_SECS".into(), "0".into()),
        ("AUTH_ENV_ID".into(), tickets::ENV_ID.into()),
        ("AUTH_CUSTOM_LOGIN_KEYS_PARAMETER".into(), tickets_parameter),
    ];
    for (name, value) in wechat::settings(&wechat_origin) {
        if name == "AUTH_WX_OPEN_APP_SECRET" {
            aws::put_secure_parameter(&wechat_parameter, &value).await;
            env.push((
                "AUTH_WX_OPEN_APP_SECRET_PARAMETER".into(),
                wechat_parameter.clone(),
            ));
        } else {
            env.push((name.to_string(), value));
        }
    }
    let run = Recorder {
        env,
        table: store.table().to_string(),
        parameters,
        requests: Mutex::new(BTreeMap::new()),
    };

    // An account, signed in; a right password after no free failures takes the lock and
    // releases it.
    let username = unique("iam");
    let account = json!({"username": username, "password": PASSWORD});
    let signed_up = run
        .ok(step("signup", "POST", "/auth/v1/signup")
            .body(account.clone())
            .fault(Call::dynamodb("TransactWriteItems"), LOST_ANSWER))
        .await;
    run.refused(
        step("signup", "POST", "/auth/v1/signup").body(account.clone()),
        409,
    )
    .await;
    let signed_in = run
        .ok(step("signin", "POST", "/auth/v1/signin")
            .body(account.clone())
            .setting("AUTH_PASSWORD_FREE_FAILURES", "0"))
        .await;
    let access = signed_in["access_token"].as_str().unwrap().to_string();
    run.ok(step("user-me", "GET", "/auth/v1/user/me").bearer(&access))
        .await;
    let sudo = run
        .ok(step("sudo", "POST", "/auth/v1/user/sudo")
            .bearer(&access)
            .body(json!({"password": PASSWORD}))
            .setting("AUTH_PASSWORD_FREE_FAILURES", "0"))
        .await;
    let sudo = sudo["sudo_token"].as_str().unwrap().to_string();

    // Codes: a failed send (the resend gap released, the quota given back), an email, SMS.
    let email = unique_email();
    run.refused(
        step("verification", "POST", "/auth/v1/verification")
            .body(json!({ "email": email }))
            .fault(Call::SesSendEmail, Fault::Reject),
        503,
    )
    .await;
    let verified = |address: Value, to: String| {
        let run = &run;
        async move {
            let sent = run
                .ok(step("verification", "POST", "/auth/v1/verification").body(address))
                .await;
            let id = sent["verification_id"].clone();
            run.refused(
                step("verify", "POST", "/auth/v1/verification/verify")
                    .body(json!({"verification_id": id, "verification_code": "000000"})),
                400,
            )
            .await;
            let code = aws::latest_code(&to).await;
            let token = run
                .ok(step("verify", "POST", "/auth/v1/verification/verify")
                    .body(json!({"verification_id": id, "verification_code": code})))
                .await;
            token["verification_token"].as_str().unwrap().to_string()
        }
    };
    let email_token = verified(json!({ "email": email }), email.clone()).await;
    let first_phone = unique_phone();
    let second_phone = unique_phone();
    let e164 = test_support::server::e164;
    let first_phone_token =
        verified(json!({ "phone_number": first_phone }), e164(&first_phone)).await;

    // Binding: a retried transaction, a refused bind, a replaced phone (its notice by SMS).
    let bind = |field: &str, address: &str, token: &str| {
        step("bind-contact", "PATCH", "/auth/v1/user/contact")
            .bearer(&access)
            .body(json!({"sudo_token": sudo, field: address, "verification_token": token}))
    };
    run.ok(bind("email", &email, &email_token)
        .fault(Call::dynamodb("TransactWriteItems"), Fault::Throttle))
        .await;
    run.refused(bind("email", &email, &email_token), 403).await;
    run.ok(bind("phone_number", &first_phone, &first_phone_token))
        .await;
    let second_phone_token =
        verified(json!({ "phone_number": second_phone }), e164(&second_phone)).await;
    run.ok(bind("phone_number", &second_phone, &second_phone_token))
        .await;
    // A replaced email hears of it by email; this bind's answer is lost and settled.
    let new_email = unique_email();
    let new_email_token = verified(json!({ "email": new_email }), new_email.clone()).await;
    run.ok(bind("email", &new_email, &new_email_token)
        .fault(Call::dynamodb("TransactWriteItems"), LOST_ANSWER))
        .await;
    let email = new_email;
    // A code to the caller's own address (`CUR_USER`) reads the caller's session.
    run.ok(step("verification", "POST", "/auth/v1/verification")
        .bearer(&access)
        .body(json!({"email": email, "target": "CUR_USER"})))
        .await;

    // Sudo by a code to an own address.
    let own_code = verified(json!({ "email": email }), email.clone()).await;
    run.ok(step("sudo", "POST", "/auth/v1/user/sudo")
        .bearer(&access)
        .body(json!({ "verification_token": own_code })))
        .await;
    run.refused(
        step("sudo", "POST", "/auth/v1/user/sudo")
            .bearer(&access)
            .body(json!({"password": "a wrong password"})),
        400,
    )
    .await;

    // Sign-up with a proven address.
    let other_email = unique_email();
    let other_token = verified(json!({ "email": other_email }), other_email.clone()).await;
    let other = run
        .ok(step("signup", "POST", "/auth/v1/signup").body(json!({
            "email": other_email,
            "verification_token": other_token,
            "password": PASSWORD,
        })))
        .await;
    let other_access = other["access_token"].as_str().unwrap().to_string();

    // The profile: a first username reserved (this edit's answer is lost and settled), then
    // replaced (the old one released); an address change without a verified code, refused.
    run.ok(step("edit-profile", "POST", "/auth/v1/user/basic/edit")
        .bearer(&other_access)
        .body(json!({"nickname": "Iam", "gender": "FEMALE", "username": unique("first")}))
        .fault(Call::dynamodb("TransactWriteItems"), LOST_ANSWER))
        .await;
    run.ok(step("edit-profile", "PATCH", "/auth/v1/user/profile")
        .bearer(&other_access)
        .body(json!({"username": unique("second")})))
        .await;
    run.refused(
        step("edit-profile", "POST", "/auth/v1/user/basic/edit")
            .bearer(&other_access)
            .body(json!({ "email": unique_email() })),
        403,
    )
    .await;

    // Sign-in by code: refused for a made-up token, and for an address without account
    // (nothing spent); then the bound email's code signs in, its answer lost and settled.
    run.refused(
        step("signin", "POST", "/auth/v1/signin")
            .body(json!({"username": "", "verification_token": "made-up"})),
        403,
    )
    .await;
    let nobodys = unique_email();
    let nobodys_token = verified(json!({ "email": nobodys }), nobodys.clone()).await;
    run.refused(
        step("signin", "POST", "/auth/v1/signin")
            .body(json!({"username": nobodys, "verification_token": nobodys_token})),
        404,
    )
    .await;
    let by_code = verified(json!({ "email": email }), email.clone()).await;
    run.ok(step("signin", "POST", "/auth/v1/signin")
        .body(json!({"username": email, "verification_token": by_code}))
        .fault(Call::dynamodb("TransactWriteItems"), LOST_ANSWER))
        .await;

    // Anonymous: refused over the client's sign-ups, then an account; upgraded by codes its
    // own session asked for (an email, then a phone replaced by SMS notice, an email replaced
    // by email notice), once refused for an address it did not verify.
    run.refused(
        step("signin-anonymously", "POST", "/auth/v1/signin/anonymously")
            .body(json!({}))
            .setting("AUTH_SIGNUPS_PER_IP_PER_HOUR", "0"),
        429,
    )
    .await;
    let visitor = run
        .ok(step("signin-anonymously", "POST", "/auth/v1/signin/anonymously").body(json!({})))
        .await;
    let visitor = visitor["access_token"].as_str().unwrap().to_string();
    let verified_by_visitor = |address: Value, to: String| {
        let (run, visitor) = (&run, &visitor);
        async move {
            let sent = run
                .ok(step("verification", "POST", "/auth/v1/verification")
                    .bearer(visitor)
                    .body(address))
                .await;
            let code = aws::latest_code(&to).await;
            run.ok(step("verify", "POST", "/auth/v1/verification/verify").body(
                json!({"verification_id": sent["verification_id"], "verification_code": code}),
            ))
            .await;
        }
    };
    let edit = |body: Value| {
        step("edit-profile", "POST", "/auth/v1/user/basic/edit")
            .bearer(&visitor)
            .body(body)
    };
    run.refused(edit(json!({ "email": unique_email() })), 403)
        .await;
    let (first_email, second_email) = (unique_email(), unique_email());
    for (field, address, to) in [
        ("email", first_email.clone(), first_email.clone()),
        ("phone", unique_phone(), String::new()),
        ("phone", unique_phone(), String::new()),
        ("email", second_email.clone(), second_email.clone()),
    ] {
        let (wire, to) = if field == "phone" {
            ("phone_number", e164(&address))
        } else {
            ("email", to)
        };
        verified_by_visitor(json!({ wire: address }), to).await;
        let answer_lost = address == first_email;
        let mut request = edit(json!({ field: address }));
        if answer_lost {
            request = request.fault(Call::dynamodb("TransactWriteItems"), LOST_ANSWER);
        }
        run.ok(request).await;
    }

    // WeChat: a grant (the app secret from SSM), bind (notices by email and SMS), sign in,
    // list, unbind.
    let grant = |name: &str| {
        step("provider-token", "POST", "/auth/v1/provider/token")
            .body(json!({"provider_id": "wx_open", "provider_code": format!("ok:{name}")}))
    };
    let wx = unique("wx");
    let granted = run.ok(grant(&wx)).await;
    run.ok(step("bind-provider", "POST", "/auth/v1/user/provider/bind")
        .bearer(&access)
        .body(json!({"provider_token": granted["provider_token"]})))
        .await;
    let again = run.ok(grant(&wx)).await;
    run.ok(step(
        "signin-with-provider",
        "POST",
        "/auth/v1/signin/with/provider",
    )
    .body(json!({"provider_token": again["provider_token"]})))
        .await;
    run.ok(step("list-providers", "GET", "/auth/v1/user/provider").bearer(&access))
        .await;
    run.ok(step(
        "unbind-provider",
        "DELETE",
        "/auth/v1/user/provider/wx_open",
    )
    .bearer(&access)
    .fault(Call::dynamodb("TransactWriteItems"), LOST_ANSWER))
        .await;
    // A provider identity nobody has signs up with its provider token.
    let newcomer = run.ok(grant(&unique("wx"))).await;
    run.ok(step("signup", "POST", "/auth/v1/signup")
        .body(json!({"provider_token": newcomer["provider_token"]})))
        .await;

    // Sessions: a refresh, a replay (which revokes), a revocation, a sign-out.
    let refresh_token = signed_up["refresh_token"].clone();
    let refresh = |token: Value| {
        step("token", "POST", "/auth/v1/token")
            .body(json!({"grant_type": "refresh_token", "refresh_token": token}))
            .setting("AUTH_REFRESH_REUSE_GRACE_SECS", "0")
    };
    run.ok(refresh(refresh_token.clone())).await;
    run.refused(refresh(refresh_token), 400).await;
    run.ok(step("revoke", "POST", "/auth/v1/revoke")
        .body(json!({ "token": signed_in["refresh_token"] })))
        .await;
    let third = run
        .ok(step("signin", "POST", "/auth/v1/signin").body(account))
        .await;
    // A refresh token issued before they named the account (`<session>.<secret>`).
    let named = third["refresh_token"].as_str().unwrap();
    let (session, rest) = named.split_once('.').unwrap();
    let (_, secret) = rest.split_once('.').unwrap();
    run.ok(refresh(json!(format!("{session}.{secret}")))).await;
    run.ok(step("revoke", "POST", "/auth/v1/user/signout")
        .bearer(third["access_token"].as_str().unwrap()))
        .await;

    // Deleting the account (its email and phone hear of it by email and SMS): refused without
    // a live sudo token; then deleted, with the transaction's answer lost and settled.
    let last = run
        .ok(step("signin", "POST", "/auth/v1/signin")
            .body(json!({"username": username, "password": PASSWORD})))
        .await;
    let last_access = last["access_token"].as_str().unwrap().to_string();
    let last_sudo = run
        .ok(step("sudo", "POST", "/auth/v1/user/sudo")
            .bearer(&last_access)
            .body(json!({ "password": PASSWORD })))
        .await;
    run.refused(
        step(
            "delete-user",
            "DELETE",
            "/auth/v1/user/me?sudo_token=%5Bobject%20Object%5D",
        )
        .bearer(&last_access),
        403,
    )
    .await;
    let delete_path = format!(
        "/auth/v1/user/me?sudo_token={}",
        last_sudo["sudo_token"].as_str().unwrap()
    );
    run.ok(step("delete-user", "DELETE", &delete_path)
        .bearer(&last_access)
        .fault(Call::dynamodb("TransactWriteItems"), LOST_ANSWER))
        .await;

    // The public keys and the discovery document.
    let keys = run
        .ok(step("jwks", "GET", "/auth/v1/.well-known/jwks.json"))
        .await;
    assert_eq!(keys["keys"][0]["alg"], "ES256");
    run.ok(step(
        "jwks",
        "GET",
        "/auth/v1/.well-known/openid-configuration",
    ))
    .await;

    // Passwords, on an account of their own (they end its other sessions), with an email and
    // a phone bound so that each notice goes by SES and by SNS.
    let owner = json!({"username": unique("pw"), "password": PASSWORD});
    let owned = run
        .ok(step("signup", "POST", "/auth/v1/signup").body(owner.clone()))
        .await;
    let owner_access = owned["access_token"].as_str().unwrap().to_string();
    let owner_sudo = run
        .ok(step("sudo", "POST", "/auth/v1/user/sudo")
            .bearer(&owner_access)
            .body(json!({"password": PASSWORD})))
        .await;
    let owner_sudo = owner_sudo["sudo_token"].as_str().unwrap().to_string();
    let owner_email = unique_email();
    let owner_phone = unique_phone();
    for (field, address, to) in [
        ("email", owner_email.clone(), owner_email.clone()),
        ("phone_number", owner_phone.clone(), e164(&owner_phone)),
    ] {
        let token = verified(json!({ field: address }), to).await;
        run.ok(step("bind-contact", "PATCH", "/auth/v1/user/contact")
            .bearer(&owner_access)
            .body(json!({"sudo_token": owner_sudo, field: address, "verification_token": token})))
            .await;
    }
    let change = |new_password: &str| {
        step("change-password", "PATCH", "/auth/v1/user/password")
            .bearer(&owner_access)
            .body(json!({"sudo_token": owner_sudo, "new_password": new_password}))
    };
    run.ok(change("a new passphrase for iam")).await;
    // The change ended every sudo token of the account, this one too.
    run.refused(change("yet another passphrase"), 403).await;
    // A reset: refused with a token for another address, then done with the right one.
    let foreign_email = unique_email();
    let foreign = verified(json!({ "email": foreign_email }), foreign_email.clone()).await;
    let reset = |token: &str| {
        step("reset-password", "POST", "/auth/v1/reset").body(
            json!({"email": owner_email, "new_password": PASSWORD, "verification_token": token}),
        )
    };
    run.refused(reset(&foreign), 403).await;
    let recovery = verified(json!({ "email": owner_email }), owner_email.clone()).await;
    run.ok(reset(&recovery)).await;
    // Signing out everywhere; its answer is lost and settled. Then the session is over.
    let again = run
        .ok(step("signin", "POST", "/auth/v1/signin").body(owner))
        .await;
    let again = again["access_token"].as_str().unwrap().to_string();
    let revoke_all = || step("revoke-all", "DELETE", "/auth/v1/user/revoke/all").bearer(&again);
    run.ok(revoke_all().fault(Call::dynamodb("TransactWriteItems"), LOST_ANSWER))
        .await;
    run.refused(revoke_all(), 401).await;

    // Custom login: a forged ticket is refused (and counted); the first ticket of a uid makes
    // its account, the answer lost and settled; a ticket whose session cannot be written is
    // taken back, and signs in when presented again.
    let custom = |ticket: String| {
        step("signin-custom", "POST", "/auth/v1/signin/custom")
            .body(json!({"provider_id": "custom", "ticket": ticket}))
    };
    let employee = unique("Emp#");
    let forger = TicketKey::generate("iam-key");
    run.refused(custom(forger.mint(&claims(&employee))), 400)
        .await;
    run.ok(custom(ticket_key.mint(&claims(&employee)))
        .fault(Call::dynamodb("TransactWriteItems"), LOST_ANSWER))
        .await;
    let later = ticket_key.mint(&claims_with(&employee, json!({"iat": now_ms() - 1})));
    run.refused(
        custom(later.clone()).fault(Call::dynamodb_on("PutItem", "SESSION#"), Fault::Reject),
        503,
    )
    .await;
    run.ok(custom(later)).await;

    let used = run.actions_used();
    let granted = actions_granted();
    let functions: BTreeSet<&str> = shared::http::routes::functions().into_iter().collect();
    assert_eq!(
        used.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        functions,
        "every function ran"
    );
    let mut problems = Vec::new();
    for function in &functions {
        let used = &used[*function];
        let granted = granted
            .get(*function)
            .unwrap_or_else(|| panic!("{function} is not in the template"));
        let denied: Vec<_> = used.difference(granted).collect();
        let unused: Vec<_> = granted.difference(used).collect();
        if !denied.is_empty() {
            problems.push(format!(
                "{function} makes calls its role does not allow: {denied:?}"
            ));
        }
        if !unused.is_empty() {
            problems.push(format!(
                "{function}'s role grants what it never uses: {unused:?}"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n(used: {used:#?})",
        problems.join("\n")
    );
}
