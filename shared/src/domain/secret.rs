//! Secrets: drawn from the OS CSPRNG, stored only as keyed hashes, compared in constant time,
//! and never printable by accident (no `Display`, a redacting `Debug`).

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::InvalidInput;

/// Fills a buffer from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The OS CSPRNG failing is unrecoverable for an identity service: never fall back.
    getrandom::fill(&mut bytes).expect("the OS random number generator is unavailable");
    bytes
}

/// A bearer secret handed to a client once: sudo, verification, provider and refresh tokens.
#[derive(Clone)]
pub struct SecretToken(String);

impl SecretToken {
    pub fn generate() -> Self {
        Self(URL_SAFE_NO_PAD.encode(random_bytes::<32>()))
    }

    /// A fresh token followed by `.` and `suffix`, which says nothing secret: the whole
    /// string is what gets hashed, so the suffix cannot be altered without voiding the token.
    pub fn generate_with_suffix(suffix: &str) -> Self {
        Self(format!("{}.{suffix}", Self::generate().0))
    }

    /// Accepts what a client sent back; only the shape is checked here.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, InvalidInput> {
        let raw = raw.trim();
        if raw.is_empty() || raw.len() > 512 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidInput::new(field, "is not a valid token"));
        }
        Ok(Self(raw.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretToken(<redacted>)")
    }
}

/// A six-digit one-time code.
#[derive(Clone)]
pub struct VerificationCode(String);

impl VerificationCode {
    pub fn generate() -> Self {
        // Rejection sampling keeps every code equally likely.
        loop {
            let value = u32::from_le_bytes(random_bytes::<4>());
            if value < u32::MAX - (u32::MAX % 1_000_000) {
                return Self(format!("{:06}", value % 1_000_000));
            }
        }
    }

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let raw = raw.trim();
        if raw.len() == 6 && raw.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(raw.to_string()))
        } else {
            Err(InvalidInput::new("verification_code", "must be six digits"))
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for VerificationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VerificationCode(<redacted>)")
    }
}

/// A plaintext password as typed by the user; it only ever goes to the password hasher.
pub struct Password(String);

impl Password {
    pub const MAX_LEN: usize = 256;

    /// Shape only; the length policy applies to new passwords (see `new_password`).
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        if raw.is_empty() || raw.len() > Self::MAX_LEN {
            return Err(InvalidInput::new("password", "must be 1 to 256 bytes"));
        }
        Ok(Self(raw.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn char_count(&self) -> usize {
        self.0.chars().count()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A keyed hash of a secret: what the store keeps and looks secrets up by.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(stored: &str) -> Option<Self> {
        let bytes = hex::decode(stored).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    pub fn matches(&self, other: &SecretHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretHash({}…)", &self.to_hex()[..8])
    }
}

/// Hashes secrets with HMAC-SHA-256 under a server-side key, so that a copy of the table
/// alone does not allow guessing short secrets such as six-digit codes offline.
#[derive(Clone)]
pub struct SecretHasher {
    key: [u8; 32],
}

impl SecretHasher {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// `purpose` separates the hash spaces of different kinds of secret.
    pub fn hash(&self, purpose: &str, secret: &str) -> SecretHash {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .expect("HMAC accepts keys of any length");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(secret.as_bytes());
        SecretHash(mac.finalize().into_bytes().into())
    }

    pub fn token(&self, purpose: &str, token: &SecretToken) -> SecretHash {
        self.hash(purpose, token.expose())
    }

    /// A new token that only the holder of this key can compute from `token`: the same
    /// `token` always derives the same one.
    pub fn derive(&self, purpose: &str, token: &SecretToken) -> SecretToken {
        SecretToken(URL_SAFE_NO_PAD.encode(self.token(purpose, token).0))
    }
}

impl fmt::Debug for SecretHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHasher(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_are_six_digits() {
        for _ in 0..100 {
            let code = VerificationCode::generate();
            assert!(VerificationCode::parse(code.expose()).is_ok());
        }
    }

    #[test]
    fn secrets_do_not_print() {
        let token = SecretToken::generate();
        assert!(!format!("{token:?}").contains(token.expose()));
        let password = Password::parse("hunter22").unwrap();
        assert!(!format!("{password:?}").contains("hunter22"));
    }

    #[test]
    fn hashes_depend_on_key_and_purpose() {
        let a = SecretHasher::new([1; 32]);
        let b = SecretHasher::new([2; 32]);
        assert!(a.hash("x", "s").matches(&a.hash("x", "s")));
        assert!(!a.hash("x", "s").matches(&b.hash("x", "s")));
        assert!(!a.hash("x", "s").matches(&a.hash("y", "s")));
        let stored = a.hash("x", "s");
        assert_eq!(SecretHash::from_hex(&stored.to_hex()), Some(stored));
    }
}
