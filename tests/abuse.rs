//! The limits as an attacker meets them: bursts of simultaneous requests released together,
//! many client addresses (all of 127.0.0.0/8 is this machine), guessed and replayed tokens.
//! Every scenario runs on the embedded store with the outbox and on DynamoDB, SES and SNS
//! through moto_server, against the real `local-api` binary.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use test_support::server::{
    e164, unique, unique_email, unique_phone, Account, Backend, Reply, Server,
};
use test_support::wechat;
use tokio::sync::Barrier;

const EXE: &str = env!("CARGO_BIN_EXE_local-api");

test_support::on_both_backends!(
    simultaneous_wrong_passwords_for_one_name_are_held_to_the_free_failures_plus_one,
    simultaneous_wrong_sudo_passwords_for_one_account_are_held_to_the_free_failures_plus_one,
    a_right_password_gives_its_attempt_back,
    failed_sign_ins_are_limited_per_client_whatever_the_names,
    sign_ups_are_limited_per_client,
    a_made_up_refresh_secret_for_a_known_session_changes_nothing,
    two_tabs_refreshing_at_once_stay_signed_in_but_a_late_replay_ends_the_session,
    a_token_two_rotations_old_ends_the_session_even_within_the_grace,
    sessions_end_at_their_maximum_lifetime_however_often_refreshed,
    a_client_over_its_limit_takes_nothing_from_the_victims_quota,
    refused_code_requests_from_many_clients_take_nothing_from_the_address,
    binding_or_unbinding_a_provider_needs_a_recent_sign_in_or_sudo,
    sms_goes_only_to_allowed_countries_and_within_the_deployment_budget,
    anonymous_sign_ins_are_limited_per_client_not_across_clients,
    failed_code_sign_ins_are_limited_per_client_whatever_the_tokens,
    thirty_password_changes_reach_each_address_five_times_and_codes_still_go_out,
    notices_take_at_most_their_share_of_each_channels_budget_and_codes_keep_the_rest,
    a_hundred_simultaneous_username_probes_from_one_account_judge_ten,
    username_probes_from_one_client_are_limited_across_its_accounts,
);

/// The embedded store's half of this is in the store contract
/// (`a_sign_ups_session_is_stored_with_its_account_or_not_at_all`): only a table can be
/// searched for sessions no account lists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sign_up_leaves_no_session_in_the_table() {
    let server = start(Backend::Aws, &[]).await;
    let taken = server.new_account().await;
    let sessions = || test_support::aws::count_items_with_prefix(&server.table, "SESSION#");
    let before = sessions().await;
    assert_eq!(before, 1, "the sign-up's own session");
    for _ in 0..5 {
        server
            .post(
                "/auth/v1/signup",
                json!({"username": taken.username, "password": "another password"}),
            )
            .await
            .assert_error(409, "already_exists");
    }
    assert_eq!(sessions().await, before);
}

/// The n-th client address of a group of 254 (group 1 is `127.0.1.x`, ...).
fn client(group: u8, n: usize) -> IpAddr {
    IpAddr::from([127, 0, group, (n % 254 + 1) as u8])
}

/// Sends every request at once: each waits at a barrier until all are ready.
async fn simultaneously<F, Fut>(count: usize, request: F) -> Vec<Reply>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Reply> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(count));
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            let reply = request(i);
            tokio::spawn(async move {
                barrier.wait().await;
                reply.await
            })
        })
        .collect();
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.expect("a request task"));
    }
    replies
}

/// A second client of the same server (a request future must own what it uses).
fn post_from(
    server: &Server,
    ip: IpAddr,
    path: &str,
    body: Value,
) -> impl std::future::Future<Output = Reply> + Send + 'static {
    let origin = server.origin.clone();
    let path = path.to_string();
    async move { Server::post_to(&origin, Some(ip), None, &path, body).await }
}

fn bearer_post(
    server: &Server,
    token: &str,
    path: &str,
    body: Value,
) -> impl std::future::Future<Output = Reply> + Send + 'static {
    let origin = server.origin.clone();
    let (token, path) = (token.to_string(), path.to_string());
    async move { Server::post_to(&origin, None, Some(&token), &path, body).await }
}

/// Counts answers by (status, error); panics on anything but the expected kinds.
fn tally(replies: &[Reply], judged: (u16, &str)) -> (usize, usize) {
    let (mut evaluated, mut refused) = (0, 0);
    for reply in replies {
        match (reply.status, reply.error()) {
            status if status == judged => evaluated += 1,
            (429, "resource_exhausted") => {
                let retry_after: u64 = reply.headers["retry-after"]
                    .to_str()
                    .expect("Retry-After is text")
                    .parse()
                    .expect("Retry-After is whole seconds");
                assert!(retry_after >= 1, "Retry-After {retry_after}");
                refused += 1;
            }
            _ => panic!("unexpected answer {}: {}", reply.status, reply.body),
        }
    }
    (evaluated, refused)
}

async fn start(backend: Backend, settings: &[(&str, &str)]) -> Server {
    Server::start(EXE, backend, settings).await
}

async fn simultaneous_wrong_passwords_for_one_name_are_held_to_the_free_failures_plus_one(
    backend: Backend,
) {
    // Defaults: 5 free failures per name. Each request comes from a client of its own, so
    // no per-client limit is what stops them.
    let server = start(backend, &[]).await;
    let account = server.new_account().await;
    let burst = 40;
    let replies = simultaneously(burst, |i| {
        post_from(
            &server,
            client(1, i),
            "/auth/v1/signin",
            json!({"username": account.username, "password": format!("wrong guess {i}")}),
        )
    })
    .await;
    let (evaluated, refused) = tally(&replies, (400, "invalid_username_or_password"));
    assert!(
        evaluated <= 6,
        "{evaluated} of {burst} simultaneous wrong passwords were checked; at most 5 + 1 may be"
    );
    assert_eq!(evaluated + refused, burst);
}

async fn simultaneous_wrong_sudo_passwords_for_one_account_are_held_to_the_free_failures_plus_one(
    backend: Backend,
) {
    let server = start(backend, &[]).await;
    let account = server.new_account().await;
    let burst = 30;
    let replies = simultaneously(burst, |i| {
        bearer_post(
            &server,
            &account.access_token,
            "/auth/v1/user/sudo",
            json!({"password": format!("wrong guess {i}")}),
        )
    })
    .await;
    let (evaluated, refused) = tally(&replies, (400, "invalid_password"));
    assert!(
        evaluated <= 6,
        "{evaluated} of {burst} simultaneous wrong sudo passwords were checked; at most 5 + 1 may be"
    );
    assert_eq!(evaluated + refused, burst);
}

async fn a_right_password_gives_its_attempt_back(backend: Backend) {
    // Attempts count before the password is checked; a right one must not count as a
    // failure, or a user who signs in often would lock themselves out.
    let server = start(
        backend,
        &[
            ("AUTH_PASSWORD_FREE_FAILURES", "1"),
            ("AUTH_SIGNIN_FAILURES_PER_IP_PER_HOUR", "2"),
        ],
    )
    .await;
    let account = server.new_account().await;
    for _ in 0..6 {
        sign_in(&server, &account).await.assert_ok();
    }
    let sudo = || {
        server.call(
            "POST",
            "/auth/v1/user/sudo",
            Some(&account.access_token),
            Some(json!({"password": account.password})),
        )
    };
    for _ in 0..6 {
        sudo().await.assert_ok();
    }
}

async fn sign_in(server: &Server, account: &Account) -> Reply {
    server
        .post(
            "/auth/v1/signin",
            json!({"username": account.username, "password": account.password}),
        )
        .await
}

async fn failed_sign_ins_are_limited_per_client_whatever_the_names(backend: Backend) {
    let server = start(backend, &[("AUTH_SIGNIN_FAILURES_PER_IP_PER_HOUR", "10")]).await;
    let attacker = client(2, 7);
    // Twenty names, one guess each: no name's throttle is involved, only the client's.
    let burst = 20;
    let replies = simultaneously(burst, |i| {
        post_from(
            &server,
            attacker,
            "/auth/v1/signin",
            json!({"username": unique(&format!("victim{i}-")), "password": "a wrong guess"}),
        )
    })
    .await;
    let (evaluated, refused) = tally(&replies, (400, "invalid_username_or_password"));
    assert_eq!((evaluated, refused), (10, 10));
    // Another client is not affected.
    post_from(
        &server,
        client(2, 8),
        "/auth/v1/signin",
        json!({"username": unique("victim"), "password": "a wrong guess"}),
    )
    .await
    .assert_error(400, "invalid_username_or_password");
}

async fn sign_ups_are_limited_per_client(backend: Backend) {
    let server = start(backend, &[("AUTH_SIGNUPS_PER_IP_PER_HOUR", "3")]).await;
    let attacker = client(3, 9);
    let burst = 8;
    let replies = simultaneously(burst, |_| {
        post_from(
            &server,
            attacker,
            "/auth/v1/signup",
            json!({"username": unique("bulk"), "password": "correct horse battery"}),
        )
    })
    .await;
    assert_eq!(tally(&replies, (200, "")), (3, 5));
    post_from(
        &server,
        client(3, 10),
        "/auth/v1/signup",
        json!({"username": unique("other"), "password": "correct horse battery"}),
    )
    .await
    .assert_ok();
}

async fn a_made_up_refresh_secret_for_a_known_session_changes_nothing(backend: Backend) {
    let server = start(backend, &[]).await;
    let victim = server.new_account().await;
    // The session id is no secret: the access token carries it. The secret is guessed.
    let (session, _) = victim
        .refresh_token
        .split_once('.')
        .expect("<session>.<secret>");
    for guess in [
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "x",
        &unique("guess"),
    ] {
        server
            .refresh(&format!("{session}.{guess}"))
            .await
            .assert_error(400, "invalid_grant");
    }
    // The victim's session goes on.
    let rotated = server.refresh(&victim.refresh_token).await;
    rotated.assert_ok();
    server
        .refresh(&rotated.text("refresh_token"))
        .await
        .assert_ok();
}

async fn two_tabs_refreshing_at_once_stay_signed_in_but_a_late_replay_ends_the_session(
    backend: Backend,
) {
    let grace = 3;
    let server = start(backend, &[("AUTH_REFRESH_REUSE_GRACE_SECS", "3")]).await;
    let account = server.new_account().await;
    let tabs = 4;
    let replies = simultaneously(tabs, |_| {
        let origin = server.origin.clone();
        let token = account.refresh_token.clone();
        async move {
            Server::post_to(
                &origin,
                None,
                None,
                "/auth/v1/token",
                json!({"grant_type": "refresh_token", "refresh_token": token}),
            )
            .await
        }
    })
    .await;
    let successors: Vec<String> = replies
        .iter()
        .map(|reply| {
            reply.assert_ok();
            reply.text("refresh_token")
        })
        .collect();
    assert!(
        successors.iter().all(|s| s == &successors[0]),
        "the tabs got different successors: {successors:?}"
    );
    // A retry a moment later gets the same successor too.
    let retry = server.refresh(&account.refresh_token).await;
    assert_eq!(retry.text("refresh_token"), successors[0]);
    let access = retry.text("access_token");
    server
        .call("GET", "/auth/v1/user/me", Some(&access), None)
        .await
        .assert_ok();

    // After the grace, the retired token is a replay: the whole session ends.
    tokio::time::sleep(Duration::from_secs(grace + 2)).await;
    server
        .refresh(&account.refresh_token)
        .await
        .assert_error(400, "invalid_grant");
    server
        .refresh(&successors[0])
        .await
        .assert_error(400, "invalid_grant");
    server
        .call("GET", "/auth/v1/user/me", Some(&access), None)
        .await
        .assert_error(401, "unauthenticated");
}

async fn a_token_two_rotations_old_ends_the_session_even_within_the_grace(backend: Backend) {
    let server = start(backend, &[]).await;
    let account = server.new_account().await;
    let first = server.refresh(&account.refresh_token).await;
    let second = server.refresh(&first.text("refresh_token")).await;
    second.assert_ok();
    server
        .refresh(&account.refresh_token)
        .await
        .assert_error(400, "invalid_grant");
    server
        .refresh(&second.text("refresh_token"))
        .await
        .assert_error(400, "invalid_grant");
}

async fn sessions_end_at_their_maximum_lifetime_however_often_refreshed(backend: Backend) {
    let server = start(backend, &[("AUTH_SESSION_MAX_LIFETIME_SECS", "4")]).await;
    let account = server.new_account().await;
    let mut token = account.refresh_token.clone();
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let reply = server.refresh(&token).await;
        token = reply.text("refresh_token");
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    server
        .refresh(&token)
        .await
        .assert_error(400, "invalid_grant");
}

async fn a_client_over_its_limit_takes_nothing_from_the_victims_quota(backend: Backend) {
    let server = start(backend, &[("AUTH_CODE_SENDS_PER_IP_PER_HOUR", "2")]).await;
    let attacker = client(4, 11);
    for _ in 0..2 {
        post_from(
            &server,
            attacker,
            "/auth/v1/verification",
            json!({"email": unique_email()}),
        )
        .await
        .assert_ok();
    }
    let victim = unique_email();
    // More refused requests than the address's hourly quota (10), all at once.
    let replies = simultaneously(12, |_| {
        post_from(
            &server,
            attacker,
            "/auth/v1/verification",
            json!({ "email": victim }),
        )
    })
    .await;
    let (sent, refused) = tally(&replies, (200, ""));
    assert_eq!((sent, refused), (0, 12));
    // The victim asks for a code from their own client: not held by the attacker's refusals.
    post_from(
        &server,
        client(4, 12),
        "/auth/v1/verification",
        json!({ "email": victim }),
    )
    .await
    .assert_ok();
}

async fn refused_code_requests_from_many_clients_take_nothing_from_the_address(backend: Backend) {
    let server = start(backend, &[]).await;
    let address = unique_email();
    // `target: USER` for an address without an account is refused; twelve clients at once.
    let replies = simultaneously(12, |i| {
        post_from(
            &server,
            client(5, i),
            "/auth/v1/verification",
            json!({"email": address, "target": "USER"}),
        )
    })
    .await;
    for reply in &replies {
        reply.assert_error(404, "not_found");
    }
    // Neither the resend gap nor the hourly quota was taken by them.
    post_from(
        &server,
        client(5, 100),
        "/auth/v1/verification",
        json!({ "email": address }),
    )
    .await
    .assert_ok();
}

async fn notices_to(server: &Server, to: &str) -> Vec<String> {
    server
        .messages_to(to)
        .await
        .into_iter()
        .filter(|body| test_support::aws::code_in(body).is_none())
        .collect()
}

async fn binding_or_unbinding_a_provider_needs_a_recent_sign_in_or_sudo(backend: Backend) {
    let fake = wechat::start().await;
    let mut settings = wechat::settings(&fake);
    settings.push(("AUTH_RECENT_AUTH_SECS", "2".into()));
    settings.push(("AUTH_CODE_RESEND_INTERVAL_SECS", "0".into()));
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = start(backend, &pairs).await;
    let account = server.new_account().await;
    let email = unique_email();
    server.bind_email(&account, &email).await.assert_ok();
    let notices_before = notices_to(&server, &email).await.len();

    // A thief holds the access token (and refreshes it), long after the sign-in.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let thief = server.refresh(&account.refresh_token).await;
    let stolen = thief.text("access_token");
    let grant = server
        .post(
            "/auth/v1/provider/token",
            json!({"provider_id": "wx_open", "provider_code": format!("ok:{}", unique("thief"))}),
        )
        .await;
    let bind = server
        .call(
            "POST",
            "/auth/v1/user/provider/bind",
            Some(&stolen),
            Some(json!({"provider_token": grant.text("provider_token")})),
        )
        .await;
    bind.assert_error(403, "permission_denied");
    assert!(
        bind.body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("sudo")),
        "the refusal says to call sudo first: {}",
        bind.body
    );

    // The owner passes sudo: the same session may bind, and the bound email hears of it.
    let me = Account {
        access_token: stolen.clone(),
        ..account.clone()
    };
    server.sudo(&me).await;
    server
        .call(
            "POST",
            "/auth/v1/user/provider/bind",
            Some(&stolen),
            Some(json!({"provider_token": grant.text("provider_token")})),
        )
        .await
        .assert_ok();
    let notices = notices_to(&server, &email).await;
    assert_eq!(notices.len(), notices_before + 1, "{notices:?}");
    assert!(notices.last().unwrap().contains("WeChat"), "{notices:?}");

    tokio::time::sleep(Duration::from_secs(3)).await;
    let unbind = server
        .call(
            "DELETE",
            "/auth/v1/user/provider/wx_open",
            Some(&stolen),
            None,
        )
        .await;
    unbind.assert_error(403, "permission_denied");
    server.sudo(&me).await;
    server
        .call(
            "DELETE",
            "/auth/v1/user/provider/wx_open",
            Some(&stolen),
            None,
        )
        .await
        .assert_ok();
    assert_eq!(notices_to(&server, &email).await.len(), notices_before + 2);
}

async fn sms_goes_only_to_allowed_countries_and_within_the_deployment_budget(backend: Backend) {
    let server = start(backend, &[("AUTH_SMS_SENDS_PER_HOUR", "3")]).await;
    // Default: mainland China only. A number elsewhere is refused, and nothing is sent.
    let abroad = "+1 650 253 0000";
    server
        .post("/auth/v1/verification", json!({"phone_number": abroad}))
        .await
        .assert_error(400, "invalid_argument");
    assert!(server.messages_to("+16502530000").await.is_empty());

    // Many clients, many numbers, released together: the deployment's budget holds.
    let numbers: Vec<String> = (0..8).map(|_| unique_phone()).collect();
    let replies = simultaneously(numbers.len(), |i| {
        post_from(
            &server,
            client(6, i),
            "/auth/v1/verification",
            json!({"phone_number": numbers[i]}),
        )
    })
    .await;
    let (sent, refused) = tally(&replies, (200, ""));
    assert_eq!((sent, refused), (3, 5));
    // Email is not SMS: it still goes out.
    post_from(
        &server,
        client(6, 200),
        "/auth/v1/verification",
        json!({"email": unique_email()}),
    )
    .await
    .assert_ok();
}

async fn anonymous_sign_ins_are_limited_per_client_not_across_clients(backend: Backend) {
    let server = start(backend, &[("AUTH_SIGNUPS_PER_IP_PER_HOUR", "3")]).await;
    let burst = 8;
    let attacker = client(20, 1);
    let replies = simultaneously(burst, |_| {
        post_from(&server, attacker, "/auth/v1/signin/anonymously", json!({}))
    })
    .await;
    assert_eq!(tally(&replies, (200, "")), (3, 5));
    // Anonymous accounts are sign-ups: the client's ordinary sign-up is refused too.
    post_from(
        &server,
        attacker,
        "/auth/v1/signup",
        json!({"username": unique("after"), "password": "correct horse battery"}),
    )
    .await
    .assert_error(429, "resource_exhausted");
    // Many clients at once each get their own allowance.
    let replies = simultaneously(burst, |i| {
        post_from(
            &server,
            client(21, i),
            "/auth/v1/signin/anonymously",
            json!({}),
        )
    })
    .await;
    assert_eq!(tally(&replies, (200, "")), (burst, 0));
}

async fn failed_code_sign_ins_are_limited_per_client_whatever_the_tokens(backend: Backend) {
    let server = start(
        backend,
        &[
            ("AUTH_SIGNIN_FAILURES_PER_IP_PER_HOUR", "3"),
            ("AUTH_CODE_RESEND_INTERVAL_SECS", "0"),
        ],
    )
    .await;
    let email = unique_email();
    let account = server.new_account().await;
    server.bind_email(&account, &email).await.assert_ok();
    let attacker = client(22, 1);
    let burst = 8;
    let replies = simultaneously(burst, |i| {
        post_from(
            &server,
            attacker,
            "/auth/v1/signin",
            json!({"username": "", "verification_token": format!("guessed-token-{i}")}),
        )
    })
    .await;
    assert_eq!(tally(&replies, (403, "permission_denied")), (3, 5));
    // Over its limit, the client is refused even a right token, which stays unspent...
    let token = server
        .verification_token("email", &email, &email.to_lowercase())
        .await;
    let by_code = json!({"username": email, "verification_token": token});
    post_from(&server, attacker, "/auth/v1/signin", by_code.clone())
        .await
        .assert_error(429, "resource_exhausted");
    // ...for the account's owner elsewhere; a right code gives its count back.
    for _ in 0..5 {
        let token = server
            .verification_token("email", &email, &email.to_lowercase())
            .await;
        post_from(
            &server,
            client(22, 2),
            "/auth/v1/signin",
            json!({"username": email, "verification_token": token}),
        )
        .await
        .assert_ok();
    }
    post_from(&server, client(22, 3), "/auth/v1/signin", by_code)
        .await
        .assert_ok();
}

/// A username account with an email and a phone number bound the seed way.
async fn account_with_email_and_phone(server: &Server) -> (Account, String, String) {
    let account = server.new_account().await;
    let email = unique_email();
    server.bind_email(&account, &email).await.assert_ok();
    let phone = unique_phone();
    let token = server
        .verification_token("phone_number", &phone, &e164(&phone))
        .await;
    let sudo = server.sudo(&account).await;
    server
        .bind_contact(&account, &sudo, "phone_number", &phone, &token)
        .await
        .assert_ok();
    (account, email, e164(&phone))
}

/// Changes the password `times` times in a row, each after a sudo with the current one, as
/// `resetPasswordForOld` does; answers the account with its last password.
async fn change_password_repeatedly(server: &Server, account: &Account, times: usize) -> Account {
    let mut account = account.clone();
    for round in 0..times {
        let sudo = server.sudo(&account).await;
        let new_password = format!("password number {round}");
        server
            .call(
                "PATCH",
                "/auth/v1/user/password",
                Some(&account.access_token),
                Some(json!({"sudo_token": sudo, "new_password": new_password})),
            )
            .await
            .assert_ok();
        account.password = new_password;
    }
    account
}

async fn thirty_password_changes_reach_each_address_five_times_and_codes_still_go_out(
    backend: Backend,
) {
    // Defaults: 5 notices per address per hour. The account's owner (or a thief with its
    // password) changes it over and over.
    let server = start(backend, &[("AUTH_CODE_RESEND_INTERVAL_SECS", "0")]).await;
    let (account, email, phone) = account_with_email_and_phone(&server).await;
    change_password_repeatedly(&server, &account, 30).await;
    for to in [&email, &phone] {
        let notices = notices_to(&server, to).await;
        assert_eq!(notices.len(), 5, "notices to {to}: {notices:?}");
        assert!(notices.iter().all(|body| body.contains("password")));
    }
    // The changes themselves all happened, and the dropped notices are logged, masked.
    let logs = server.logs().join("\n");
    assert!(logs.contains("a change notice was not sent"), "{logs}");
    for address in [&email, &phone] {
        assert!(!logs.contains(address.as_str()), "the logs name {address}");
    }
    // Codes are not notices: both addresses still get one.
    server.send_code("email", &email).await;
    server.send_code("phone_number", &phone).await;
}

async fn notices_take_at_most_their_share_of_each_channels_budget_and_codes_keep_the_rest(
    backend: Backend,
) {
    // Budgets of 10 SMS and 10 emails an hour, notices 20% of each (the default share),
    // and no cap per address: only the share stops the notices.
    let server = start(
        backend,
        &[
            ("AUTH_SMS_SENDS_PER_HOUR", "10"),
            ("AUTH_EMAIL_SENDS_PER_HOUR", "10"),
            ("AUTH_NOTICES_PER_ADDRESS_PER_HOUR", "100"),
        ],
    )
    .await;
    // One code each way for the binds.
    let (account, email, phone) = account_with_email_and_phone(&server).await;
    change_password_repeatedly(&server, &account, 8).await;
    for to in [&email, &phone] {
        let notices = notices_to(&server, to).await;
        assert_eq!(notices.len(), 2, "notices to {to}: {notices:?}");
    }
    // 10 - 1 code - 2 notices: 7 codes left per channel, for any address and client.
    for (field, address) in [
        ("email", unique_email as fn() -> String),
        ("phone_number", unique_phone),
    ] {
        let addresses: Vec<String> = (0..9).map(|_| address()).collect();
        let replies = simultaneously(addresses.len(), |i| {
            post_from(
                &server,
                client(30, i),
                "/auth/v1/verification",
                json!({ field: addresses[i] }),
            )
        })
        .await;
        assert_eq!(tally(&replies, (200, "")), (7, 2), "{field}");
    }
}

/// A profile edit of the username from client `ip`.
fn rename_from(
    server: &Server,
    ip: IpAddr,
    token: &str,
    username: &str,
) -> impl std::future::Future<Output = Reply> + Send + 'static {
    let origin = server.origin.clone();
    let (token, body) = (token.to_string(), json!({ "username": username }));
    async move {
        Server::post_to(
            &origin,
            Some(ip),
            Some(&token),
            "/auth/v1/user/basic/edit",
            body,
        )
        .await
    }
}

async fn a_hundred_simultaneous_username_probes_from_one_account_judge_ten(backend: Backend) {
    // Defaults: 10 attempts an hour. Every probe comes from a client of its own, so only the
    // account's own count stops them. On moto, one long attempt per call rather than retries
    // that add to the load.
    let server = match backend {
        Backend::Embedded => start(backend, &[]).await,
        Backend::Aws => {
            let one_long_attempt = [
                ("AUTH_AWS_ATTEMPT_TIMEOUT_MS", "5000"),
                ("AUTH_AWS_MAX_ATTEMPTS", "1"),
            ];
            start(backend, &one_long_attempt).await
        }
    };
    let taken: Vec<Account> = futures_of(3, || server.new_account()).await;
    let prober = server.new_account().await;
    let burst = 100;
    let replies = simultaneously(burst, |i| {
        rename_from(
            &server,
            client(31, i),
            &prober.access_token,
            &taken[i % taken.len()].username,
        )
    })
    .await;
    // A shared moto on a busy machine may time out a few of the 300 calls such a burst makes
    // (503, nothing changed); each of those can have taken at most one place.
    let (answered, unavailable): (Vec<Reply>, Vec<Reply>) = replies
        .into_iter()
        .partition(|reply| reply.status != 503 || backend == Backend::Embedded);
    let (judged, refused) = tally(&answered, (409, "already_exists"));
    assert!(
        judged <= 10,
        "{judged} of {burst} simultaneous probes were judged"
    );
    assert!(
        judged + unavailable.len() >= 10,
        "{judged} judged, {} unavailable: the limit refused more than it should",
        unavailable.len()
    );
    assert_eq!(judged + refused + unavailable.len(), burst);
    // A free name is an attempt like any other: refused too, by either route.
    let free = unique("free");
    rename_from(&server, client(31, 200), &prober.access_token, &free)
        .await
        .assert_error(429, "resource_exhausted");
    server
        .call(
            "PATCH",
            "/auth/v1/user/profile",
            Some(&prober.access_token),
            Some(json!({ "username": free })),
        )
        .await
        .assert_error(429, "resource_exhausted");
    // Another account of the same clients is not held by it.
    let other = server.new_account().await;
    rename_from(&server, client(31, 1), &other.access_token, &free)
        .await
        .assert_ok();
}

async fn username_probes_from_one_client_are_limited_across_its_accounts(backend: Backend) {
    let server = start(backend, &[("AUTH_USERNAME_ATTEMPTS_PER_HOUR", "4")]).await;
    let taken = server.new_account().await;
    let probers: Vec<Account> = futures_of(3, || server.new_account()).await;
    let attacker = client(32, 1);
    // Three probes per account: no account reaches its own 4, the client does.
    let replies = simultaneously(9, |i| {
        rename_from(
            &server,
            attacker,
            &probers[i % 3].access_token,
            &taken.username,
        )
    })
    .await;
    assert_eq!(tally(&replies, (409, "already_exists")), (4, 5));
    // The refused attempts took nothing from the accounts: from another client they go on.
    for prober in &probers {
        rename_from(
            &server,
            client(32, 2),
            &prober.access_token,
            &taken.username,
        )
        .await
        .assert_error(409, "already_exists");
    }
}

/// `count` results of `make`, one after the other.
async fn futures_of<T, Fut>(count: usize, make: impl Fn() -> Fut) -> Vec<T>
where
    Fut: std::future::Future<Output = T>,
{
    let mut all = Vec::new();
    for _ in 0..count {
        all.push(make().await);
    }
    all
}

/// Sends headers announcing a body of 1,000 bytes, then trickles it a byte every 2 s; answers
/// what came back (the raw HTTP answer, empty if the connection was just closed) and when.
async fn trickle_a_body(origin: String) -> (String, Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = origin.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /auth/v1/signin HTTP/1.1\r\nhost: {address}\r\ncontent-type: text/plain\r\ncontent-length: 1000\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let (mut reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            if writer.write_all(b" ").await.is_err() {
                break;
            }
        }
    });
    let mut answer = Vec::new();
    // Past a minute the server is taken to hold the connection forever.
    let read = tokio::time::timeout(Duration::from_secs(60), reader.read_to_end(&mut answer));
    let _ = read.await;
    trickle.abort();
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

/// A slowloris client: its body trickles in forever. local-api cuts it off once the body has
/// not arrived within 10 s of the headers, with a 408 in the contract's shape, and serves
/// everyone else meanwhile. (The HTTP layer is the same over either store: embedded only.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_body_is_cut_off_and_others_are_served_meanwhile() {
    let server = start(Backend::Embedded, &[]).await;
    let trickles: Vec<_> = (0..20)
        .map(|_| tokio::spawn(trickle_a_body(server.origin.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    // While twenty connections trickle, another client signs up and in as usual.
    let account = server.new_account().await;
    assert_eq!(server.me(&account.access_token).await.status, 200);
    for trickle in trickles {
        let (answer, elapsed) = trickle.await.unwrap();
        assert!(
            elapsed < Duration::from_secs(15),
            "the trickling body was read for {elapsed:?}"
        );
        assert!(answer.starts_with("HTTP/1.1 408"), "not a 408: {answer:?}");
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        let body: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{answer:?}"));
        assert_eq!(body["error"], "invalid_argument", "{body}");
        assert!(body["error_description"].is_string(), "{body}");
    }
}
