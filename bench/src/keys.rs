//! Signing keys made up for the run, and what signing and verifying access tokens costs.

use std::time::{Duration, Instant};

use shared::domain::{SessionId, UserId};

use crate::{unix_now, AUDIENCE, ISSUER};

pub(crate) fn pem(document: &[u8]) -> String {
    use base64::Engine;
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(document)
    )
}

pub(crate) fn ed25519_pem() -> String {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    pem(aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&rng)
        .expect("Ed25519 key generation")
        .as_ref())
}

/// A P-256 key: what deployments sign with (ES256).
pub(crate) fn p256_pem() -> String {
    use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let rng = aws_lc_rs::rand::SystemRandom::new();
    pem(
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("P-256 key generation")
            .as_ref(),
    )
}

/// Signing and verifying access tokens in process, per key kind: (kind, sign, verify).
pub(crate) type TokenCosts = Vec<(&'static str, Vec<Duration>, Vec<Duration>)>;

pub(crate) fn token_costs(samples: usize) -> Result<TokenCosts, String> {
    let mut costs = Vec::new();
    for (kind, pem) in [
        ("ES256 (P-256)", p256_pem()),
        ("EdDSA (Ed25519)", ed25519_pem()),
    ] {
        let tokens = shared::crypto::AccessTokens::from_pems(&pem, "", AUDIENCE)
            .map_err(|e| e.to_string())?;
        let (user, session) = (UserId::generate(), SessionId::generate());
        let (mut sign, mut verify) = (Vec::new(), Vec::new());
        for _ in 0..samples {
            let started = Instant::now();
            let token = tokens
                .issue(
                    ISSUER,
                    &user,
                    &session,
                    shared::crypto::Scope::User,
                    unix_now(),
                    7200,
                )
                .map_err(|e| e.to_string())?;
            sign.push(started.elapsed());
            let started = Instant::now();
            tokens
                .verify(&token, ISSUER, unix_now())
                .map_err(|e| e.to_string())?;
            verify.push(started.elapsed());
        }
        costs.push((kind, sign, verify));
    }
    Ok(costs)
}
