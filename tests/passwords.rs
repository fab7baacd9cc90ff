//! Passwords and sessions over HTTP, against the real `local-api` binary on both backends:
//! changing the password (`PATCH /user/password`), resetting it by code (`POST /reset`) and
//! signing out everywhere (`DELETE /user/revoke/all`), with their refusals, a race with a
//! refresh, and a burst of resets sharing one token.

use std::sync::Arc;

use serde_json::{json, Value};
use test_support::server::{e164, unique_email, unique_phone, Account, Backend, Reply, Server};
use tokio::sync::Barrier;

const EXE: &str = env!("CARGO_BIN_EXE_local-api");
const NEW_PASSWORD: &str = "a brand new passphrase";

test_support::on_both_backends!(
    a_password_change_keeps_the_callers_session_and_ends_every_other_session_and_sudo_token,
    a_wrong_old_password_is_invalid_password_and_changes_nothing,
    a_password_change_needs_this_sessions_live_sudo_token,
    a_weak_new_password_is_invalid_password_and_spends_nothing,
    a_reset_by_email_code_ends_every_session_spends_the_token_and_tells_the_owner,
    a_reset_by_phone_takes_the_number_as_typed,
    a_reset_token_for_another_address_is_refused_and_stays_unspent,
    a_reset_for_an_address_without_an_account_is_not_found_to_the_tokens_holder_only,
    a_bare_code_as_reset_token_is_invalid_argument,
    revoking_all_ends_every_session_of_the_account_the_callers_too,
    a_password_change_racing_a_refresh_of_another_session_leaves_that_session_dead,
    simultaneous_resets_with_one_token_change_the_password_once,
    a_refresh_token_of_the_form_before_it_named_the_account_refreshes_until_the_epoch_moves,
);

/// Binding an address and then resetting by it sends two codes to it in a row: no resend gap.
async fn start(backend: Backend) -> Server {
    Server::start(EXE, backend, &[("AUTH_CODE_RESEND_INTERVAL_SECS", "0")]).await
}

async fn sign_in(server: &Server, username: &str, password: &str) -> Reply {
    server
        .post(
            "/auth/v1/signin",
            json!({"username": username, "password": password}),
        )
        .await
}

async fn change_password(server: &Server, access_token: &str, body: Value) -> Reply {
    server
        .call(
            "PATCH",
            "/auth/v1/user/password",
            Some(access_token),
            Some(body),
        )
        .await
}

/// A second sign-in of the account: another device.
async fn another_session(server: &Server, account: &Account) -> Reply {
    let reply = sign_in(server, &account.username, &account.password).await;
    reply.assert_ok();
    reply
}

/// Asserts that a session is over: its access token and its refresh token are refused.
async fn assert_ended(server: &Server, access_token: &str, refresh_token: &str) {
    server
        .me(access_token)
        .await
        .assert_error(401, "unauthenticated");
    server
        .refresh(refresh_token)
        .await
        .assert_error(400, "invalid_grant");
}

async fn a_password_change_keeps_the_callers_session_and_ends_every_other_session_and_sudo_token(
    backend: Backend,
) {
    let server = start(backend).await;
    let account = server.new_account().await;
    let other = another_session(&server, &account).await;
    let others_sudo = server
        .call(
            "POST",
            "/auth/v1/user/sudo",
            Some(&other.text("access_token")),
            Some(json!({"password": account.password})),
        )
        .await
        .text("sudo_token");
    let sudo = server.sudo(&account).await;

    let changed = change_password(
        &server,
        &account.access_token,
        json!({"sudo_token": sudo, "new_password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(changed.assert_ok(), &json!({}));

    // The caller goes on, and its refresh token still works.
    server.me(&account.access_token).await.assert_ok();
    let refreshed = server.refresh(&account.refresh_token).await;
    server.me(&refreshed.text("access_token")).await.assert_ok();
    // The other device is signed out.
    assert_ended(
        &server,
        &other.text("access_token"),
        &other.text("refresh_token"),
    )
    .await;
    // Every sudo token is spent with the old epoch, the caller's own too.
    for token in [&sudo, &others_sudo] {
        change_password(
            &server,
            &refreshed.text("access_token"),
            json!({"sudo_token": token, "new_password": "yet another passphrase"}),
        )
        .await
        .assert_error(403, "permission_denied");
    }
    sign_in(&server, &account.username, &account.password)
        .await
        .assert_error(400, "invalid_username_or_password");
    let signed_in = sign_in(&server, &account.username, NEW_PASSWORD).await;
    assert_eq!(signed_in.assert_ok()["sub"], account.sub.as_str());
    server.me(&signed_in.text("access_token")).await.assert_ok();
}

async fn a_wrong_old_password_is_invalid_password_and_changes_nothing(backend: Backend) {
    let server = start(backend).await;
    let account = server.new_account().await;
    // `resetPasswordForOld` asks for sudo with the old password first, and stops at its error.
    server
        .call(
            "POST",
            "/auth/v1/user/sudo",
            Some(&account.access_token),
            Some(json!({"password": "not the old password"})),
        )
        .await
        .assert_error(400, "invalid_password");
    sign_in(&server, &account.username, &account.password)
        .await
        .assert_ok();
    sign_in(&server, &account.username, NEW_PASSWORD)
        .await
        .assert_error(400, "invalid_username_or_password");
}

async fn a_password_change_needs_this_sessions_live_sudo_token(backend: Backend) {
    let server = start(backend).await;
    let account = server.new_account().await;
    let other = another_session(&server, &account).await;
    let stranger = server.new_account().await;
    let strangers_sudo = server.sudo(&stranger).await;
    let sudo_of_other_session = server
        .call(
            "POST",
            "/auth/v1/user/sudo",
            Some(&other.text("access_token")),
            Some(json!({"password": account.password})),
        )
        .await
        .text("sudo_token");
    for body in [
        json!({"new_password": NEW_PASSWORD}),
        json!({"sudo_token": "", "new_password": NEW_PASSWORD}),
        json!({"sudo_token": "made-up-sudo-token", "new_password": NEW_PASSWORD}),
        json!({"sudo_token": strangers_sudo, "new_password": NEW_PASSWORD}),
        json!({"sudo_token": sudo_of_other_session, "new_password": NEW_PASSWORD}),
    ] {
        change_password(&server, &account.access_token, body.clone())
            .await
            .assert_error(403, "permission_denied");
    }
    // Without a bearer token there is no caller at all.
    server
        .call(
            "PATCH",
            "/auth/v1/user/password",
            None,
            Some(json!({"sudo_token": strangers_sudo, "new_password": NEW_PASSWORD})),
        )
        .await
        .assert_error(401, "unauthenticated");
    // Nothing changed: both sessions live and the password is the old one.
    server.me(&other.text("access_token")).await.assert_ok();
    sign_in(&server, &account.username, &account.password)
        .await
        .assert_ok();
}

async fn a_weak_new_password_is_invalid_password_and_spends_nothing(backend: Backend) {
    let server = start(backend).await;
    let account = server.new_account().await;
    let sudo = server.sudo(&account).await;
    change_password(
        &server,
        &account.access_token,
        json!({"sudo_token": sudo, "new_password": "short"}),
    )
    .await
    .assert_error(400, "invalid_password");
    change_password(&server, &account.access_token, json!({"sudo_token": sudo}))
        .await
        .assert_error(400, "invalid_argument");
    // The same sudo token still serves a good password.
    change_password(
        &server,
        &account.access_token,
        json!({"sudo_token": sudo, "new_password": NEW_PASSWORD}),
    )
    .await
    .assert_ok();
    sign_in(&server, &account.username, NEW_PASSWORD)
        .await
        .assert_ok();
}

/// An account with an email bound the seed way, and the email.
async fn account_with_email(server: &Server) -> (Account, String) {
    let account = server.new_account().await;
    let email = unique_email();
    server.bind_email(&account, &email).await.assert_ok();
    (account, email)
}

/// A verification token for an address, earned as `resetPasswordForEmail` earns it.
async fn recovery_token(server: &Server, field: &str, address: &str, to: &str) -> String {
    let sent = server
        .post(
            "/auth/v1/verification",
            json!({ field: address, "usage": "recovery", "target": "USER" }),
        )
        .await;
    let code = server.latest_code(to).await;
    server
        .post(
            "/auth/v1/verification/verify",
            json!({"verification_id": sent.text("verification_id"), "verification_code": code}),
        )
        .await
        .text("verification_token")
}

async fn reset(server: &Server, body: Value) -> Reply {
    server.post("/auth/v1/reset", body).await
}

async fn a_reset_by_email_code_ends_every_session_spends_the_token_and_tells_the_owner(
    backend: Backend,
) {
    let server = start(backend).await;
    let (account, email) = account_with_email(&server).await;
    let other = another_session(&server, &account).await;
    let token = recovery_token(&server, "email", &email, &email).await;
    let body = json!({"email": email, "new_password": NEW_PASSWORD, "verification_token": token});

    assert_eq!(reset(&server, body.clone()).await.assert_ok(), &json!({}));
    for (access, refresh) in [
        (account.access_token.clone(), account.refresh_token.clone()),
        (other.text("access_token"), other.text("refresh_token")),
    ] {
        assert_ended(&server, &access, &refresh).await;
    }
    reset(&server, body)
        .await
        .assert_error(403, "permission_denied");
    sign_in(&server, &email, &account.password)
        .await
        .assert_error(400, "invalid_username_or_password");
    let signed_in = sign_in(&server, &email, NEW_PASSWORD).await;
    assert_eq!(signed_in.assert_ok()["sub"], account.sub.as_str());
    let notices = server.messages_to(&email).await;
    assert!(
        notices
            .last()
            .is_some_and(|notice| notice.contains("password of your account was changed")),
        "{notices:?}"
    );
}

async fn a_reset_by_phone_takes_the_number_as_typed(backend: Backend) {
    let server = start(backend).await;
    let account = server.new_account().await;
    let phone = unique_phone();
    let sudo = server.sudo(&account).await;
    let token = server
        .verification_token("phone_number", &phone, &e164(&phone))
        .await;
    server
        .bind_contact(&account, &sudo, "phone_number", &phone, &token)
        .await
        .assert_ok();
    // `resetPasswordForEmail` sends `+86 139…` for the code, and `/reset` gets the number
    // exactly as the user typed it.
    let national = phone.trim_start_matches("+86 ").to_string();
    let token = recovery_token(&server, "phone_number", &phone, &e164(&phone)).await;
    reset(
        &server,
        json!({"phone_number": national, "new_password": NEW_PASSWORD, "verification_token": token}),
    )
    .await
    .assert_ok();
    let signed_in = sign_in(&server, &phone, NEW_PASSWORD).await;
    assert_eq!(signed_in.assert_ok()["sub"], account.sub.as_str());
}

async fn a_reset_token_for_another_address_is_refused_and_stays_unspent(backend: Backend) {
    let server = start(backend).await;
    let (victim, victims_email) = account_with_email(&server).await;
    let (attacker, attackers_email) = account_with_email(&server).await;
    let token = recovery_token(&server, "email", &attackers_email, &attackers_email).await;
    reset(
        &server,
        json!({"email": victims_email, "new_password": NEW_PASSWORD, "verification_token": token}),
    )
    .await
    .assert_error(403, "permission_denied");
    server.me(&victim.access_token).await.assert_ok();
    sign_in(&server, &victims_email, &victim.password)
        .await
        .assert_ok();
    // Unspent: it still resets the address it was issued for.
    reset(
        &server,
        json!({"email": attackers_email, "new_password": NEW_PASSWORD, "verification_token": token}),
    )
    .await
    .assert_ok();
    let signed_in = sign_in(&server, &attackers_email, NEW_PASSWORD).await;
    assert_eq!(signed_in.assert_ok()["sub"], attacker.sub.as_str());
}

async fn a_reset_for_an_address_without_an_account_is_not_found_to_the_tokens_holder_only(
    backend: Backend,
) {
    let server = start(backend).await;
    let (_, bound) = account_with_email(&server).await;
    let free = unique_email();
    let token = server
        .verification_token("email", &free, &free.to_lowercase())
        .await;
    let body = |email: &str, token: &str| json!({"email": email, "new_password": NEW_PASSWORD, "verification_token": token});
    // Without a live token for the address, whether it has an account is not told.
    for email in [&free, &bound] {
        reset(&server, body(email, "a-made-up-verification-token"))
            .await
            .assert_error(403, "permission_denied");
    }
    // The token's holder proved the address is theirs: they learn it has no account.
    reset(&server, body(&free, &token))
        .await
        .assert_error(404, "not_found");
}

async fn a_bare_code_as_reset_token_is_invalid_argument(backend: Backend) {
    let server = start(backend).await;
    let account = server.new_account().await;
    let phone = unique_phone();
    let sudo = server.sudo(&account).await;
    let token = server
        .verification_token("phone_number", &phone, &e164(&phone))
        .await;
    server
        .bind_contact(&account, &sudo, "phone_number", &phone, &token)
        .await
        .assert_ok();
    // `forceResetPwdByPhoneCode` sends the code itself, without the id of its verification.
    server.send_code("phone_number", &phone).await;
    let code = server.latest_code(&e164(&phone)).await;
    reset(
        &server,
        json!({"phone_number": phone, "new_password": NEW_PASSWORD, "verification_token": code}),
    )
    .await
    .assert_error(400, "invalid_argument");
    sign_in(&server, &phone, &account.password)
        .await
        .assert_ok();
}

async fn revoking_all_ends_every_session_of_the_account_the_callers_too(backend: Backend) {
    let server = start(backend).await;
    let account = server.new_account().await;
    let other = another_session(&server, &account).await;
    let bystander = server.new_account().await;
    let revoked = server
        .call(
            "DELETE",
            "/auth/v1/user/revoke/all",
            Some(&account.access_token),
            None,
        )
        .await;
    assert_eq!(revoked.assert_ok(), &json!({}));
    assert_ended(&server, &account.access_token, &account.refresh_token).await;
    assert_ended(
        &server,
        &other.text("access_token"),
        &other.text("refresh_token"),
    )
    .await;
    // Another account is untouched, and this one signs in again.
    server.me(&bystander.access_token).await.assert_ok();
    let again = sign_in(&server, &account.username, &account.password).await;
    server.me(&again.text("access_token")).await.assert_ok();
    // An ended session cannot revoke anything more.
    server
        .call(
            "DELETE",
            "/auth/v1/user/revoke/all",
            Some(&account.access_token),
            None,
        )
        .await
        .assert_error(401, "unauthenticated");
    server.me(&again.text("access_token")).await.assert_ok();
}

async fn a_password_change_racing_a_refresh_of_another_session_leaves_that_session_dead(
    backend: Backend,
) {
    let server = start(backend).await;
    let mut account = server.new_account().await;
    for round in 0..4 {
        let other = another_session(&server, &account).await;
        let sudo = server.sudo(&account).await;
        let new_password = format!("{NEW_PASSWORD} {round}");
        let barrier = Barrier::new(2);
        let (changed, refreshed) = tokio::join!(
            async {
                barrier.wait().await;
                change_password(
                    &server,
                    &account.access_token,
                    json!({"sudo_token": sudo, "new_password": new_password}),
                )
                .await
            },
            async {
                barrier.wait().await;
                server.refresh(&other.text("refresh_token")).await
            },
        );
        changed.assert_ok();
        // Whichever came first, the other session is over: its rotated tokens too.
        let (access, refresh) = match refreshed.status {
            200 => (
                refreshed.text("access_token"),
                refreshed.text("refresh_token"),
            ),
            _ => {
                refreshed.assert_error(400, "invalid_grant");
                (other.text("access_token"), other.text("refresh_token"))
            }
        };
        assert_ended(&server, &access, &refresh).await;
        server.me(&account.access_token).await.assert_ok();
        account.password = new_password;
    }
}

async fn simultaneous_resets_with_one_token_change_the_password_once(backend: Backend) {
    let server = start(backend).await;
    let (account, email) = account_with_email(&server).await;
    let token = recovery_token(&server, "email", &email, &email).await;
    let burst = 8;
    let barrier = Arc::new(Barrier::new(burst));
    let tasks: Vec<_> = (0..burst)
        .map(|i| {
            let (barrier, origin) = (Arc::clone(&barrier), server.origin.clone());
            let body = json!({
                "email": email,
                "new_password": format!("{NEW_PASSWORD} {i}"),
                "verification_token": token,
            });
            tokio::spawn(async move {
                barrier.wait().await;
                Server::post_to(&origin, None, None, "/auth/v1/reset", body).await
            })
        })
        .collect();
    // The token is held by the first reset that uses it: the others are refused before any
    // hashing (or, past it, find the token spent).
    let mut winners = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let reply = task.await.expect("a reset task");
        match (reply.status, reply.error()) {
            (200, _) => winners.push(i),
            (429, "resource_exhausted") | (403, "permission_denied") => {}
            _ => panic!("unexpected answer {}: {}", reply.status, reply.body),
        }
    }
    assert_eq!(winners.len(), 1, "resets that succeeded: {winners:?}");
    let winner = winners[0];
    let signed_in = sign_in(&server, &email, &format!("{NEW_PASSWORD} {winner}")).await;
    assert_eq!(signed_in.assert_ok()["sub"], account.sub.as_str());
    // A few of the losing passwords (more would meet the password throttle).
    for i in (0..burst).filter(|&i| i != winner).take(3) {
        sign_in(&server, &email, &format!("{NEW_PASSWORD} {i}"))
            .await
            .assert_error(400, "invalid_username_or_password");
    }
}

async fn a_refresh_token_of_the_form_before_it_named_the_account_refreshes_until_the_epoch_moves(
    backend: Backend,
) {
    let server = start(backend).await;
    let account = server.new_account().await;
    // `<session>.<user>.<secret>` as issued now; `<session>.<secret>` before.
    let old_form = |token: &str| {
        let (session, rest) = token.split_once('.').expect("<session>.<rest>");
        let (user, secret) = rest.split_once('.').expect("<user>.<secret>");
        assert_eq!(user, account.sub);
        format!("{session}.{secret}")
    };
    let refreshed = server.refresh(&old_form(&account.refresh_token)).await;
    refreshed.assert_ok();
    let other = another_session(&server, &account).await;
    server
        .call(
            "DELETE",
            "/auth/v1/user/revoke/all",
            Some(&other.text("access_token")),
            None,
        )
        .await
        .assert_ok();
    server
        .refresh(&old_form(&refreshed.text("refresh_token")))
        .await
        .assert_error(400, "invalid_grant");
}
