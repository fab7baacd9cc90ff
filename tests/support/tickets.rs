//! Custom-login key pairs and tickets, made as an app's backend makes them: the key pair with
//! the openssl commands the README gives, tickets in `@cloudbase/node-sdk`'s format (its
//! `createTicket`: `<private_key_id>/@@/<RS256 JWT>`, times in milliseconds), signed here with
//! aws-lc so that the tests can also make every kind of bad ticket.

use std::path::PathBuf;
use std::process::Command;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};

/// The environment id the test servers are given as `AUTH_ENV_ID`.
pub const ENV_ID: &str = "e2e-env";

/// One custom-login key pair of an app's backend.
pub struct TicketKey {
    pub key_id: String,
    pub private_pem: String,
    pub public_pem: String,
    pair: RsaKeyPair,
}

impl TicketKey {
    /// A fresh 2048-bit key pair, made by the README's commands in a folder of its own.
    pub fn generate(key_id: &str) -> Self {
        let dir = scratch_dir(key_id);
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .unwrap_or_else(|e| panic!("the custom-login tests need openssl on PATH: {e}"));
            assert!(
                out.status.success(),
                "openssl {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "custom-login-private.pem",
        ]);
        run(&[
            "pkey",
            "-in",
            "custom-login-private.pem",
            "-pubout",
            "-out",
            "custom-login-public.pem",
        ]);
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("an openssl output");
        let private_pem = read("custom-login-private.pem");
        let public_pem = read("custom-login-public.pem");
        let _ = std::fs::remove_dir_all(&dir);
        let pair = RsaKeyPair::from_pkcs8(&pem_body(&private_pem)).expect("a PKCS#8 RSA key");
        Self {
            key_id: key_id.to_string(),
            private_pem,
            public_pem,
            pair,
        }
    }

    /// The credentials file `@cloudbase/node-sdk` reads (`credentials` of `init`).
    pub fn credentials(&self, env_id: &str) -> Value {
        json!({"private_key_id": self.key_id, "private_key": self.private_pem, "env_id": env_id})
    }

    /// A ticket as `createTicket` mints it, with these claims.
    pub fn mint(&self, claims: &Value) -> String {
        self.mint_with_header(&json!({"alg": "RS256", "typ": "JWT"}), claims)
    }

    /// A ticket with any header, signed RS256 all the same.
    pub fn mint_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", part(header), part(claims));
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut signature,
            )
            .expect("an RSA signature");
        format!(
            "{}/@@/{input}.{}",
            self.key_id,
            URL_SAFE_NO_PAD.encode(signature)
        )
    }
}

impl TicketKey {
    /// The classic algorithm confusion: these claims under `alg: HS256`, keyed with this key's
    /// public PEM (which a verifier that trusted the header would take for the HMAC secret).
    pub fn mint_hs256_with_public_key(&self, claims: &Value) -> String {
        use aws_lc_rs::hmac;
        let input = format!(
            "{}.{}",
            part(&json!({"alg": "HS256", "typ": "JWT"})),
            part(claims)
        );
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.public_pem.as_bytes());
        let tag = hmac::sign(&key, input.as_bytes());
        format!(
            "{}/@@/{input}.{}",
            self.key_id,
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        )
    }
}

/// `AUTH_CUSTOM_LOGIN_KEYS` naming these keys' public halves.
pub fn keys_setting(keys: &[&TicketKey]) -> String {
    let object: serde_json::Map<String, Value> = keys
        .iter()
        .map(|key| (key.key_id.clone(), Value::String(key.public_pem.clone())))
        .collect();
    Value::Object(object).to_string()
}

/// Now, in milliseconds, as tickets count time.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// The claims `createTicket(uid)` signs, with its defaults.
pub fn claims(uid: &str) -> Value {
    let now = now_ms();
    json!({
        "alg": "RS256",
        "env": ENV_ID,
        "iat": now,
        "exp": now + 10 * 60 * 1000,
        "uid": uid,
        "refresh": 3600 * 1000,
        "expire": now + 7 * 24 * 3600 * 1000,
    })
}

/// `claims`, with some replaced.
pub fn claims_with(uid: &str, changes: Value) -> Value {
    let mut claims = claims(uid);
    if let (Some(claims), Some(changes)) = (claims.as_object_mut(), changes.as_object()) {
        for (name, value) in changes {
            claims.insert(name.clone(), value.clone());
        }
    }
    claims
}

fn part(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn pem_body(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    STANDARD.decode(body).expect("a PEM body is base64")
}

fn scratch_dir(key_id: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "custom-login-{}-{key_id}-{}",
        std::process::id(),
        hex_suffix()
    ));
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}

fn hex_suffix() -> String {
    let mut bytes = [0u8; 6];
    aws_lc_rs::rand::fill(&mut bytes).expect("random bytes");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
