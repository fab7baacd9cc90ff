//! Access tokens (Ed25519-signed JWTs) and password hashing (Argon2id).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::ConfigError;
use crate::domain::{random_bytes, Password, SessionId, UnixTime, UserId};
use crate::error::{AuthError, AuthResult};

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    sid: String,
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
    jti: String,
    scope: String,
}

/// Who an access token speaks for.
#[derive(Clone, Debug)]
pub struct AccessClaims {
    pub user_id: UserId,
    pub session_id: SessionId,
}

/// Signs and verifies access tokens with one Ed25519 key, named by `kid` so keys can rotate.
pub struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
    issuer: String,
    audience: String,
    validation: Validation,
    /// Derived from the signing key: the key of `SecretHasher`, so one secret serves both.
    secret_hash_key: [u8; 32],
}

impl AccessTokens {
    pub fn from_pem(pem: &str, issuer: &str, audience: &str) -> Result<Self, ConfigError> {
        let invalid = |why: &str| {
            ConfigError(format!(
                "AUTH_JWT_PRIVATE_KEY is not a PKCS#8 PEM Ed25519 private key ({why})"
            ))
        };
        let body: String = pem
            .lines()
            .map(str::trim)
            .filter(|line| !line.starts_with("-----"))
            .collect();
        let der = STANDARD.decode(body).map_err(|_| invalid("bad base64"))?;
        Self::from_pkcs8(&der, issuer, audience).map_err(|_| invalid("not an Ed25519 key"))
    }

    /// A fresh key for the local server: its access tokens die with the process.
    pub fn ephemeral(issuer: &str, audience: &str) -> Self {
        let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .expect("Ed25519 key generation from the OS RNG");
        Self::from_pkcs8(document.as_ref(), issuer, audience)
            .expect("a freshly generated key parses")
    }

    fn from_pkcs8(der: &[u8], issuer: &str, audience: &str) -> Result<Self, ()> {
        let pair = Ed25519KeyPair::from_pkcs8(der).map_err(|_| ())?;
        let public = pair.public_key().as_ref().to_vec();
        let kid = hex::encode(&Sha256::digest(&public)[..8]);
        let secret_hash_key = Sha256::new()
            .chain_update(b"cloudbase-association secret hashing\0")
            .chain_update(der)
            .finalize()
            .into();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 0;
        Ok(Self {
            encoding: EncodingKey::from_ed_der(der),
            decoding: DecodingKey::from_ed_der(&public),
            kid,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            validation,
            secret_hash_key,
        })
    }

    pub fn secret_hash_key(&self) -> [u8; 32] {
        self.secret_hash_key
    }

    pub fn issue(
        &self,
        user_id: &UserId,
        session_id: &SessionId,
        now: UnixTime,
        ttl_secs: i64,
    ) -> AuthResult<String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        let claims = Claims {
            sub: user_id.as_str().to_string(),
            sid: session_id.as_str().to_string(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + ttl_secs,
            jti: hex::encode(random_bytes::<16>()),
            scope: "user".into(),
        };
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| AuthError::Internal(format!("signing an access token: {e}")))
    }

    /// Checks signature, algorithm, `kid`, issuer, audience and expiry.
    pub fn verify(&self, token: &str, now: UnixTime) -> AuthResult<AccessClaims> {
        let rejected = || AuthError::Unauthenticated("the access token is invalid or expired");
        let header = jsonwebtoken::decode_header(token).map_err(|_| rejected())?;
        if header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err(rejected());
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| rejected())?;
        // The library checks `exp` against the system clock; check it against ours too.
        if data.claims.exp <= now {
            return Err(rejected());
        }
        Ok(AccessClaims {
            user_id: UserId::parse(&data.claims.sub).map_err(|_| rejected())?,
            session_id: SessionId::parse(&data.claims.sid).map_err(|_| rejected())?,
        })
    }
}

/// Argon2id with OWASP's recommended parameters (19 MiB, 2 passes, 1 lane). Hashing runs
/// on the blocking pool so it never stalls the async executor.
#[derive(Clone, Default)]
pub struct PasswordHasher;

/// A hash of a random password, verified when the account is unknown so that the answer
/// takes as long as for a known account. Made on first need, not at cold start.
static DECOY_HASH: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();

impl PasswordHasher {
    pub fn new() -> Self {
        Self
    }

    pub async fn hash(&self, password: Password) -> AuthResult<String> {
        tokio::task::spawn_blocking(move || hash_blocking(password.expose()))
            .await
            .map_err(|e| AuthError::Internal(format!("password hashing task: {e}")))?
    }

    /// True when `password` matches `stored`; with no stored hash, spends the same time and
    /// answers false.
    pub async fn verify(&self, password: Password, stored: Option<&str>) -> AuthResult<bool> {
        let (stored, real) = (stored.map(str::to_string), stored.is_some());
        let matched = tokio::task::spawn_blocking(move || {
            let stored = match stored {
                Some(hash) => hash,
                None => DECOY_HASH
                    .get_or_init(|| {
                        hash_blocking(&hex::encode(random_bytes::<16>())).map_err(|e| e.to_string())
                    })
                    .clone()
                    .map_err(AuthError::Internal)?,
            };
            verify_blocking(password.expose(), &stored)
        })
        .await
        .map_err(|e| AuthError::Internal(format!("password hashing task: {e}")))??;
        Ok(real && matched)
    }
}

fn params() -> argon2::Params {
    argon2::Params::new(19 * 1024, 2, 1, None).expect("OWASP Argon2id parameters")
}

/// Argon2id's working memory (19 MiB per hash), kept for the next hash. Allocated and freed
/// per hash, glibc kept the freed copies in the heap: peak RSS of the sign-in function grew
/// to 200-370 MiB (BENCHMARKS.md). Reused, a process holds one per concurrent hash (a Lambda
/// sandbox: one).
static WORKING_MEMORY: std::sync::Mutex<Vec<Vec<argon2::Block>>> =
    std::sync::Mutex::new(Vec::new());

fn working_memory() -> std::sync::MutexGuard<'static, Vec<Vec<argon2::Block>>> {
    WORKING_MEMORY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn with_working_memory<T>(
    params: &argon2::Params,
    run: impl FnOnce(&mut [argon2::Block]) -> T,
) -> T {
    let mut blocks = working_memory().pop().unwrap_or_default();
    if blocks.len() < params.block_count() {
        blocks.resize(params.block_count(), argon2::Block::new());
    }
    let answer = run(&mut blocks);
    working_memory().push(blocks);
    answer
}

/// The raw Argon2id output of `password` for `salt`, as long as `out`.
fn argon2_into(
    params: argon2::Params,
    version: argon2::Version,
    password: &str,
    salt: &[u8],
    out: &mut [u8],
) -> AuthResult<()> {
    let hasher = argon2::Argon2::new(argon2::Algorithm::Argon2id, version, params.clone());
    with_working_memory(&params, |blocks| {
        hasher.hash_password_into_with_memory(password.as_bytes(), salt, out, blocks)
    })
    .map_err(|e| AuthError::Internal(format!("hashing a password: {e}")))
}

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`), as `argon2` itself writes.
fn hash_blocking(password: &str) -> AuthResult<String> {
    use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
    let internal =
        |what: &str, e: argon2::password_hash::Error| AuthError::Internal(format!("{what}: {e}"));
    let salt = SaltString::encode_b64(&random_bytes::<16>())
        .map_err(|e| internal("encoding a salt", e))?;
    let mut salt_bytes = [0u8; 16];
    let salt_bytes = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| internal("decoding a salt", e))?;
    let params = params();
    let mut out = [0u8; argon2::Params::DEFAULT_OUTPUT_LEN];
    argon2_into(
        params.clone(),
        argon2::Version::V0x13,
        password,
        salt_bytes,
        &mut out,
    )?;
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(argon2::Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| internal("encoding parameters", e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| internal("encoding a hash", e))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` gives `stored` (a PHC string), compared in constant time.
fn verify_blocking(password: &str, stored: &str) -> AuthResult<bool> {
    use argon2::password_hash::{Output, PasswordHash};
    let malformed = |e: argon2::password_hash::Error| {
        AuthError::Internal(format!("a stored password hash does not parse: {e}"))
    };
    let parsed = PasswordHash::new(stored).map_err(malformed)?;
    if parsed.algorithm != argon2::ARGON2ID_IDENT {
        return Err(malformed(argon2::password_hash::Error::Algorithm));
    }
    let version = match parsed.version {
        Some(version) => argon2::Version::try_from(version).map_err(|e| malformed(e.into()))?,
        None => argon2::Version::V0x13,
    };
    let params = argon2::Params::try_from(&parsed).map_err(malformed)?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(malformed(argon2::password_hash::Error::PhcStringField));
    };
    let mut salt_bytes = [0u8; argon2::password_hash::Salt::MAX_LENGTH];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(malformed)?;
    let mut out = vec![0u8; expected.len()];
    argon2_into(params, version, password, salt_bytes, &mut out)?;
    // `Output`'s equality is constant-time.
    Ok(Output::new(&out).map_err(malformed)? == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> AccessTokens {
        AccessTokens::ephemeral("iss", "aud")
    }

    #[test]
    fn issued_tokens_verify_and_carry_the_session() {
        let tokens = tokens();
        let (user, session) = (UserId::generate(), SessionId::generate());
        let jwt = tokens.issue(&user, &session, 1_000, 7200).unwrap();
        // The library also checks exp against the wall clock, so verify at the real time.
        let now = crate::ports::Clock::now(&crate::ports::SystemClock);
        let jwt_now = tokens.issue(&user, &session, now, 7200).unwrap();
        let claims = tokens.verify(&jwt_now, now).unwrap();
        assert_eq!(claims.user_id, user);
        assert_eq!(claims.session_id, session);
        assert!(
            tokens.verify(&jwt, now).is_err(),
            "an expired token verified"
        );
    }

    #[test]
    fn tokens_of_another_key_or_unsigned_are_rejected() {
        let now = crate::ports::Clock::now(&crate::ports::SystemClock);
        let (user, session) = (UserId::generate(), SessionId::generate());
        let other = tokens().issue(&user, &session, now, 7200).unwrap();
        let ours = tokens();
        assert!(ours.verify(&other, now).is_err());
        let genuine = ours.issue(&user, &session, now, 7200).unwrap();
        let payload = genuine.split('.').nth(1).unwrap();
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
            r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#,
            ours.kid
        ));
        assert!(ours.verify(&format!("{header}.{payload}."), now).is_err());
    }

    #[test]
    fn pem_keys_load_and_garbage_is_refused_with_the_variable_name() {
        let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(document.as_ref())
        );
        assert!(AccessTokens::from_pem(&pem, "i", "a").is_ok());
        let err = AccessTokens::from_pem("nonsense", "i", "a").err().unwrap();
        assert!(err.0.contains("AUTH_JWT_PRIVATE_KEY"));
    }

    #[test]
    fn hashes_are_standard_phc_strings_both_ways() {
        use argon2::password_hash::{
            PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString,
        };
        let ours = hash_blocking("correct horse").unwrap();
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        let reference = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            params(),
        );
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(reference.verify_password(b"correct horse", &parsed).is_ok());
        assert!(reference.verify_password(b"wrong horse", &parsed).is_err());

        let salt = SaltString::encode_b64(b"sixteen byte salt").unwrap();
        let theirs = reference
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert!(verify_blocking("correct horse", &theirs).unwrap());
        assert!(!verify_blocking("wrong horse", &theirs).unwrap());
        assert!(verify_blocking(
            "correct horse",
            "$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"
        )
        .is_err());
    }

    #[tokio::test]
    async fn passwords_verify_only_against_their_own_hash() {
        let hasher = PasswordHasher::new();
        let hash = hasher
            .hash(Password::parse("correct horse").unwrap())
            .await
            .unwrap();
        assert!(hasher
            .verify(Password::parse("correct horse").unwrap(), Some(&hash))
            .await
            .unwrap());
        assert!(!hasher
            .verify(Password::parse("wrong horse").unwrap(), Some(&hash))
            .await
            .unwrap());
        assert!(!hasher
            .verify(Password::parse("correct horse").unwrap(), None)
            .await
            .unwrap());
    }
}
