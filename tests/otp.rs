//! Sign-in by code, anonymous accounts and binding a verified address (issue 14), spoken to
//! the real `local-api` binary on the embedded store and on DynamoDB, SES and SNS via moto.

use std::time::Duration;

use serde_json::json;
use test_support::jwt;
use test_support::server::{e164, unique_email, unique_phone, Account, Backend, Reply, Server};

const EXE: &str = env!("CARGO_BIN_EXE_local-api");

test_support::on_both_backends!(
    a_code_signs_in_the_account_holding_its_address_whatever_username_says_of_it,
    a_code_for_an_address_without_account_is_not_found_and_stays_unspent,
    a_username_naming_another_address_is_refused_and_the_code_stays_unspent,
    a_spent_code_signs_in_nobody,
    sign_up_by_code_takes_the_sdks_verification_code_and_no_password,
    verification_takes_the_sdks_usages_and_target_user_refuses_unknown_addresses,
    anonymous_sign_in_makes_an_account_the_sdk_sees_as_anonymous,
    an_anonymous_account_ends_at_its_expiry,
    binding_a_verified_email_upgrades_an_anonymous_account_keeping_its_sub,
    binding_a_verified_phone_replaces_the_old_one_and_tells_it,
    basic_edit_refuses_an_address_this_account_did_not_just_verify,
    basic_edit_refuses_an_address_of_another_account,
    basic_edit_of_an_account_with_a_way_in_needs_a_recent_sign_in,
    an_address_bound_by_code_is_a_way_in_so_wechat_can_be_unbound,
    a_username_naming_another_address_in_any_spelling_is_refused,
    an_anonymous_account_gets_no_username_by_profile_edit,
);

/// Codes to one address follow each other here faster than the resend gap allows.
async fn start(backend: Backend, settings: &[(&str, &str)]) -> Server {
    let mut all = vec![("AUTH_CODE_RESEND_INTERVAL_SECS", "0")];
    all.extend_from_slice(settings);
    Server::start(EXE, backend, &all).await
}

/// Sends a code as the SDK does (`bearer` when it holds a session) and verifies it; answers
/// the verification token.
async fn code_token(server: &Server, bearer: Option<&str>, field: &str, address: &str) -> String {
    let sent = server
        .call(
            "POST",
            "/auth/v1/verification",
            bearer,
            Some(json!({ field: address, "usage": "reauthentication" })),
        )
        .await;
    let id = sent.text("verification_id");
    let to = if field == "email" {
        address.to_lowercase()
    } else {
        e164(address)
    };
    let code = server.latest_code(&to).await;
    server
        .post(
            "/auth/v1/verification/verify",
            json!({"verification_id": id, "verification_code": code}),
        )
        .await
        .text("verification_token")
}

async fn sign_in_by_code(server: &Server, username: &str, token: &str) -> Reply {
    server
        .post(
            "/auth/v1/signin",
            json!({"username": username, "verification_token": token}),
        )
        .await
}

async fn basic_edit(server: &Server, access_token: &str, body: serde_json::Value) -> Reply {
    server
        .call(
            "POST",
            "/auth/v1/user/basic/edit",
            Some(access_token),
            Some(body),
        )
        .await
}

/// A username account with `email` bound the seed way.
async fn account_with_email(server: &Server, email: &str) -> Account {
    let account = server.new_account().await;
    server.bind_email(&account, email).await.assert_ok();
    account
}

async fn anonymous(server: &Server) -> Reply {
    let reply = server.post("/auth/v1/signin/anonymously", json!({})).await;
    reply.assert_ok();
    reply
}

async fn a_code_signs_in_the_account_holding_its_address_whatever_username_says_of_it(
    backend: Backend,
) {
    let server = start(backend, &[]).await;
    let email = unique_email();
    let account = account_with_email(&server, &email).await;
    // `verifyOtp` names the address; `reauthenticate().updateUser({nonce})` sends "".
    for username in [email.to_uppercase(), String::new()] {
        let token = code_token(&server, None, "email", &email).await;
        let signed_in = sign_in_by_code(&server, &username, &token).await;
        signed_in.assert_ok();
        assert_eq!(signed_in.text("sub"), account.sub);
        assert_eq!(signed_in.body["scope"], "user");
        server.me(&signed_in.text("access_token")).await.assert_ok();
    }
    // A phone user: `"+86 138…"`, or `"+86 "` when the SDK leaves it to the token.
    let phone = unique_phone();
    let sudo = server.sudo(&account).await;
    let token = code_token(&server, None, "phone_number", &phone).await;
    server
        .bind_contact(&account, &sudo, "phone_number", &phone, &token)
        .await
        .assert_ok();
    for username in [phone.clone(), "+86 ".to_string()] {
        let token = code_token(&server, None, "phone_number", &phone).await;
        let signed_in = sign_in_by_code(&server, &username, &token).await;
        assert_eq!(signed_in.text("sub"), account.sub, "{username:?}");
    }
}

async fn a_code_for_an_address_without_account_is_not_found_and_stays_unspent(backend: Backend) {
    let server = start(backend, &[]).await;
    let email = unique_email();
    let token = code_token(&server, None, "email", &email).await;
    for username in [email.as_str(), ""] {
        sign_in_by_code(&server, username, &token)
            .await
            .assert_error(404, "not_found");
    }
    // The SDK's sign-up path takes the same token: nothing was spent.
    server
        .post(
            "/auth/v1/signup",
            json!({"email": email, "verification_token": token}),
        )
        .await
        .assert_ok();
}

async fn a_username_naming_another_address_is_refused_and_the_code_stays_unspent(backend: Backend) {
    let server = start(backend, &[]).await;
    let email = unique_email();
    let other = unique_email();
    let account = account_with_email(&server, &email).await;
    account_with_email(&server, &other).await;
    let token = code_token(&server, None, "email", &email).await;
    for username in [other.as_str(), account.username.as_str(), "+86 13800000000"] {
        sign_in_by_code(&server, username, &token)
            .await
            .assert_error(403, "permission_denied");
    }
    let signed_in = sign_in_by_code(&server, &email, &token).await;
    assert_eq!(signed_in.text("sub"), account.sub);
}

async fn a_spent_code_signs_in_nobody(backend: Backend) {
    let server = start(backend, &[]).await;
    let email = unique_email();
    account_with_email(&server, &email).await;
    let token = code_token(&server, None, "email", &email).await;
    sign_in_by_code(&server, &email, &token).await.assert_ok();
    sign_in_by_code(&server, &email, &token)
        .await
        .assert_error(403, "permission_denied");
    sign_in_by_code(&server, "", "not-a-token-anyone-issued")
        .await
        .assert_error(403, "permission_denied");
    // Password and code together are ambiguous.
    server
        .post(
            "/auth/v1/signin",
            json!({"username": email, "password": "x", "verification_token": token}),
        )
        .await
        .assert_error(400, "invalid_argument");
}

async fn sign_up_by_code_takes_the_sdks_verification_code_and_no_password(backend: Backend) {
    let server = start(backend, &[]).await;
    let email = unique_email();
    let token = code_token(&server, None, "email", &email).await;
    let signed_up = server
        .post(
            "/auth/v1/signup",
            json!({"email": email, "verification_token": token, "verification_code": "123456"}),
        )
        .await;
    signed_up.assert_ok();
    // It now signs in by code, to the same account.
    let token = code_token(&server, None, "email", &email).await;
    let signed_in = sign_in_by_code(&server, &email, &token).await;
    assert_eq!(signed_in.text("sub"), signed_up.text("sub"));
}

async fn verification_takes_the_sdks_usages_and_target_user_refuses_unknown_addresses(
    backend: Backend,
) {
    let server = start(backend, &[]).await;
    let email = unique_email();
    account_with_email(&server, &email).await;
    let unknown = unique_email();
    for usage in ["email", "recovery", "reauthentication"] {
        for (address, is_user) in [(&email, true), (&unknown, false)] {
            let sent = server
                .post(
                    "/auth/v1/verification",
                    json!({"email": address, "usage": usage}),
                )
                .await;
            assert_eq!(sent.assert_ok()["is_user"], is_user, "{usage}");
        }
    }
    server
        .post(
            "/auth/v1/verification",
            json!({"email": unknown, "usage": "email", "target": "USER"}),
        )
        .await
        .assert_error(404, "not_found");
}

async fn anonymous_sign_in_makes_an_account_the_sdk_sees_as_anonymous(backend: Backend) {
    let server = start(backend, &[]).await;
    let first = anonymous(&server).await;
    assert_eq!(first.body["scope"], "anonymous");
    // The access token says so too, for the app's own API to tell.
    assert_eq!(scope_claim(&first), "anonymous");
    assert_eq!(first.body["token_type"], "Bearer");
    let who = server.me(&first.text("access_token")).await;
    assert_eq!(who.body["name"], "anonymous");
    assert_eq!(who.body["sub"], first.body["sub"]);
    assert_eq!(who.body["email"], "");
    // The SDK's own retry after a failed refresh carries `Basic <client id:secret>`.
    let retried = server
        .send(
            server
                .raw(reqwest::Method::POST, "/auth/v1/signin/anonymously")
                .header("authorization", "Basic ZW52LWlkOnVuZGVmaW5lZA==")
                .body("{}"),
        )
        .await;
    retried.assert_ok();
    assert_ne!(retried.body["sub"], first.body["sub"], "a new account");
    // A refresh keeps saying so.
    let refreshed = server.refresh(&first.text("refresh_token")).await;
    assert_eq!(refreshed.body["scope"], "anonymous");
    assert_eq!(scope_claim(&refreshed), "anonymous");
}

/// The `scope` claim of the access token of a credentials answer.
fn scope_claim(credentials: &Reply) -> String {
    let token = credentials.text("access_token");
    jwt::decode_part(jwt::parts(&token).1)["scope"]
        .as_str()
        .expect("a scope claim")
        .to_string()
}

async fn an_anonymous_account_ends_at_its_expiry(backend: Backend) {
    let server = start(backend, &[("AUTH_ANONYMOUS_ACCOUNT_TTL_SECS", "2")]).await;
    let visitor = anonymous(&server).await;
    server.me(&visitor.text("access_token")).await.assert_ok();
    tokio::time::sleep(Duration::from_millis(3100)).await;
    server
        .me(&visitor.text("access_token"))
        .await
        .assert_error(401, "unauthenticated");
    server
        .refresh(&visitor.text("refresh_token"))
        .await
        .assert_error(400, "invalid_grant");
}

async fn binding_a_verified_email_upgrades_an_anonymous_account_keeping_its_sub(backend: Backend) {
    let server = start(backend, &[("AUTH_ANONYMOUS_ACCOUNT_TTL_SECS", "3")]).await;
    let visitor = anonymous(&server).await;
    let access = visitor.text("access_token");
    let email = unique_email();
    code_token(&server, Some(&access), "email", &email).await;
    basic_edit(&server, &access, json!({ "email": email }))
        .await
        .assert_ok();
    let who = server.me(&access).await;
    assert_eq!(who.body["email"], email.to_lowercase());
    assert_eq!(who.body["name"], "", "no longer anonymous");
    // Its session's next credentials say so.
    let refreshed = server.refresh(&visitor.text("refresh_token")).await;
    assert_eq!(refreshed.body["scope"], "user");
    assert_eq!(scope_claim(&refreshed), "user");
    // It outlives the anonymous expiry, and signs in by code to the same sub.
    tokio::time::sleep(Duration::from_millis(4100)).await;
    server.me(&access).await.assert_ok();
    let sent = server
        .post(
            "/auth/v1/verification",
            json!({"email": email, "usage": "email"}),
        )
        .await;
    assert_eq!(sent.body["is_user"], true);
    let token = code_token(&server, None, "email", &email).await;
    let signed_in = sign_in_by_code(&server, &email, &token).await;
    assert_eq!(signed_in.text("sub"), visitor.text("sub"));
    assert_eq!(signed_in.body["scope"], "user");
    assert_eq!(scope_claim(&signed_in), "user");
}

async fn binding_a_verified_phone_replaces_the_old_one_and_tells_it(backend: Backend) {
    let server = start(backend, &[]).await;
    let visitor = anonymous(&server).await;
    let access = visitor.text("access_token");
    let (first, second) = (unique_phone(), unique_phone());
    for phone in [&first, &second] {
        code_token(&server, Some(&access), "phone_number", phone).await;
        basic_edit(&server, &access, json!({ "phone": phone }))
            .await
            .assert_ok();
    }
    assert_eq!(server.me(&access).await.body["phone_number"], second);
    let told = server.messages_to(&e164(&first)).await;
    assert!(
        told.last()
            .is_some_and(|m| m.contains("no longer signs in")),
        "{told:?}"
    );
    // The first number is free again.
    let other = anonymous(&server).await.text("access_token");
    code_token(&server, Some(&other), "phone_number", &first).await;
    basic_edit(&server, &other, json!({ "phone": first }))
        .await
        .assert_ok();
}

async fn basic_edit_refuses_an_address_this_account_did_not_just_verify(backend: Backend) {
    let server = start(backend, &[("AUTH_VERIFICATION_TOKEN_TTL_SECS", "2")]).await;
    let visitor = anonymous(&server).await.text("access_token");
    let refused = |reply: Reply| reply.assert_error(403, "permission_denied");
    // No code at all.
    refused(basic_edit(&server, &visitor, json!({"email": unique_email()})).await);
    // A code verified without a bearer (anybody's).
    let email = unique_email();
    code_token(&server, None, "email", &email).await;
    refused(basic_edit(&server, &visitor, json!({ "email": email })).await);
    // A code another account asked for.
    let other = anonymous(&server).await.text("access_token");
    let theirs = unique_email();
    code_token(&server, Some(&other), "email", &theirs).await;
    refused(basic_edit(&server, &visitor, json!({ "email": theirs })).await);
    // A code sent at this account's request, but never verified.
    let unverified = unique_email();
    server
        .call(
            "POST",
            "/auth/v1/verification",
            Some(&visitor),
            Some(json!({ "email": unverified })),
        )
        .await
        .assert_ok();
    refused(basic_edit(&server, &visitor, json!({ "email": unverified })).await);
    // A memory is spent by its bind: replayed, it binds nothing.
    let mine = unique_email();
    code_token(&server, Some(&visitor), "email", &mine).await;
    basic_edit(&server, &visitor, json!({ "email": mine }))
        .await
        .assert_ok();
    let later = unique_email();
    code_token(&server, Some(&visitor), "email", &later).await;
    basic_edit(&server, &visitor, json!({ "email": later }))
        .await
        .assert_ok();
    refused(basic_edit(&server, &visitor, json!({ "email": later })).await);
    // Verified, but too long ago.
    let stale = anonymous(&server).await.text("access_token");
    let late = unique_email();
    code_token(&server, Some(&stale), "email", &late).await;
    tokio::time::sleep(Duration::from_millis(3100)).await;
    refused(basic_edit(&server, &stale, json!({ "email": late })).await);
    // Bad input is 4xx in the contract's shape.
    for body in [
        json!({}),
        json!({"email": "not an email"}),
        json!({"email": unique_email(), "phone": unique_phone()}),
        json!({"description": "x"}),
    ] {
        basic_edit(&server, &visitor, body)
            .await
            .assert_error(400, "invalid_argument");
    }
    server
        .call(
            "POST",
            "/auth/v1/user/basic/edit",
            None,
            Some(json!({"email": mine})),
        )
        .await
        .assert_error(401, "unauthenticated");
}

async fn basic_edit_refuses_an_address_of_another_account(backend: Backend) {
    let server = start(backend, &[]).await;
    let email = unique_email();
    account_with_email(&server, &email).await;
    let visitor = anonymous(&server).await.text("access_token");
    code_token(&server, Some(&visitor), "email", &email).await;
    basic_edit(&server, &visitor, json!({ "email": email }))
        .await
        .assert_error(409, "already_exists");
    assert_eq!(server.me(&visitor).await.body["name"], "anonymous");
}

async fn basic_edit_of_an_account_with_a_way_in_needs_a_recent_sign_in(backend: Backend) {
    let server = start(backend, &[("AUTH_RECENT_AUTH_SECS", "2")]).await;
    let account = server.new_account().await;
    let email = unique_email();
    tokio::time::sleep(Duration::from_millis(3100)).await;
    code_token(&server, Some(&account.access_token), "email", &email).await;
    basic_edit(&server, &account.access_token, json!({ "email": email }))
        .await
        .assert_error(403, "permission_denied");
    // Sudo proves the session again; the memory was not spent by the refusal.
    server.sudo(&account).await;
    basic_edit(&server, &account.access_token, json!({ "email": email }))
        .await
        .assert_ok();
}

/// An email signs in by code: once a WeChat-only account has one, WeChat is no longer its last
/// way in.
async fn an_address_bound_by_code_is_a_way_in_so_wechat_can_be_unbound(backend: Backend) {
    let fake = test_support::wechat::start().await;
    let wechat = test_support::wechat::settings(&fake);
    let settings: Vec<(&str, &str)> = wechat.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = start(backend, &settings).await;
    let grant = server
        .provider_token(&format!("ok:{}", unique_email()))
        .await;
    let signup = server
        .post(
            "/auth/v1/signup",
            json!({"provider_token": grant.text("provider_token")}),
        )
        .await;
    let access = signup.text("access_token");
    let unbind = || {
        server.call(
            "DELETE",
            "/auth/v1/user/provider/wx_open",
            Some(&access),
            None,
        )
    };
    unbind().await.assert_error(412, "failed_precondition");
    let email = unique_email();
    code_token(&server, Some(&access), "email", &email).await;
    basic_edit(&server, &access, json!({ "email": email }))
        .await
        .assert_ok();
    unbind().await.assert_ok();
    let token = code_token(&server, None, "email", &email).await;
    let signed_in = sign_in_by_code(&server, &email, &token).await;
    assert_eq!(signed_in.text("sub"), signup.text("sub"));
}

/// A username account with `phone` bound the seed way.
async fn account_with_phone(server: &Server, phone: &str) -> Account {
    let account = server.new_account().await;
    let token = code_token(server, None, "phone_number", phone).await;
    let sudo = server.sudo(&account).await;
    server
        .bind_contact(&account, &sudo, "phone_number", phone, &token)
        .await
        .assert_ok();
    account
}

async fn a_username_naming_another_address_in_any_spelling_is_refused(backend: Backend) {
    let server = start(backend, &[]).await;
    let (theirs, mine) = (unique_phone(), unique_phone());
    let victim = account_with_phone(&server, &theirs).await;
    let victims_email = unique_email();
    server.bind_email(&victim, &victims_email).await.assert_ok();
    let attacker = account_with_phone(&server, &mine).await;
    let token = code_token(&server, None, "phone_number", &mine).await;
    let national = theirs.trim_start_matches("+86 ").to_string();
    for username in [
        theirs.clone(),
        e164(&theirs),
        national.clone(),
        format!("+86-{national}"),
        victims_email.to_uppercase(),
    ] {
        let reply = sign_in_by_code(&server, &username, &token).await;
        reply.assert_error(403, "permission_denied");
    }
    // The token is unspent, and signs in its own number's account in any spelling.
    let signed_in = sign_in_by_code(&server, &e164(&mine), &token).await;
    assert_eq!(signed_in.text("sub"), attacker.sub);
    assert_ne!(attacker.sub, victim.sub);
}

async fn an_anonymous_account_gets_no_username_by_profile_edit(backend: Backend) {
    let server = start(backend, &[]).await;
    let visitor = anonymous(&server).await.text("access_token");
    let name = test_support::server::unique("visitor");
    let email = unique_email();
    code_token(&server, Some(&visitor), "email", &email).await;
    for (method, path, body) in [
        (
            "POST",
            "/auth/v1/user/basic/edit",
            json!({ "username": name }),
        ),
        (
            "PATCH",
            "/auth/v1/user/profile",
            json!({ "username": name }),
        ),
        // Not even beside the address that would make it permanent.
        (
            "POST",
            "/auth/v1/user/basic/edit",
            json!({"username": name, "email": email}),
        ),
    ] {
        let reply = server.call(method, path, Some(&visitor), Some(body)).await;
        reply.assert_error(412, "failed_precondition");
        assert!(
            reply.body["error_description"]
                .as_str()
                .is_some_and(|d| d.contains("anonymous")),
            "{}",
            reply.body
        );
    }
    let me = server.me(&visitor).await;
    assert_eq!(
        (&me.body["name"], &me.body["username"]),
        (&json!("anonymous"), &json!(""))
    );
    // The upgrade makes it permanent (the remembered code was not spent by the refusals);
    // then a username is the account's to choose.
    basic_edit(&server, &visitor, json!({ "email": email }))
        .await
        .assert_ok();
    basic_edit(&server, &visitor, json!({ "username": name }))
        .await
        .assert_ok();
    assert_eq!(server.me(&visitor).await.body["username"], name.as_str());
}
