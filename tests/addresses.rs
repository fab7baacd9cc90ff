//! Addresses are parsed, not reformatted (issue 13, item 7), over HTTP on both backends.
//!
//! What an attacker or a careless client sends: one phone number spelt with its national
//! trunk prefix (`+86 0139...`) to reach or claim the same number as another account, numbers
//! no numbering plan allows, an email whose local part SES cannot deliver to (it was accepted
//! and then answered 503 by SES), and an internationalised domain, which must be sent to, stored
//! and compared in its punycode form.

use serde_json::{json, Value};
use test_support::fault_proxy::{Call, Fault, FaultProxy, Times};
use test_support::server::{e164, unique, unique_email, unique_phone, Backend, Server};

const EXE: &str = env!("CARGO_BIN_EXE_local-api");

test_support::on_both_backends!(
    a_number_with_its_trunk_prefix_is_the_same_number,
    a_number_cannot_be_bound_twice_by_spelling_it_with_its_trunk_prefix,
    impossible_numbers_are_invalid_argument,
    an_email_ses_cannot_deliver_is_invalid_argument_not_503,
    an_internationalised_domain_is_sent_to_its_punycode,
);

/// Codes to one address in quick succession are part of every scenario here.
async fn start(backend: Backend) -> Server {
    Server::start(EXE, backend, &[("AUTH_CODE_RESEND_INTERVAL_SECS", "0")]).await
}

/// How many messages (codes or notices) went to `to`: an email or an E.164 number.
async fn sent_to(server: &Server, to: &str) -> usize {
    match server.backend {
        Backend::Embedded => {
            let outbox: Value = server
                .raw(reqwest::Method::GET, "/_dev/outbox")
                .send()
                .await
                .expect("outbox answers")
                .json()
                .await
                .expect("outbox is JSON");
            outbox
                .as_array()
                .expect("outbox is a list")
                .iter()
                .filter(|m| m["to"] == to)
                .count()
        }
        Backend::Aws => server.messages_to(to).await.len(),
    }
}

/// `+86 139xxxxxxxx` with the mainland trunk prefix: `+86 0139xxxxxxxx`.
fn with_trunk_prefix(phone: &str) -> String {
    phone.replacen("+86 ", "+86 0", 1)
}

/// Binds a proven phone number (as `bound`, proven as `proven`) to the account.
async fn bind_phone(
    server: &Server,
    account: &test_support::server::Account,
    proven: &str,
    bound: &str,
    delivered_to: &str,
) -> test_support::server::Reply {
    let sudo = server.sudo(account).await;
    let token = server
        .verification_token("phone_number", proven, delivered_to)
        .await;
    server
        .call(
            "PATCH",
            "/auth/v1/user/contact",
            Some(&account.access_token),
            Some(json!({"sudo_token": sudo, "phone_number": bound, "verification_token": token})),
        )
        .await
}

async fn a_number_with_its_trunk_prefix_is_the_same_number(backend: Backend) {
    let server = start(backend).await;
    let account = server.new_account().await;
    let phone = unique_phone();
    let stored = e164(&phone);
    bind_phone(&server, &account, &phone, &phone, &stored)
        .await
        .assert_ok();

    let prefixed = with_trunk_prefix(&phone);
    // A code requested for the prefixed spelling is for the bound number, and goes to it.
    let before = sent_to(&server, &stored).await;
    let verification = server
        .post("/auth/v1/verification", json!({"phone_number": prefixed}))
        .await;
    assert_eq!(
        verification.assert_ok()["is_user"],
        true,
        "{prefixed} is the bound {phone}"
    );
    assert_eq!(sent_to(&server, &stored).await, before + 1);
    assert_eq!(sent_to(&server, &e164(&prefixed)).await, 0);
    let code = server.latest_code(&stored).await;
    server
        .post(
            "/auth/v1/verification/verify",
            json!({"verification_id": verification.text("verification_id"), "verification_code": code}),
        )
        .await
        .assert_ok();

    // Password sign-in with the prefixed spelling, and as bindPhoneNumber types it, reaches
    // the same account.
    for typed in [
        prefixed.clone(),
        e164(&prefixed),
        prefixed.trim_start_matches("+86 ").to_string(),
    ] {
        let signin = server
            .post(
                "/auth/v1/signin",
                json!({"username": typed, "password": account.password}),
            )
            .await;
        assert_eq!(
            signin.assert_ok()["sub"],
            account.sub.as_str(),
            "signing in as {typed}"
        );
    }
    // `target: NOT_USER` (sign-up) refuses the prefixed spelling of a bound number.
    server
        .post(
            "/auth/v1/verification",
            json!({"phone_number": prefixed, "target": "NOT_USER"}),
        )
        .await
        .assert_error(412, "failed_precondition");
    let me = server
        .call("GET", "/auth/v1/user/me", Some(&account.access_token), None)
        .await;
    assert_eq!(me.assert_ok()["phone_number"], phone.as_str());
}

async fn a_number_cannot_be_bound_twice_by_spelling_it_with_its_trunk_prefix(backend: Backend) {
    let server = start(backend).await;
    let owner = server.new_account().await;
    let phone = unique_phone();
    let stored = e164(&phone);
    bind_phone(&server, &owner, &phone, &phone, &stored)
        .await
        .assert_ok();

    // A second account proves the prefixed spelling (the code reaches the same phone) and
    // tries to bind it: one number, one account.
    let other = server.new_account().await;
    let prefixed = with_trunk_prefix(&phone);
    bind_phone(&server, &other, &prefixed, &prefixed, &stored)
        .await
        .assert_error(409, "already_exists");
    let me = server
        .call("GET", "/auth/v1/user/me", Some(&other.access_token), None)
        .await;
    assert_eq!(me.assert_ok()["phone_number"], "", "{}", me.body);
    // Signing up with the prefixed spelling is refused the same way.
    let token = server
        .verification_token("phone_number", &prefixed, &stored)
        .await;
    server
        .post(
            "/auth/v1/signup",
            json!({"phone_number": prefixed, "verification_token": token, "password": "correct horse battery"}),
        )
        .await
        .assert_error(409, "already_exists");
    // The number still signs in to its owner only.
    let signin = server
        .post(
            "/auth/v1/signin",
            json!({"username": prefixed, "password": owner.password}),
        )
        .await;
    assert_eq!(signin.assert_ok()["sub"], owner.sub.as_str());
}

async fn impossible_numbers_are_invalid_argument(backend: Backend) {
    let server = start(backend).await;
    let account = server.new_account().await;
    let sudo = server.sudo(&account).await;
    for number in [
        // The example, and numbers whose length alone looked plausible.
        "+86 123",
        "+86 12345",
        "+86 123456789012",
        // A mainland mobile with a digit missing or one too many.
        "+86 1390000000",
        "+86 139000000000",
        // North America: no area code starts with 0; Washington DC with a digit missing.
        "+1 020 555 0100",
        "+1 202 555 010",
        // As bindPhoneNumber sends what was typed, with the default country code 86.
        "12345",
        "1390000000",
    ] {
        let digits = e164(number);
        let as_stored = if digits.starts_with('+') {
            digits
        } else {
            format!("+86{digits}")
        };
        server
            .post("/auth/v1/verification", json!({"phone_number": number}))
            .await
            .assert_error(400, "invalid_argument");
        assert_eq!(
            sent_to(&server, &as_stored).await,
            0,
            "a code went to {number}"
        );
        // Every other door that takes a number refuses it the same way.
        server
            .post(
                "/auth/v1/signup",
                json!({"phone_number": number, "verification_token": "x".repeat(40), "password": "correct horse battery"}),
            )
            .await
            .assert_error(400, "invalid_argument");
        server
            .call(
                "PATCH",
                "/auth/v1/user/contact",
                Some(&account.access_token),
                Some(json!({"sudo_token": sudo, "phone_number": number, "verification_token": "x".repeat(40)})),
            )
            .await
            .assert_error(400, "invalid_argument");
    }
    // The server is fine and still sends codes to numbers that exist.
    let phone = unique_phone();
    server.send_code("phone_number", &phone).await;
    server.latest_code(&e164(&phone)).await;
}

async fn an_email_ses_cannot_deliver_is_invalid_argument_not_503(backend: Backend) {
    // moto's SES accepts any recipient; real SES refuses a local part beyond 7-bit ASCII
    // (it has no SMTPUTF8), which the service then answered as `unavailable`. On AWS the
    // calls go through a proxy that refuses every SendEmail the way SES refuses those, while
    // the undeliverable addresses are tried: none may get as far as SES.
    let ses = match backend {
        Backend::Aws => Some(FaultProxy::start().await),
        Backend::Embedded => None,
    };
    let mut settings = vec![("AUTH_CODE_RESEND_INTERVAL_SECS", "0")];
    if let Some(ses) = &ses {
        settings.push(("AWS_ENDPOINT_URL", ses.origin()));
        settings.push(("AUTH_AWS_ATTEMPT_TIMEOUT_MS", "2500"));
    }
    let server = Server::start(EXE, backend, &settings).await;
    let sent_to = |to: String| {
        let server = &server;
        let ses = &ses;
        async move {
            match ses {
                Some(ses) => ses.messages_to(&to).len(),
                None => sent_to(server, &to).await,
            }
        }
    };
    let account = server.new_account().await;
    let sudo = server.sudo(&account).await;
    let tag = unique("u");
    if let Some(ses) = &ses {
        ses.inject(Call::SesSendEmail, Fault::Reject, Times::Always);
    }
    for email in [
        format!("jörg.{tag}@example.com"),
        format!("用户{tag}@example.com"),
        format!("{tag}\u{200b}@example.com"),
        // Non-ASCII in both parts: the domain could be converted, the local part cannot.
        format!("josé.{tag}@bücher.de"),
    ] {
        let reply = server
            .post("/auth/v1/verification", json!({"email": email}))
            .await;
        reply.assert_error(400, "invalid_argument");
        assert!(
            reply.body["error_description"]
                .as_str()
                .unwrap()
                .contains("email"),
            "{}",
            reply.body
        );
        assert_eq!(sent_to(email.clone()).await, 0, "a code went to {email}");
        assert_eq!(sent_to(email.to_lowercase()).await, 0);
        server
            .call(
                "PATCH",
                "/auth/v1/user/contact",
                Some(&account.access_token),
                Some(json!({"sudo_token": sudo, "email": email, "verification_token": "x".repeat(40)})),
            )
            .await
            .assert_error(400, "invalid_argument");
        server
            .post(
                "/auth/v1/signup",
                json!({"email": email, "verification_token": "x".repeat(40), "password": "correct horse battery"}),
            )
            .await
            .assert_error(400, "invalid_argument");
    }
    if let Some(ses) = &ses {
        assert_eq!(ses.clear(), 0, "an undeliverable address reached SES");
    }
    // Deliverable addresses still get their code.
    let email = unique_email();
    server.send_code("email", &email).await;
    assert_eq!(sent_to(email.clone()).await, 1);
}

async fn an_internationalised_domain_is_sent_to_its_punycode(backend: Backend) {
    let server = start(backend).await;
    let account = server.new_account().await;
    let sudo = server.sudo(&account).await;
    let local = unique("nutzer");
    let typed = format!("{}@Bücher.de", local.to_uppercase());
    let punycode = format!("{local}@xn--bcher-kva.de");

    let verification = server
        .post("/auth/v1/verification", json!({"email": typed}))
        .await;
    verification.assert_ok();
    assert_eq!(sent_to(&server, &punycode).await, 1);
    assert_eq!(sent_to(&server, &typed).await, 0);
    assert_eq!(sent_to(&server, &typed.to_lowercase()).await, 0);
    let code = server.latest_code(&punycode).await;
    let verified = server
        .post(
            "/auth/v1/verification/verify",
            json!({"verification_id": verification.text("verification_id"), "verification_code": code}),
        )
        .await;
    // Bound as typed in Unicode; stored and answered in punycode.
    server
        .call(
            "PATCH",
            "/auth/v1/user/contact",
            Some(&account.access_token),
            Some(json!({"sudo_token": sudo, "email": typed, "verification_token": verified.text("verification_token")})),
        )
        .await
        .assert_ok();
    let me = server
        .call("GET", "/auth/v1/user/me", Some(&account.access_token), None)
        .await;
    assert_eq!(me.assert_ok()["email"], punycode.as_str());
    // Either spelling signs in to the account, and a code for the punycode spelling is for
    // the same, bound, address.
    for spelling in [
        typed.clone(),
        format!("{local}@bücher.de"),
        punycode.clone(),
    ] {
        let signin = server
            .post(
                "/auth/v1/signin",
                json!({"username": spelling, "password": account.password}),
            )
            .await;
        assert_eq!(
            signin.assert_ok()["sub"],
            account.sub.as_str(),
            "signing in as {spelling}"
        );
    }
    let again = server
        .post("/auth/v1/verification", json!({"email": punycode}))
        .await;
    assert_eq!(again.assert_ok()["is_user"], true);
    assert_eq!(sent_to(&server, &punycode).await, 2);
    // A domain that cannot be converted is refused, not sent.
    server
        .post(
            "/auth/v1/verification",
            json!({"email": format!("{local}@xn--.de")}),
        )
        .await
        .assert_error(400, "invalid_argument");
}
