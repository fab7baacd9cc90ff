//! Custom-login tickets (`POST /auth/v1/signin/custom`, issue 25) against the real
//! `local-api`, on the embedded store and on DynamoDB: the first ticket for a uid creates its
//! account and later ones land in it; every kind of bad ticket is refused and writes nothing;
//! a ticket signs in once, however many presentations race; the ticket's `refresh` and
//! `expire` bound the session; refused tickets count against the client.

use std::net::IpAddr;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use test_support::server::{unique, Backend, Reply, Server};
use test_support::tickets::{self, claims, claims_with, now_ms, TicketKey, ENV_ID};
use tokio::sync::Barrier;

const EXE: &str = env!("CARGO_BIN_EXE_local-api");
const PATH: &str = "/auth/v1/signin/custom";

test_support::on_both_backends!(
    the_first_ticket_for_a_uid_creates_its_account_and_later_ones_land_in_it,
    bad_tickets_are_refused_and_write_nothing,
    simultaneous_presentations_of_one_ticket_sign_in_exactly_once,
    simultaneous_first_tickets_of_one_uid_make_one_account,
    the_tickets_refresh_and_expire_bound_the_session,
    refused_tickets_are_limited_per_client,
    every_key_of_the_setting_verifies_so_keys_rotate,
);

struct Fixture {
    server: Server,
    key: TicketKey,
}

async fn start(backend: Backend, extra: &[(&str, &str)]) -> Fixture {
    let key = TicketKey::generate("key-current");
    let keys = tickets::keys_setting(&[&key]);
    let mut settings = vec![
        ("AUTH_ENV_ID", ENV_ID),
        ("AUTH_CUSTOM_LOGIN_KEYS", keys.as_str()),
    ];
    settings.extend_from_slice(extra);
    let server = Server::start(EXE, backend, &settings).await;
    Fixture { server, key }
}

fn uid() -> String {
    unique("Emp#")
}

async fn present(server: &Server, ticket: &str) -> Reply {
    server
        .post(
            &format!("{PATH}?client_id={ENV_ID}"),
            json!({"provider_id": "custom", "ticket": ticket}),
        )
        .await
}

/// Every account the store holds, as the local console lists them.
async fn accounts(server: &Server) -> Vec<Value> {
    let reply = server.call("GET", "/_dev/accounts", None, None).await;
    reply
        .assert_ok()
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no accounts list in {}", reply.body))
}

async fn the_first_ticket_for_a_uid_creates_its_account_and_later_ones_land_in_it(
    backend: Backend,
) {
    let Fixture { server, key } = start(backend, &[]).await;
    let alice = uid();
    let first = present(&server, &key.mint(&claims(&alice))).await;
    let body = first.assert_ok();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "user");
    let sub = first.text("sub");

    let again = present(&server, &key.mint(&claims(&alice))).await;
    assert_eq!(again.text("sub"), sub, "the same uid, the same account");
    let bob = present(&server, &key.mint(&claims(&uid()))).await;
    assert_ne!(bob.text("sub"), sub, "another uid, another account");

    let me = server.me(&again.text("access_token")).await;
    assert_eq!(me.text("sub"), sub);
    assert_eq!(
        me.body["providers"],
        json!([{"id": "custom", "provider_user_id": alice, "name": ""}])
    );
    let listed = accounts(&server).await;
    let account = listed
        .iter()
        .find(|account| account["sub"] == sub.as_str())
        .expect("the account is listed");
    assert_eq!(account["custom_uid"], alice.as_str());
    // The session refreshes like any other.
    let refreshed = server.refresh(&again.text("refresh_token")).await;
    assert_eq!(refreshed.text("sub"), sub);
}

async fn bad_tickets_are_refused_and_write_nothing(backend: Backend) {
    let Fixture { server, key } = start(backend, &[]).await;
    let victim = uid();
    let now = now_ms();
    let stranger = TicketKey::generate("key-current");
    let unknown = TicketKey::generate("key-unknown");
    let genuine = key.mint(&claims(&victim));
    let (prefix, jwt) = genuine.split_once("/@@/").unwrap();
    let mut parts = jwt.split('.');
    let (header, payload, signature) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let encode = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let refused: Vec<(&str, String)> = vec![
        (
            "forged: signed by another key under this key id",
            stranger.mint(&claims(&victim)),
        ),
        ("an unknown key id", unknown.mint(&claims(&victim))),
        (
            "another environment",
            key.mint(&claims_with(&victim, json!({"env": "other-env"}))),
        ),
        (
            "expired",
            key.mint(&claims_with(
                &victim,
                json!({"iat": now - 20 * 60_000, "exp": now - 10 * 60_000}),
            )),
        ),
        (
            "issued in the future",
            key.mint(&claims_with(
                &victim,
                json!({"iat": now + 5 * 60_000, "exp": now + 15 * 60_000}),
            )),
        ),
        (
            "valid for days",
            key.mint(&claims_with(
                &victim,
                json!({"exp": now + 3 * 24 * 3_600_000i64}),
            )),
        ),
        (
            "its login already expired",
            key.mint(&claims_with(&victim, json!({"expire": now - 1000}))),
        ),
        (
            "exp in seconds, long passed",
            key.mint(&claims_with(&victim, json!({"exp": now / 1000 + 600}))),
        ),
        (
            "claims changed under the signature",
            format!(
                "{prefix}/@@/{header}.{}.{signature}",
                encode(&claims(&uid()))
            ),
        ),
        (
            "alg none",
            format!(
                "{prefix}/@@/{}.{payload}.{signature}",
                encode(&json!({"alg": "none", "typ": "JWT"}))
            ),
        ),
        (
            "alg HS256 keyed with the public key",
            key.mint_hs256_with_public_key(&claims(&victim)),
        ),
        (
            "alg RS512 in the header",
            key.mint_with_header(&json!({"alg": "RS512", "typ": "JWT"}), &claims(&victim)),
        ),
        (
            "no uid",
            key.mint(&json!({"env": ENV_ID, "iat": now, "exp": now + 600_000})),
        ),
        (
            "no env",
            key.mint(&json!({"uid": victim, "iat": now, "exp": now + 600_000})),
        ),
        ("an invalid uid", key.mint(&claims("has space in it"))),
        (
            "times as text",
            key.mint(&claims_with(&victim, json!({"exp": "tomorrow"}))),
        ),
        ("no /@@/", jwt.to_string()),
        ("not a JWT", format!("{prefix}/@@/not-a-jwt")),
        ("an empty JWT", format!("{prefix}/@@/..")),
        (
            "a JWT of four parts",
            format!("{prefix}/@@/{jwt}.{signature}"),
        ),
        (
            "huge",
            format!("{prefix}/@@/{header}.{}.{signature}", "A".repeat(70_000)),
        ),
        ("empty", String::new()),
    ];
    for (what, ticket) in &refused {
        let reply = present(&server, ticket).await;
        assert!(
            matches!(
                (reply.status, reply.error()),
                (400, "invalid_grant" | "invalid_argument") | (413, _)
            ),
            "{what}: {} {}",
            reply.status,
            reply.body
        );
        assert!(
            reply.body["error_description"].is_string(),
            "{what}: {}",
            reply.body
        );
    }
    for body in [
        json!({"provider_id": "custom"}),
        json!({"provider_id": "wx_open", "ticket": genuine}),
        json!({"provider_id": "custom", "ticket": 42}),
    ] {
        let reply = server.post(PATH, body.clone()).await;
        reply.assert_error(400, "invalid_argument");
    }
    assert_eq!(
        accounts(&server).await,
        Vec::<Value>::new(),
        "no account was written"
    );

    // Spent once, a ticket is refused; the account it made stays the only one.
    let sub = present(&server, &genuine).await.text("sub");
    present(&server, &genuine)
        .await
        .assert_error(400, "invalid_grant");
    let listed = accounts(&server).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["sub"], sub.as_str());
    assert_eq!(listed[0]["sessions"].as_array().map(Vec::len), Some(1));
}

/// Sends every request at once: each waits at a barrier until all are ready.
async fn simultaneously(server: &Server, tickets: Vec<String>, from: Option<IpAddr>) -> Vec<Reply> {
    let barrier = Arc::new(Barrier::new(tickets.len()));
    let tasks: Vec<_> = tickets
        .into_iter()
        .map(|ticket| {
            let barrier = Arc::clone(&barrier);
            let origin = server.origin.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                Server::post_to(
                    &origin,
                    from,
                    None,
                    PATH,
                    json!({"provider_id": "custom", "ticket": ticket}),
                )
                .await
            })
        })
        .collect();
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.expect("a request task"));
    }
    replies
}

async fn simultaneous_presentations_of_one_ticket_sign_in_exactly_once(backend: Backend) {
    let Fixture { server, key } = start(backend, &[]).await;
    let ticket = key.mint(&claims(&uid()));
    let replies = simultaneously(&server, vec![ticket; 12], None).await;
    let (won, lost): (Vec<&Reply>, Vec<&Reply>) = replies.iter().partition(|r| r.status == 200);
    let answers: Vec<(u16, String)> = replies
        .iter()
        .map(|r| (r.status, r.error().to_string()))
        .collect();
    assert_eq!(won.len(), 1, "{answers:?}");
    for reply in lost {
        reply.assert_error(400, "invalid_grant");
    }
    let listed = accounts(&server).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["sessions"].as_array().map(Vec::len), Some(1));
}

async fn simultaneous_first_tickets_of_one_uid_make_one_account(backend: Backend) {
    let Fixture { server, key } = start(backend, &[]).await;
    let alice = uid();
    // Distinct tickets: two minted in the same millisecond for one uid are one ticket.
    let now = now_ms();
    let tickets = (0..6)
        .map(|i| key.mint(&claims_with(&alice, json!({"iat": now - i}))))
        .collect();
    let replies = simultaneously(&server, tickets, None).await;
    let subs: std::collections::HashSet<String> =
        replies.iter().map(|reply| reply.text("sub")).collect();
    assert_eq!(subs.len(), 1, "{replies:?}");
    let listed = accounts(&server).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["sessions"].as_array().map(Vec::len), Some(6));
}

async fn the_tickets_refresh_and_expire_bound_the_session(backend: Backend) {
    let Fixture { server, key } = start(backend, &[]).await;
    let now = now_ms();
    // `refresh` shortens the access tokens' life, on every refresh too.
    let short = present(
        &server,
        &key.mint(&claims_with(&uid(), json!({"refresh": 120_000}))),
    )
    .await;
    assert_eq!(short.body["expires_in"], 120);
    let refreshed = server.refresh(&short.text("refresh_token")).await;
    assert_eq!(refreshed.body["expires_in"], 120);
    // It never lengthens the deployment's (7200 s), nor goes below a minute.
    let long = present(
        &server,
        &key.mint(&claims_with(&uid(), json!({"refresh": 86_400_000}))),
    )
    .await;
    assert_eq!(long.body["expires_in"], 7200);
    let tiny = present(
        &server,
        &key.mint(&claims_with(&uid(), json!({"refresh": 1}))),
    )
    .await;
    assert_eq!(tiny.body["expires_in"], 60);
    // `expire` ends the session, however it is refreshed.
    let ending = present(
        &server,
        &key.mint(&claims_with(&uid(), json!({"expire": now + 3_000}))),
    )
    .await;
    let next = server.refresh(&ending.text("refresh_token")).await;
    next.assert_ok();
    tokio::time::sleep(std::time::Duration::from_millis(4_500)).await;
    server
        .refresh(&next.text("refresh_token"))
        .await
        .assert_error(400, "invalid_grant");
}

async fn refused_tickets_are_limited_per_client(backend: Backend) {
    let Fixture { server, key } =
        start(backend, &[("AUTH_SIGNIN_FAILURES_PER_IP_PER_HOUR", "3")]).await;
    let attacker: IpAddr = [127, 0, 25, 1].into();
    let forged = TicketKey::generate("key-current");
    let tickets = (0..8).map(|_| forged.mint(&claims(&uid()))).collect();
    let replies = simultaneously(&server, tickets, Some(attacker)).await;
    let judged = replies
        .iter()
        .filter(|r| r.error() == "invalid_grant")
        .count();
    let limited = replies.iter().filter(|r| r.status == 429).count();
    assert_eq!((judged, limited), (3, 5), "{replies:?}");
    // Even a genuine ticket waits, from that client; another client is not held up, and
    // its success takes nothing.
    let genuine = key.mint(&claims(&uid()));
    let reply = Server::post_to(
        &server.origin,
        Some(attacker),
        None,
        PATH,
        json!({"ticket": genuine}),
    )
    .await;
    reply.assert_error(429, "resource_exhausted");
    for _ in 0..4 {
        let other: IpAddr = [127, 0, 25, 2].into();
        let ticket = key.mint(&claims(&uid()));
        Server::post_to(
            &server.origin,
            Some(other),
            None,
            PATH,
            json!({"ticket": ticket}),
        )
        .await
        .assert_ok();
    }
}

async fn every_key_of_the_setting_verifies_so_keys_rotate(backend: Backend) {
    let old = TicketKey::generate("key-2025");
    let new = TicketKey::generate("key-2026");
    let keys = tickets::keys_setting(&[&old, &new]);
    let server = Server::start(
        EXE,
        backend,
        &[
            ("AUTH_ENV_ID", ENV_ID),
            ("AUTH_CUSTOM_LOGIN_KEYS", keys.as_str()),
        ],
    )
    .await;
    let alice = uid();
    let before = present(&server, &old.mint(&claims(&alice)))
        .await
        .text("sub");
    let after = present(&server, &new.mint(&claims(&alice)))
        .await
        .text("sub");
    assert_eq!(before, after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_keys_custom_login_is_off() {
    let server = Server::start(EXE, Backend::Embedded, &[]).await;
    let key = TicketKey::generate("key-current");
    present(&server, &key.mint(&claims(&uid())))
        .await
        .assert_error(412, "failed_precondition");
}
