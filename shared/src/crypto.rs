//! Access tokens (JWTs signed with ES256 by default) and password hashing (Argon2id); the
//! custom-login tickets of an app's backend are checked in `tickets`.

pub mod tickets;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
    ECDSA_P384_SHA384_FIXED_SIGNING,
};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
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

/// What an access token's holder is: the `scope` of the token and of the credentials that
/// carry it, so that an app's API (a JWT authorizer, say) can tell anonymous visitors apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    User,
    /// An account with no way to sign in again yet (`signInAnonymously`).
    Anonymous,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::Anonymous => "anonymous",
        }
    }
}

/// Who an access token speaks for.
#[derive(Clone, Debug)]
pub struct AccessClaims {
    pub user_id: UserId,
    pub session_id: SessionId,
}

/// One key of the ring: what verifies its tokens, and its public half as a JWK.
struct PublicKey {
    kid: String,
    algorithm: Algorithm,
    decoding: DecodingKey,
    jwk: Value,
}

/// A private key as configured (PKCS#8): P-256 signs ES256, P-384 ES384; Ed25519 (EdDSA)
/// remains for deployments that issued such tokens before, and API Gateway's JWT authorizer
/// does not accept it.
struct PrivateKey {
    der: Vec<u8>,
    public: PublicKey,
}

impl PrivateKey {
    fn from_pkcs8(der: &[u8]) -> Option<Self> {
        let ec = |signing, algorithm, curve: &str| {
            let pair = EcdsaKeyPair::from_pkcs8(signing, der).ok()?;
            // The uncompressed point: 0x04, then x and y of equal length.
            let point = pair.public_key().as_ref();
            let (x, y) = point.get(1..)?.split_at((point.len() - 1) / 2);
            let (x, y) = (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y));
            // RFC 7638: the required members, in lexicographic order, without spaces.
            let thumbprint = format!(r#"{{"crv":"{curve}","kty":"EC","x":"{x}","y":"{y}"}}"#);
            let jwk = json!({"kty": "EC", "crv": curve, "x": x, "y": y});
            Some((algorithm, DecodingKey::from_ec_der(point), thumbprint, jwk))
        };
        let ed25519 = || {
            let pair = Ed25519KeyPair::from_pkcs8(der).ok()?;
            let raw = pair.public_key().as_ref();
            let x = URL_SAFE_NO_PAD.encode(raw);
            let thumbprint = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
            let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": x});
            Some((
                Algorithm::EdDSA,
                DecodingKey::from_ed_der(raw),
                thumbprint,
                jwk,
            ))
        };
        let (algorithm, decoding, thumbprint, mut jwk) =
            ec(&ECDSA_P256_SHA256_FIXED_SIGNING, Algorithm::ES256, "P-256")
                .or_else(|| ec(&ECDSA_P384_SHA384_FIXED_SIGNING, Algorithm::ES384, "P-384"))
                .or_else(ed25519)?;
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(thumbprint.as_bytes()));
        jwk["kid"] = kid.clone().into();
        jwk["alg"] = algorithm_name(algorithm).into();
        jwk["use"] = "sig".into();
        Some(Self {
            der: der.to_vec(),
            public: PublicKey {
                kid,
                algorithm,
                decoding,
                jwk,
            },
        })
    }

    fn encoding(&self) -> EncodingKey {
        match self.public.algorithm {
            Algorithm::EdDSA => EncodingKey::from_ed_der(&self.der),
            _ => EncodingKey::from_ec_der(&self.der),
        }
    }
}

fn algorithm_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        _ => "EdDSA",
    }
}

/// The DER of every `PRIVATE KEY` block of a PEM text, in order.
fn pem_blocks(text: &str, variable: &str) -> Result<Vec<Vec<u8>>, ConfigError> {
    let invalid =
        |why: &str| ConfigError(format!("{variable} is not PKCS#8 PEM private keys ({why})"));
    let mut blocks = Vec::new();
    let mut body: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if line == "-----BEGIN PRIVATE KEY-----" {
            body = Some(String::new());
        } else if line == "-----END PRIVATE KEY-----" {
            let content = body
                .take()
                .ok_or_else(|| invalid("an END without a BEGIN"))?;
            blocks.push(
                STANDARD
                    .decode(content)
                    .map_err(|_| invalid("bad base64"))?,
            );
        } else if let Some(content) = body.as_mut() {
            content.push_str(line);
        } else if !line.is_empty() {
            return Err(invalid("text outside a BEGIN PRIVATE KEY block"));
        }
    }
    if body.is_some() {
        return Err(invalid("a BEGIN without an END"));
    }
    Ok(blocks)
}

/// Signs access tokens with one key and verifies them with any key of the ring, found by the
/// token's `kid`: the next key is published (and verifies) before it signs, the previous one
/// verifies until its tokens expired. The public halves are derived, never configured.
pub struct AccessTokens {
    signing: EncodingKey,
    signing_kid: String,
    signing_algorithm: Algorithm,
    /// The signing key's public half first.
    ring: Vec<PublicKey>,
    audience: String,
}

impl AccessTokens {
    /// `signing`: one PEM private key (`AUTH_JWT_PRIVATE_KEY`); `verifying`: any number of
    /// PEM private keys whose tokens are accepted too (`AUTH_JWT_VERIFICATION_KEYS`).
    pub fn from_pems(signing: &str, verifying: &str, audience: &str) -> Result<Self, ConfigError> {
        let mut signing_keys = pem_blocks(signing, "AUTH_JWT_PRIVATE_KEY")?;
        if signing_keys.len() != 1 {
            return Err(ConfigError(
                "AUTH_JWT_PRIVATE_KEY must hold exactly one PEM private key".into(),
            ));
        }
        let mut keys = vec![
            PrivateKey::from_pkcs8(&signing_keys.remove(0)).ok_or_else(|| {
                ConfigError(
                    "AUTH_JWT_PRIVATE_KEY is not a P-256, P-384 or Ed25519 private key".into(),
                )
            })?,
        ];
        for der in pem_blocks(verifying, "AUTH_JWT_VERIFICATION_KEYS")? {
            keys.push(PrivateKey::from_pkcs8(&der).ok_or_else(|| {
                ConfigError(
                    "AUTH_JWT_VERIFICATION_KEYS holds a key that is not P-256, P-384 or Ed25519"
                        .into(),
                )
            })?);
        }
        Ok(Self::from_keys(keys, audience))
    }

    /// A fresh P-256 key for the local server: its access tokens die with the process.
    pub fn ephemeral(audience: &str) -> Self {
        let document =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .expect("P-256 key generation from the OS RNG");
        let key = PrivateKey::from_pkcs8(document.as_ref()).expect("a fresh key parses");
        Self::from_keys(vec![key], audience)
    }

    fn from_keys(keys: Vec<PrivateKey>, audience: &str) -> Self {
        let signer = &keys[0];
        let (signing, signing_kid, signing_algorithm) = (
            signer.encoding(),
            signer.public.kid.clone(),
            signer.public.algorithm,
        );
        let mut ring: Vec<PublicKey> = Vec::new();
        for key in keys {
            // The same key listed twice (signing and verifying, mid-rotation) is one key.
            if !ring.iter().any(|known| known.kid == key.public.kid) {
                ring.push(key.public);
            }
        }
        Self {
            signing,
            signing_kid,
            signing_algorithm,
            ring,
            audience: audience.to_string(),
        }
    }

    /// The JSON Web Key Set of the ring: what an independent verifier needs.
    pub fn jwks(&self) -> Value {
        json!({"keys": self.ring.iter().map(|key| key.jwk.clone()).collect::<Vec<_>>()})
    }

    /// The algorithms of the ring's keys, the signing key's first.
    pub fn algorithms(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        for key in &self.ring {
            let name = algorithm_name(key.algorithm);
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    pub fn issue(
        &self,
        issuer: &str,
        user_id: &UserId,
        session_id: &SessionId,
        scope: Scope,
        now: UnixTime,
        ttl_secs: i64,
    ) -> AuthResult<String> {
        let mut header = Header::new(self.signing_algorithm);
        header.kid = Some(self.signing_kid.clone());
        let claims = Claims {
            sub: user_id.as_str().to_string(),
            sid: session_id.as_str().to_string(),
            iss: issuer.to_string(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + ttl_secs,
            jti: hex::encode(random_bytes::<16>()),
            scope: scope.as_str().into(),
        };
        jsonwebtoken::encode(&header, &claims, &self.signing)
            .map_err(|e| AuthError::Internal(format!("signing an access token: {e}")))
    }

    /// Checks the signature with the ring's key of the token's `kid` (in that key's algorithm
    /// only), then issuer, audience and expiry.
    pub fn verify(&self, token: &str, issuer: &str, now: UnixTime) -> AuthResult<AccessClaims> {
        let rejected = || AuthError::Unauthenticated("the access token is invalid or expired");
        let header = jsonwebtoken::decode_header(token).map_err(|_| rejected())?;
        let key = self
            .ring
            .iter()
            .find(|key| header.kid.as_deref() == Some(key.kid.as_str()))
            .ok_or_else(rejected)?;
        let mut validation = Validation::new(key.algorithm);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 0;
        let data = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
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

/// The key of `SecretHasher`, from its own secret (`AUTH_SECRET_HASH_KEY`): rotating the
/// signing key voids no stored hash.
pub fn secret_hash_key(secret: &str) -> Result<[u8; 32], ConfigError> {
    if secret.trim().len() < 32 {
        return Err(ConfigError(
            "AUTH_SECRET_HASH_KEY must be at least 32 characters of random text (e.g. `openssl rand -base64 48`)".into(),
        ));
    }
    Ok(Sha256::new()
        .chain_update(b"cloudbase-association secret hashing\0")
        .chain_update(secret.trim().as_bytes())
        .finalize()
        .into())
}

/// Argon2id with OWASP's recommended parameters (19 MiB, 2 passes, 1 lane). Hashing runs
/// on the blocking pool so it never stalls the async executor.
#[derive(Clone, Default)]
pub struct PasswordHasher;

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
        let stored = stored.map(str::to_string);
        tokio::task::spawn_blocking(move || match stored {
            Some(hash) => verify_blocking(password.expose(), &hash),
            // No account: the Argon2id work of checking a hash of the current parameters (one
            // run over a fresh salt), its result discarded. No decoy hash to make first.
            None => hash_blocking(password.expose()).map(|_| false),
        })
        .await
        .map_err(|e| AuthError::Internal(format!("password hashing task: {e}")))?
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

    const ISSUER: &str = "https://auth.example/auth/v1";

    fn tokens() -> AccessTokens {
        AccessTokens::ephemeral("aud")
    }

    fn now() -> UnixTime {
        crate::ports::Clock::now(&crate::ports::SystemClock)
    }

    fn pem(der: &[u8]) -> String {
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(der)
        )
    }

    fn p256_pem() -> String {
        let rng = SystemRandom::new();
        pem(
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .unwrap()
                .as_ref(),
        )
    }

    fn ed25519_pem() -> String {
        pem(Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .unwrap()
            .as_ref())
    }

    #[test]
    fn issued_tokens_verify_and_carry_the_session() {
        let tokens = tokens();
        let (user, session) = (UserId::generate(), SessionId::generate());
        let expired = tokens
            .issue(ISSUER, &user, &session, Scope::User, 1_000, 7200)
            .unwrap();
        let jwt = tokens
            .issue(ISSUER, &user, &session, Scope::User, now(), 7200)
            .unwrap();
        let claims = tokens.verify(&jwt, ISSUER, now()).unwrap();
        assert_eq!(claims.user_id, user);
        assert_eq!(claims.session_id, session);
        assert!(tokens.verify(&expired, ISSUER, now()).is_err());
        assert!(
            tokens
                .verify(&jwt, "https://elsewhere/auth/v1", now())
                .is_err(),
            "another issuer's token verified"
        );
        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
    }

    #[test]
    fn tokens_of_another_key_or_unsigned_are_rejected() {
        let (user, session) = (UserId::generate(), SessionId::generate());
        let other = tokens()
            .issue(ISSUER, &user, &session, Scope::User, now(), 7200)
            .unwrap();
        let ours = tokens();
        assert!(ours.verify(&other, ISSUER, now()).is_err());
        let genuine = ours
            .issue(ISSUER, &user, &session, Scope::User, now(), 7200)
            .unwrap();
        let payload = genuine.split('.').nth(1).unwrap();
        let header = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#,
            ours.signing_kid
        ));
        assert!(ours
            .verify(&format!("{header}.{payload}."), ISSUER, now())
            .is_err());
    }

    #[test]
    fn a_ring_verifies_every_key_and_publishes_each_public_half_once() {
        let (old, next) = (ed25519_pem(), p256_pem());
        let (user, session) = (UserId::generate(), SessionId::generate());
        let before = AccessTokens::from_pems(&old, "", "aud").unwrap();
        let old_token = before
            .issue(ISSUER, &user, &session, Scope::User, now(), 60)
            .unwrap();
        // Switched: the new key signs, the old one still verifies.
        let after = AccessTokens::from_pems(&next, &format!("{old}{next}"), "aud").unwrap();
        assert!(after.verify(&old_token, ISSUER, now()).is_ok());
        let new_token = after
            .issue(ISSUER, &user, &session, Scope::User, now(), 60)
            .unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(&new_token).unwrap().alg,
            Algorithm::ES256
        );
        let jwks = after.jwks();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2, "{jwks}");
        assert_eq!(keys[0]["kty"], "EC");
        assert_eq!(keys[0]["alg"], "ES256");
        assert_eq!(keys[1]["kty"], "OKP");
        assert!(
            keys.iter().all(|k| k.get("d").is_none()),
            "a private part was published"
        );
        assert_eq!(after.algorithms(), ["ES256", "EdDSA"]);
        // Retired: tokens of the removed key are refused.
        let retired = AccessTokens::from_pems(&next, "", "aud").unwrap();
        assert!(retired.verify(&old_token, ISSUER, now()).is_err());
        assert!(retired.verify(&new_token, ISSUER, now()).is_ok());
    }

    #[test]
    fn kids_are_rfc_7638_thumbprints() {
        // RFC 7638, section 3.1: the thumbprint of its example RSA key is given; for EC the
        // same rule applies. Checked here against an independent computation.
        let key = PrivateKey::from_pkcs8(&pem_blocks(&p256_pem(), "t").unwrap()[0]).unwrap();
        let jwk = &key.public.jwk;
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["x"].as_str().unwrap(),
            jwk["y"].as_str().unwrap()
        );
        assert_eq!(
            key.public.kid,
            URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
        );
    }

    #[test]
    fn pem_keys_load_and_garbage_is_refused_with_the_variable_name() {
        assert!(AccessTokens::from_pems(&p256_pem(), "", "a").is_ok());
        assert!(AccessTokens::from_pems(&ed25519_pem(), "", "a").is_ok());
        let err = AccessTokens::from_pems("nonsense", "", "a").err().unwrap();
        assert!(err.0.contains("AUTH_JWT_PRIVATE_KEY"), "{err}");
        let two = format!("{}{}", p256_pem(), p256_pem());
        assert!(AccessTokens::from_pems(&two, "", "a").is_err());
        let err = AccessTokens::from_pems(&p256_pem(), "garbage", "a")
            .err()
            .unwrap();
        assert!(err.0.contains("AUTH_JWT_VERIFICATION_KEYS"), "{err}");
    }

    #[test]
    fn the_secret_hash_key_needs_a_real_secret() {
        assert!(secret_hash_key("short").is_err());
        let a = secret_hash_key(&"a".repeat(40)).unwrap();
        assert_eq!(
            a,
            secret_hash_key(&format!("  {}\n", "a".repeat(40))).unwrap()
        );
        assert_ne!(a, secret_hash_key(&"b".repeat(40)).unwrap());
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
