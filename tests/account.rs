//! Deleting the account and editing the profile (issue 14), spoken to the real `local-api`
//! binary on the embedded store and on DynamoDB via moto.

use serde_json::{json, Value};
use test_support::server::{
    e164, unique, unique_email, unique_phone, Account, Backend, Reply, Server,
};

const EXE: &str = env!("CARGO_BIN_EXE_local-api");

test_support::on_both_backends!(
    deleting_the_account_frees_its_username_and_email_and_ends_every_session,
    deletion_without_a_live_sudo_token_of_this_session_is_permission_denied,
    profile_edits_show_in_user_me_and_patch_answers_the_user,
    a_new_username_signs_in_and_the_old_one_stays_reserved_for_its_last_owner,
    a_rename_needs_a_recent_sign_in_and_tells_the_bound_addresses,
    bad_profile_values_are_refused_in_the_error_shape_and_change_nothing,
    deleting_an_account_while_its_email_is_bound_leaves_no_key_of_a_deleted_account,
);

async fn start(backend: Backend) -> Server {
    start_with(backend, &[]).await
}

async fn start_with(backend: Backend, settings: &[(&str, &str)]) -> Server {
    let mut all = vec![
        ("AUTH_CODE_RESEND_INTERVAL_SECS", "0"),
        ("AUTH_CODE_SENDS_PER_ADDRESS_PER_HOUR", "100"),
        ("AUTH_CODE_SENDS_PER_IP_PER_HOUR", "1000"),
        ("AUTH_VERIFY_ATTEMPTS_PER_IP_PER_HOUR", "1000"),
    ];
    all.extend_from_slice(settings);
    Server::start(EXE, backend, &all).await
}

async fn delete(server: &Server, access_token: &str, query: &str) -> Reply {
    server
        .call(
            "DELETE",
            &format!("/auth/v1/user/me{query}"),
            Some(access_token),
            None,
        )
        .await
}

async fn basic_edit(server: &Server, account: &Account, body: Value) -> Reply {
    server
        .call(
            "POST",
            "/auth/v1/user/basic/edit",
            Some(&account.access_token),
            Some(body),
        )
        .await
}

async fn sign_in(server: &Server, username: &str, password: &str) -> Reply {
    server
        .post(
            "/auth/v1/signin",
            json!({"username": username, "password": password}),
        )
        .await
}

async fn deleting_the_account_frees_its_username_and_email_and_ends_every_session(
    backend: Backend,
) {
    let server = start(backend).await;
    let account = server.new_account().await;
    let email = unique_email();
    server.bind_email(&account, &email).await.assert_ok();
    let phone = unique_phone();
    let phone_token = server
        .verification_token("phone_number", &phone, &e164(&phone))
        .await;
    let bind_sudo = server.sudo(&account).await;
    server
        .bind_contact(&account, &bind_sudo, "phone_number", &phone, &phone_token)
        .await
        .assert_ok();
    let other_session = sign_in(&server, &account.username, &account.password).await;
    other_session.assert_ok();
    let sudo = server.sudo(&account).await;

    let deleted = delete(
        &server,
        &account.access_token,
        &format!("?sudo_token={sudo}"),
    )
    .await;
    assert_eq!(deleted.assert_ok(), &json!({}));

    // Every session ends with the account, the caller's and the other one.
    for access in [&account.access_token, &other_session.text("access_token")] {
        server.me(access).await.assert_error(401, "unauthenticated");
    }
    for refresh in [&account.refresh_token, &other_session.text("refresh_token")] {
        server
            .refresh(refresh)
            .await
            .assert_error(400, "invalid_grant");
    }
    for name in [&account.username, &email, &phone] {
        sign_in(&server, name, &account.password)
            .await
            .assert_error(400, "invalid_username_or_password");
    }
    // Deleting again: the session ended with the account.
    delete(
        &server,
        &account.access_token,
        &format!("?sudo_token={sudo}"),
    )
    .await
    .assert_error(401, "unauthenticated");
    // The email and the phone heard of it (the logs name neither), and every identifier is
    // free at once.
    for to in [email.clone(), e164(&phone)] {
        let notices = server.messages_to(&to).await;
        assert!(
            notices.last().is_some_and(|body| body.contains("deleted")),
            "no notice of the deletion to {to}: {notices:?}"
        );
    }
    // The logs (stderr; the local outbox prints messages to stdout by design).
    let logs = server.logs().join("\n");
    assert!(logs.contains("account deleted"), "{logs}");
    for address in [email.as_str(), &e164(&phone)] {
        assert!(!logs.contains(address), "the logs name {address}");
    }
    let newcomer = server.new_account().await;
    server.bind_email(&newcomer, &email).await.assert_ok();
    server
        .post(
            "/auth/v1/signup",
            json!({"username": account.username, "password": account.password}),
        )
        .await
        .assert_ok();
    let signed_in = sign_in(&server, &email, &newcomer.password).await;
    assert_eq!(signed_in.assert_ok()["sub"], newcomer.sub.as_str());
}

async fn deletion_without_a_live_sudo_token_of_this_session_is_permission_denied(backend: Backend) {
    let server = start(backend).await;
    let account = server.new_account().await;
    let other_session = sign_in(&server, &account.username, &account.password).await;
    let other_sessions_sudo = server
        .call(
            "POST",
            "/auth/v1/user/sudo",
            Some(&other_session.text("access_token")),
            Some(json!({"password": account.password})),
        )
        .await
        .text("sudo_token");
    let stranger = server.new_account().await;
    let strangers_sudo = server.sudo(&stranger).await;
    let own_sudo = server.sudo(&account).await;
    let refusals = [
        String::new(),
        "?".to_string(),
        "?sudo_token=".to_string(),
        // `deleteMe({sudo_token: await auth.sudo(...)})`: the whole object, lost on the wire.
        "?sudo_token=%5Bobject%20Object%5D".to_string(),
        "?sudo_token=not-a-token".to_string(),
        format!("?sudo_token={other_sessions_sudo}"),
        format!("?sudo_token={strangers_sudo}"),
        // The right token under another name.
        format!("?token={own_sudo}"),
    ];
    for query in &refusals {
        let reply = delete(&server, &account.access_token, query).await;
        reply.assert_error(403, "permission_denied");
        assert!(
            reply.body["error_description"]
                .as_str()
                .is_some_and(|d| d.contains("sudo_token")),
            "{query}: {}",
            reply.body
        );
    }
    // Without a session, whatever the token.
    delete(&server, "not-a-jwt", &format!("?sudo_token={own_sudo}"))
        .await
        .assert_error(401, "unauthenticated");
    // Nothing was deleted, and the right token still works.
    assert_eq!(
        server.me(&account.access_token).await.assert_ok()["sub"],
        account.sub.as_str()
    );
    delete(
        &server,
        &account.access_token,
        &format!("?sudo_token={own_sudo}"),
    )
    .await
    .assert_ok();
    // The stranger's account and its token are untouched.
    server.me(&stranger.access_token).await.assert_ok();
}

async fn profile_edits_show_in_user_me_and_patch_answers_the_user(backend: Backend) {
    let server = start(backend).await;
    let account = server.new_account().await;
    let before = server.me(&account.access_token).await;
    let before = before.assert_ok();
    assert_eq!(before["gender"], "UNKNOWN");
    assert_eq!(before["picture"], "");
    assert_eq!(before["password"], "SET");
    assert_eq!(before["email_verified"], false);
    assert_eq!(before["groups"], json!([]));
    assert!(
        !before.to_string().contains("argon2"),
        "the hash leaked: {before}"
    );

    let picture = "https://cdn.example.com/avatars/a.png?size=64";
    let edited = basic_edit(
        &server,
        &account,
        json!({"nickname": "Ada <b>L</b>", "avatar_url": picture, "gender": "FEMALE", "user_id": account.sub}),
    )
    .await;
    assert_eq!(edited.assert_ok(), &json!({}));
    let after = server.me(&account.access_token).await;
    let after = after.assert_ok();
    // Stored as text, exactly as given: nothing here renders it.
    assert_eq!(after["name"], "Ada <b>L</b>");
    assert_eq!(after["picture"], picture);
    assert_eq!(after["gender"], "FEMALE");
    assert_eq!(after["username"], account.username.as_str());

    // v1 `user.update`: its answer is stored as the user, so it is what /user/me answers.
    let patched = server
        .call(
            "PATCH",
            "/auth/v1/user/profile",
            Some(&account.access_token),
            Some(json!({"name": "Ada", "gender": "UNKNOWN", "picture": ""})),
        )
        .await;
    let patched = patched.assert_ok().clone();
    assert_eq!(patched["name"], "Ada");
    assert_eq!(patched["gender"], "UNKNOWN");
    assert_eq!(patched["picture"], "");
    assert_eq!(server.me(&account.access_token).await.assert_ok(), &patched);
}

async fn a_new_username_signs_in_and_the_old_one_stays_reserved_for_its_last_owner(
    backend: Backend,
) {
    let server = start_with(backend, &[("AUTH_USERNAME_HOLD_SECS", "4")]).await;
    let account = server.new_account().await;
    let taken = server.new_account().await;
    basic_edit(&server, &account, json!({ "username": taken.username }))
        .await
        .assert_error(409, "already_exists");
    let renamed = unique("renamed");
    basic_edit(&server, &account, json!({ "username": renamed }))
        .await
        .assert_ok();
    assert_eq!(
        sign_in(&server, &renamed, &account.password)
            .await
            .assert_ok()["sub"],
        account.sub.as_str()
    );
    sign_in(&server, &account.username, &account.password)
        .await
        .assert_error(400, "invalid_username_or_password");
    // Whoever holds a token renamed the victim: the old name is no one else's to take, at
    // sign-up or by a rename (in any case).
    server
        .post(
            "/auth/v1/signup",
            json!({"username": account.username, "password": "another good password"}),
        )
        .await
        .assert_error(409, "already_exists");
    let other = server.new_account().await;
    for spelling in [account.username.clone(), account.username.to_uppercase()] {
        server
            .call(
                "PATCH",
                "/auth/v1/user/profile",
                Some(&other.access_token),
                Some(json!({ "username": spelling })),
            )
            .await
            .assert_error(409, "already_exists");
    }
    // Its last owner takes it back; the name given up on the way is held for them in turn,
    // and free once the hold ends.
    basic_edit(&server, &account, json!({ "username": account.username }))
        .await
        .assert_ok();
    sign_in(&server, &account.username, &account.password)
        .await
        .assert_ok();
    let newcomer = json!({"username": renamed, "password": "another good password"});
    server
        .post("/auth/v1/signup", newcomer.clone())
        .await
        .assert_error(409, "already_exists");
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    server.post("/auth/v1/signup", newcomer).await.assert_ok();
}

/// How many notices of a rename reached `to`.
async fn renames(server: &Server, to: &str) -> usize {
    let notices = server.messages_to(to).await;
    notices.iter().filter(|b| b.contains("username")).count()
}

async fn a_rename_needs_a_recent_sign_in_and_tells_the_bound_addresses(backend: Backend) {
    let server = start_with(backend, &[("AUTH_RECENT_AUTH_SECS", "2")]).await;
    let account = server.new_account().await;
    let email = unique_email();
    server.bind_email(&account, &email).await.assert_ok();
    assert_eq!(renames(&server, &email).await, 0);
    // 3 s after the sign-in (and the sudo of the bind), the access token alone renames no one.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let stale = basic_edit(&server, &account, json!({ "username": unique("thief") })).await;
    stale.assert_error(403, "permission_denied");
    assert!(
        stale.body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("sudo")),
        "the refusal says to call sudo first: {}",
        stale.body
    );
    server
        .call(
            "PATCH",
            "/auth/v1/user/profile",
            Some(&account.access_token),
            Some(json!({ "username": unique("thief") })),
        )
        .await
        .assert_error(403, "permission_denied");
    // Other profile fields need no recent sign-in; the username stayed.
    basic_edit(&server, &account, json!({ "nickname": "Ada" }))
        .await
        .assert_ok();
    assert_eq!(
        server.me(&account.access_token).await.body["username"],
        account.username.as_str()
    );
    assert_eq!(renames(&server, &email).await, 0);
    // Right after a sign-in (what `updateUser({username})` follows), it works, and the
    // bound email hears of it.
    let signed_in = sign_in(&server, &account.username, &account.password).await;
    let fresh = Account {
        access_token: signed_in.text("access_token"),
        ..account.clone()
    };
    let renamed = unique("renamed");
    basic_edit(&server, &fresh, json!({ "username": renamed }))
        .await
        .assert_ok();
    assert_eq!(
        server.me(&fresh.access_token).await.body["username"],
        renamed.as_str()
    );
    assert_eq!(renames(&server, &email).await, 1);
    let notice = server.messages_to(&email).await.pop().unwrap_or_default();
    assert!(notice.contains(&renamed), "{notice}");
}

async fn bad_profile_values_are_refused_in_the_error_shape_and_change_nothing(backend: Backend) {
    let server = start(backend).await;
    let account = server.new_account().await;
    let stranger = server.new_account().await;
    let before = server.me(&account.access_token).await.body;
    let invalid = [
        json!({"avatar_url": "http://example.com/a.png"}),
        json!({"avatar_url": "javascript:alert(1)"}),
        json!({"avatar_url": "https://example.com/\"onerror=\"x"}),
        json!({"avatar_url": format!("https://example.com/{}", "a".repeat(1100))}),
        json!({"nickname": "x".repeat(65)}),
        json!({"nickname": "tab\there"}),
        json!({"nickname": 42}),
        json!({"gender": "male"}),
        json!({"username": "13800000000"}),
        json!({"description": "about me"}),
        json!({"nickname": "fine", "is_admin": true}),
        json!({"phone_number": "+86 13800000000"}),
        json!(["nickname"]),
    ];
    for body in invalid {
        let reply = basic_edit(&server, &account, body.clone()).await;
        reply.assert_error(400, "invalid_argument");
        assert!(
            !reply.body.to_string().contains("is_admin"),
            "{body}: the unknown key is echoed: {}",
            reply.body
        );
    }
    let denied = [
        json!({"user_id": stranger.sub, "nickname": "hijack"}),
        // `updateUser({email})` / `({phone})` send the address with no proof of a code.
        json!({"email": unique_email()}),
        json!({"phone": "+86 13800000000"}),
        json!({"nickname": "both", "email": unique_email()}),
    ];
    for body in denied {
        basic_edit(&server, &account, body)
            .await
            .assert_error(403, "permission_denied");
    }
    for body in [
        json!({"avatar_url": "https://example.com/a.png"}),
        json!({"name": "x".repeat(65)}),
        json!({}),
        json!({"name": null}),
    ] {
        server
            .call(
                "PATCH",
                "/auth/v1/user/profile",
                Some(&account.access_token),
                Some(body),
            )
            .await
            .assert_error(400, "invalid_argument");
    }
    server
        .call(
            "POST",
            "/auth/v1/user/basic/edit",
            None,
            Some(json!({"nickname": "x"})),
        )
        .await
        .assert_error(401, "unauthenticated");
    assert_eq!(server.me(&account.access_token).await.body, before);
    assert_eq!(server.me(&stranger.access_token).await.body["name"], "");
}

/// A deletion raced against a bind of an email to the same account: the deletion reads the
/// account, so a bind landing first makes it stale, and it deletes the account as it now is.
/// Whichever lands first, the email ends up free (never a login key naming a deleted account).
async fn deleting_an_account_while_its_email_is_bound_leaves_no_key_of_a_deleted_account(
    backend: Backend,
) {
    let server = start(backend).await;
    let rounds = 10;
    // Rounds in which the bind landed before the deletion (both succeed), and after it (the
    // bind finds no account).
    let mut binds = [0usize; 2];
    for round in 0..rounds {
        let account = server.new_account().await;
        let email = unique_email();
        let (bind_sudo, delete_sudo) = (server.sudo(&account).await, server.sudo(&account).await);
        let token = server.verification_token("email", &email, &email).await;
        let query = format!("?sudo_token={delete_sudo}");
        let (bound, deleted) = tokio::join!(
            server.bind_contact(&account, &bind_sudo, "email", &email, &token),
            delete(&server, &account.access_token, &query),
        );
        deleted.assert_ok();
        match bound.status {
            200 => binds[0] += 1,
            _ => {
                bound.assert_error(401, "unauthenticated");
                binds[1] += 1;
            }
        }
        server
            .me(&account.access_token)
            .await
            .assert_error(401, "unauthenticated");
        sign_in(&server, &email, &account.password)
            .await
            .assert_error(400, "invalid_username_or_password");
        // The address is free for another account.
        let newcomer = server.new_account().await;
        let reply = server.bind_email(&newcomer, &email).await;
        assert_eq!(reply.status, 200, "round {round}: {}", reply.body);
        if backend == Backend::Aws {
            let items = test_support::fault_proxy::table_items(&server.table).await;
            for (pk, item) in items.iter().filter(|(pk, _)| pk.starts_with("LOGIN#")) {
                let owner = format!("USER#{}", item["user_id"].as_str().unwrap_or_default());
                assert!(
                    items.contains_key(&owner),
                    "round {round}: {pk} names a deleted account"
                );
            }
        }
    }
    // Both orders happened: the two requests were in flight together (a side that landed
    // first every round would mean they never overlapped, and nothing was raced).
    eprintln!("{backend:?}: binds before / after the deletion: {binds:?}");
    assert!(
        binds[0] > 0 && binds[1] > 0,
        "{backend:?}: the bind and the deletion never overlapped: {binds:?}"
    );
}
