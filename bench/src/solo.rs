//! Warm latency of each function binary on the embedded store, through its emulator.
//!
//! With `AUTH_STORE=memory` every function process has its own store, so a flow across
//! functions cannot work. Each function instead answers a request that it can answer from
//! its own process: the whole path (event → routing → parsing → token checks → store →
//! answer) runs, and the answer is either a success made in the same process or the refusal
//! the store decides. `SOLO` says exactly which request each function gets.

use serde_json::{json, Value};

use crate::flow::{source_ip, PASSWORD};
use crate::process::event;

/// What the requests need: an access token signed with the functions' key for a session
/// that no function process has (so the session lookup runs and finds nothing).
pub struct SoloContext {
    pub minted_access_token: String,
    pub tag: String,
}

pub struct Solo {
    pub function: &'static str,
    /// What the request is and what it exercises, for the report.
    pub request: &'static str,
    pub hashing: bool,
    pub make: fn(&SoloContext, usize) -> Value,
}

fn random_hex32() -> String {
    hex::encode(shared::domain::random_bytes::<16>())
}

fn random_secret() -> String {
    shared::domain::SecretToken::generate().expose().to_string()
}

fn post(path: &str, body: Value, i: usize) -> Value {
    event("POST", path, None, Some(&body), &source_ip(i))
}

/// A request with the minted access token: signed with the functions' key, for a session no
/// process has.
fn signed_in(c: &SoloContext, method: &str, path: &str, body: Option<Value>, i: usize) -> Value {
    event(
        method,
        path,
        Some(&c.minted_access_token),
        body.as_ref(),
        &source_ip(i),
    )
}

pub const SOLO: &[Solo] = &[
    Solo {
        function: "signup",
        request: "POST /signup {email, verification_token: unknown}: parses, hashes the token, store transaction rejected",
        hashing: false,
        make: |c, i| {
            post(
                "/auth/v1/signup",
                json!({"email": format!("solo{}x{i}@example.com", c.tag), "verification_token": random_secret()}),
                i,
            )
        },
    },
    Solo {
        function: "signin",
        request: "POST /signin {unknown username, password}: password throttle, account lookup, one Argon2id run as for a known account (hashes by design)",
        hashing: true,
        make: |c, i| {
            post(
                "/auth/v1/signin",
                json!({"username": format!("solo{}x{i}", c.tag), "password": PASSWORD}),
                i,
            )
        },
    },
    Solo {
        function: "token",
        request: "POST /token {refresh_token: well-formed, unknown session}: session lookup",
        hashing: false,
        make: |_, i| {
            post(
                "/auth/v1/token",
                json!({"grant_type": "refresh_token", "refresh_token": format!("{}.{}", random_hex32(), random_secret())}),
                i,
            )
        },
    },
    Solo {
        function: "revoke",
        request: "POST /revoke {token: well-formed refresh token, unknown session}: session lookup",
        hashing: false,
        make: |_, i| {
            post(
                "/auth/v1/revoke",
                json!({"token": format!("{}.{}", random_hex32(), random_secret())}),
                i,
            )
        },
    },
    Solo {
        function: "user-me",
        request: "GET /user/me, valid ES256 token of an unknown session: signature check, session+account lookup",
        hashing: false,
        make: |c, i| {
            signed_in(c, "GET", "/auth/v1/user/me", None, i)
        },
    },
    Solo {
        function: "sudo",
        request: "POST /user/sudo {password}, valid token of an unknown session: signature check, lookup",
        hashing: false,
        make: |c, i| {
            signed_in(c, "POST", "/auth/v1/user/sudo", Some(json!({"password": PASSWORD})), i)
        },
    },
    Solo {
        function: "verification",
        request: "POST /verification {email: new each time}: limit counters + owner lookup, new code, SES SendEmail to a loopback fake, stored",
        hashing: false,
        make: |c, i| {
            post(
                "/auth/v1/verification",
                json!({"email": format!("code{}x{i}@example.com", c.tag)}),
                i,
            )
        },
    },
    Solo {
        function: "verify",
        request: "POST /verification/verify {well-formed unknown id, code}: per-IP counter, verification lookup",
        hashing: false,
        make: |_, i| {
            post(
                "/auth/v1/verification/verify",
                json!({"verification_id": random_hex32(), "verification_code": "000000"}),
                i,
            )
        },
    },
    Solo {
        function: "bind-contact",
        request: "PATCH /user/contact {sudo_token, email, verification_token}, valid token of an unknown session",
        hashing: false,
        make: |c, i| {
            signed_in(c, "PATCH", "/auth/v1/user/contact", Some(json!({"sudo_token": random_secret(), "email": "bind@example.com", "verification_token": random_secret()})), i)
        },
    },
    Solo {
        function: "provider-token",
        request: "POST /provider/token {wx_open, code}: per-IP counter, 2 GETs to a loopback WeChat fake, token stored",
        hashing: false,
        make: |c, i| {
            post(
                "/auth/v1/provider/token",
                json!({"provider_id": "wx_open", "provider_code": format!("ok:solo{}x{i}", c.tag)}),
                i,
            )
        },
    },
    Solo {
        function: "bind-provider",
        request: "POST /user/provider/bind {provider_token}, valid token of an unknown session",
        hashing: false,
        make: |c, i| {
            signed_in(c, "POST", "/auth/v1/user/provider/bind", Some(json!({"provider_token": random_secret()})), i)
        },
    },
    Solo {
        function: "signin-with-provider",
        request: "POST /signin/with/provider {unknown provider_token ending in a WeChat identity}: token and both login keys read together",
        hashing: false,
        make: |_, i| {
            // `<secret>.wx_open.<base64url of "solo-unknown">` twice (unionid, openid), the
            // shape grants have.
            post(
                "/auth/v1/signin/with/provider",
                json!({"provider_token": format!("{}.wx_open.c29sby11bmtub3du.c29sby11bmtub3du", random_secret())}),
                i,
            )
        },
    },
    Solo {
        function: "list-providers",
        request: "GET /user/provider, valid token of an unknown session",
        hashing: false,
        make: |c, i| {
            signed_in(c, "GET", "/auth/v1/user/provider", None, i)
        },
    },
    Solo {
        function: "unbind-provider",
        request: "DELETE /user/provider/wx_open, valid token of an unknown session",
        hashing: false,
        make: |c, i| {
            signed_in(c, "DELETE", "/auth/v1/user/provider/wx_open", None, i)
        },
    },
    Solo {
        function: "change-password",
        request: "PATCH /user/password {sudo_token, new_password}, valid token of an unknown session",
        hashing: false,
        make: |c, i| {
            signed_in(c, "PATCH", "/auth/v1/user/password", Some(json!({"sudo_token": random_secret(), "new_password": format!("{PASSWORD}-new")})), i)
        },
    },
    Solo {
        function: "reset-password",
        request: "POST /reset {email, new_password, verification_token: unknown}: token and login key read together, refused",
        hashing: false,
        make: |c, i| {
            post(
                "/auth/v1/reset",
                json!({"email": format!("reset{}x{i}@example.com", c.tag), "new_password": PASSWORD, "verification_token": random_secret()}),
                i,
            )
        },
    },
    Solo {
        function: "revoke-all",
        request: "DELETE /user/revoke/all, valid token of an unknown session",
        hashing: false,
        make: |c, i| {
            signed_in(c, "DELETE", "/auth/v1/user/revoke/all", None, i)
        },
    },
    Solo {
        function: "delete-user",
        request: "DELETE /user/me?sudo_token=..., valid token of an unknown session",
        hashing: false,
        make: |c, i| {
            signed_in(c, "DELETE", &format!("/auth/v1/user/me?sudo_token={}", random_secret()), None, i)
        },
    },
    Solo {
        function: "edit-profile",
        request: "POST /user/basic/edit {nickname}, valid token of an unknown session",
        hashing: false,
        make: |c, i| {
            signed_in(c, "POST", "/auth/v1/user/basic/edit", Some(json!({"nickname": "Solo"})), i)
        },
    },
    Solo {
        function: "signin-anonymously",
        request: "POST /signin/anonymously {}: per-client sign-up counter, new anonymous account and its session",
        hashing: false,
        make: |_, i| post("/auth/v1/signin/anonymously", json!({}), i),
    },
];

/// The floor's request: the same event shape, answered `hello` without any work.
pub fn hello_event(i: usize) -> Value {
    event("GET", "/auth/v1/user/me", None, None, &source_ip(i))
}
