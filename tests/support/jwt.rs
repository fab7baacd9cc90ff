//! Access tokens taken apart: their parts decoded and re-encoded, and their signature checked
//! against a known Ed25519 key, independently of the server's own code.

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::Value;

/// The JSON of one part (header or payload) of a JWT.
pub fn decode_part(part: &str) -> Value {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .unwrap_or_else(|e| panic!("a JWT part is base64url: {e}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("a JWT part is JSON: {e}"))
}

/// A JWT part as the JSON `value`, encoded as JWTs encode them.
pub fn encode_part(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// The token's header, payload and signature, split.
pub fn parts(token: &str) -> (&str, &str, &str) {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(header), Some(payload), Some(signature), None) => (header, payload, signature),
        _ => panic!("not a JWT of three parts: {token:?}"),
    }
}

/// The token with its payload replaced by `payload` (re-encoded), keeping its header and its
/// original signature: well formed, and signed, but not over these claims.
pub fn with_payload(token: &str, payload: &Value) -> String {
    let (header, _, signature) = parts(token);
    format!("{header}.{}.{signature}", encode_part(payload))
}

/// The raw Ed25519 public key of a PKCS#8 PEM private key.
pub fn ed25519_public_key(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let der = STANDARD.decode(body).expect("the PEM is base64");
    let pair = Ed25519KeyPair::from_pkcs8(&der).expect("an Ed25519 PKCS#8 key");
    pair.public_key().as_ref().to_vec()
}

/// The `kid` of an Ed25519 key: its RFC 7638 JWK thumbprint, the base64url SHA-256 of the
/// required members in lexicographic order.
pub fn kid_of(public_key: &[u8]) -> String {
    let jwk = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(public_key)
    );
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        jwk.as_bytes(),
    ))
}

/// Whether the token's Ed25519 signature over `header.payload` verifies with `public_key`.
pub fn signed_by(token: &str, public_key: &[u8]) -> bool {
    let (header, payload, signature) = parts(token);
    let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else {
        return false;
    };
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(format!("{header}.{payload}").as_bytes(), &signature)
        .is_ok()
}
