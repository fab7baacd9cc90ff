//! Custom-login tickets (`@cloudbase/node-sdk`'s `createTicket`): RS256 JWTs signed by the
//! app's backend with the private half of a key pair whose public half this deployment holds
//! (`AUTH_CUSTOM_LOGIN_KEYS`, by `private_key_id`). Every time in them is in milliseconds.

use std::collections::{HashMap, HashSet};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::config::ConfigError;
use crate::domain::{CustomTicket, CustomUid, SessionLimits, UnixTime};
use crate::error::{AuthError, AuthResult};

/// How far in the future a ticket's `iat` may be: the backend's clock may run a little ahead.
pub const IAT_SKEW_MS: i64 = 60_000;
/// The longest a ticket may still be valid for: `createTicket` mints ten minutes, and a
/// presented ticket is remembered until its `exp`.
pub const MAX_TICKET_LIFE_MS: i64 = 3_600_000;
/// The shortest access-token life a ticket's `refresh` can ask for: the SDK refreshes 30 s
/// before expiry, so anything shorter would refresh without pause.
pub const MIN_REFRESH_SECS: i64 = 60;

/// Shorter RSA keys are refused at start: aws-lc would refuse every ticket they sign.
pub const MIN_RSA_BITS: usize = 2048;

/// The size of the RSA key of a SubjectPublicKeyInfo PEM; `None` when it is not one.
fn rsa_bits(pem: &str) -> Option<usize> {
    use base64::engine::general_purpose::STANDARD;
    let body = pem
        .trim()
        .strip_prefix("-----BEGIN PUBLIC KEY-----")?
        .strip_suffix("-----END PUBLIC KEY-----")?;
    let der = STANDARD
        .decode(body.split_whitespace().collect::<String>())
        .ok()?;
    aws_lc_rs::rsa::PublicEncryptingKey::from_der(&der)
        .ok()
        .map(|key| key.key_size_bits())
}

/// The public keys custom-login tickets are checked with, and the environment they must name.
pub struct CustomLoginKeys {
    keys: HashMap<String, DecodingKey>,
    env_id: String,
}

/// A genuine, unexpired ticket of this environment, before it is spent.
#[derive(Debug)]
pub struct VerifiedTicket {
    pub uid: CustomUid,
    /// The ticket's `exp`, in seconds, rounded up: it must be remembered as spent until then.
    pub expires_at: UnixTime,
    /// What the ticket's `expire` and `refresh` ask of the session it starts.
    pub limits: SessionLimits,
    /// Names this ticket and no other (a digest of its key id and signature), for the memory
    /// that it was spent.
    pub fingerprint: String,
}

#[derive(Deserialize)]
struct TicketClaims {
    env: String,
    iat: i64,
    exp: i64,
    uid: String,
    /// The life of the access tokens, in milliseconds (`createTicket` default: one hour).
    refresh: Option<i64>,
    /// When the login ends, in milliseconds since the epoch (default: seven days on).
    expire: Option<i64>,
}

impl CustomLoginKeys {
    /// `json`: `{"<private_key_id>": "<PEM public key>", ...}` (SPKI or PKCS#1 RSA PEM).
    pub fn from_json(json: &str, env_id: &str) -> Result<Self, ConfigError> {
        let bad = |why: String| ConfigError(format!("AUTH_CUSTOM_LOGIN_KEYS {why}"));
        let entries: HashMap<String, String> = serde_json::from_str(json).map_err(|_| {
            bad(r#"must be a JSON object {"<private_key_id>": "<PEM public key>", ...}"#.into())
        })?;
        if entries.is_empty() {
            return Err(bad("names no key".into()));
        }
        let keys = entries
            .into_iter()
            .map(|(id, pem)| {
                let usable = CustomTicket::parse(&format!("{id}/@@/a.b.c")).is_ok_and(|t| t.key_id() == id);
                if !usable {
                    return Err(bad(format!(
                        "key id `{id}` is not a private_key_id (1 to 128 printable characters, no `/`)"
                    )));
                }
                let unusable = || {
                    bad(format!(
                        "key `{id}` is not an RSA public key of 2048 bits or more in PEM form (BEGIN PUBLIC KEY, as `openssl pkey -pubout` writes it)"
                    ))
                };
                if rsa_bits(&pem).is_none_or(|bits| bits < MIN_RSA_BITS) {
                    return Err(unusable());
                }
                let key = DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| unusable())?;
                Ok((id, key))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            keys,
            env_id: env_id.to_string(),
        })
    }

    /// Checks the signature with the key the ticket names, in RS256 only, then that it is of
    /// this environment, unexpired, not issued in the future and names a valid uid.
    pub fn verify(&self, ticket: &CustomTicket, now: UnixTime) -> AuthResult<VerifiedTicket> {
        let key = self
            .keys
            .get(ticket.key_id())
            .ok_or(AuthError::InvalidGrant)?;
        let mut validation = Validation::new(Algorithm::RS256);
        // The library reads `exp` and `nbf` as seconds; these are milliseconds, checked below.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims = HashSet::new();
        let claims = jsonwebtoken::decode::<TicketClaims>(ticket.jwt(), key, &validation)
            .map_err(|_| AuthError::InvalidGrant)?
            .claims;
        let now_ms = now.saturating_mul(1000);
        let fresh = claims.exp > now_ms
            && claims.exp <= now_ms.saturating_add(MAX_TICKET_LIFE_MS)
            && claims.iat <= now_ms.saturating_add(IAT_SKEW_MS)
            && claims.expire.is_none_or(|end| end > now_ms);
        if claims.env != self.env_id || !fresh {
            return Err(AuthError::InvalidGrant);
        }
        let uid = CustomUid::parse(&claims.uid)?;
        let signature = ticket
            .jwt()
            .rsplit('.')
            .next()
            .and_then(|part| URL_SAFE_NO_PAD.decode(part).ok())
            .ok_or(AuthError::InvalidGrant)?;
        let fingerprint = hex::encode(
            Sha256::new()
                .chain_update(ticket.key_id().as_bytes())
                .chain_update([0])
                .chain_update(&signature)
                .finalize(),
        );
        Ok(VerifiedTicket {
            uid,
            expires_at: claims.exp.div_euclid(1000) + 1,
            limits: SessionLimits {
                ends_at: claims.expire.map(|end| end.div_euclid(1000)),
                access_token_ttl_secs: claims
                    .refresh
                    .map(|ms| ms.div_euclid(1000).max(MIN_REFRESH_SECS)),
            },
            fingerprint,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spki_pem(der: &[u8]) -> String {
        use base64::engine::general_purpose::STANDARD;
        let body = STANDARD.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }

    fn public_pem(size: aws_lc_rs::rsa::KeySize) -> String {
        use aws_lc_rs::encoding::AsDer;
        let pair = aws_lc_rs::rsa::PrivateDecryptingKey::generate(size).unwrap();
        spki_pem(pair.public_key().as_der().unwrap().as_ref())
    }

    #[test]
    fn the_keys_setting_is_a_json_object_of_rsa_public_keys_of_2048_bits_or_more() {
        let good = public_pem(aws_lc_rs::rsa::KeySize::Rsa2048);
        let json = serde_json::json!({ "key-1": good, "key-2": good }).to_string();
        let keys = CustomLoginKeys::from_json(&json, "env").unwrap();
        assert_eq!(keys.keys.len(), 2);
        for bad in [
            "not json".to_string(),
            "{}".to_string(),
            "[]".to_string(),
            serde_json::json!({ "key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----" }).to_string(),
            serde_json::json!({ "a/b": good }).to_string(),
            serde_json::json!({ "": good }).to_string(),
        ] {
            let err = CustomLoginKeys::from_json(&bad, "env").err().expect(&bad);
            assert!(err.0.contains("AUTH_CUSTOM_LOGIN_KEYS"), "{err}");
        }
    }
}
