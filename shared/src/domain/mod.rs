//! Typed values parsed once at the edge, and the records of the account aggregate.
//! No I/O and no JSON values here.

mod client;
mod contact;
mod profile;
mod secret;

use std::fmt;

pub use client::ClientNetwork;
pub use contact::{Address, AddressKind, Email, PhoneNumber};
pub use profile::{Gender, Picture, MAX_PICTURE_URL};
pub use secret::{random_bytes, Password, SecretHash, SecretHasher, SecretToken, VerificationCode};

/// Seconds since the Unix epoch.
pub type UnixTime = i64;

/// A time as RFC 3339 text (UTC), as answers and the outbox show it; empty if out of range.
pub fn rfc3339(time: UnixTime) -> String {
    time::OffsetDateTime::from_unix_timestamp(time)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Why a request field was refused; becomes `invalid_argument`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidInput {
    pub field: &'static str,
    pub reason: &'static str,
}

impl InvalidInput {
    pub fn new(field: &'static str, reason: &'static str) -> Self {
        Self { field, reason }
    }
}

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.reason)
    }
}

macro_rules! random_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn generate() -> Self {
                Self(hex::encode(random_bytes::<16>()))
            }

            pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
                if raw.len() == 32 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                    Ok(Self(raw.to_string()))
                } else {
                    Err(InvalidInput::new($field, "is not a valid identifier"))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

random_id!(
    /// The account's stable identifier, the `sub` of its tokens.
    UserId,
    "sub"
);
random_id!(
    /// One sign-in: the family of refresh tokens that rotate from it.
    SessionId,
    "session"
);
random_id!(
    /// Names one code sent to one address.
    VerificationId,
    "verification_id"
);

/// A username: 3 to 32 characters, lower-case letters, digits, `_`, `-` and `.`, starting
/// with a letter so that it can never be mistaken for a phone number or an email.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let name = raw.trim().to_lowercase();
        let valid = (3..=32).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.".contains(&b));
        if valid {
            Ok(Self(name))
        } else {
            Err(InvalidInput::new(
                "username",
                "must be 3 to 32 letters, digits, '_', '-' or '.', starting with a letter",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A display name chosen by the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let name = raw.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(InvalidInput::new(
                "name",
                "must be 1 to 64 printable characters",
            ));
        }
        Ok(Self(name.to_string()))
    }

    /// A name a provider chose for the person (WeChat's `nickname`), which may be anything:
    /// control characters and bidi controls (which reorder the text around where the name
    /// is shown) are dropped, and what is left is cut to 64 characters at a character
    /// boundary. `None` when nothing is left.
    pub fn from_provider(raw: &str) -> Option<Self> {
        let kept: String = raw
            .chars()
            .filter(|&c| !c.is_control() && !is_bidi_control(c))
            .collect();
        let name: String = kept.trim().chars().take(MAX_DISPLAY_NAME_CHARS).collect();
        let name = name.trim_end();
        (!name.is_empty()).then(|| Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

const MAX_DISPLAY_NAME_CHARS: usize = 64;

/// The Unicode bidirectional formatting characters (UAX #9): marks, embeddings, overrides
/// and isolates.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// An external identity provider this service knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProviderId {
    /// WeChat Open Platform web login.
    WxOpen,
}

impl ProviderId {
    pub const ALL: [ProviderId; 1] = [ProviderId::WxOpen];

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        match raw.trim() {
            "wx_open" => Ok(ProviderId::WxOpen),
            _ => Err(InvalidInput::new(
                "provider_id",
                "names no supported provider",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderId::WxOpen => "wx_open",
        }
    }

    pub fn display_name(self) -> &'static str {
        match self {
            ProviderId::WxOpen => "WeChat",
        }
    }
}

/// A person at a provider. WeChat names one by `openid` within the app, in every answer, and
/// (when the app belongs to an Open Platform account) by `unionid` across its apps, in some
/// answers only: not when `sns/userinfo` fails. Both are kept, and an account holds both as
/// login keys, so that an answer with either finds the same account.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProviderIdentity {
    pub provider: ProviderId,
    /// WeChat's `unionid` when it gave one, else its `openid`: the identity's name in answers.
    pub subject: String,
    /// WeChat's `openid`: the person within this app, known from every answer.
    pub app_subject: String,
}

impl ProviderIdentity {
    /// The login key of `subject`.
    pub fn subject_key(&self) -> LoginKey {
        LoginKey::Provider(self.provider, self.subject.clone())
    }

    /// The login key of `app_subject`.
    pub fn app_key(&self) -> LoginKey {
        LoginKey::ProviderApp(self.provider, self.app_subject.clone())
    }

    /// Whether both name the same person: the same provider, and the same `openid` or the
    /// same `unionid`.
    pub fn same_person(&self, other: &ProviderIdentity) -> bool {
        self.provider == other.provider
            && (self.app_subject == other.app_subject || self.subject == other.subject)
    }
}

/// What a provider told us about the person, cleaned where it came in (the adapter): a name
/// as `DisplayName::from_provider` keeps it, a picture only when it is a `Picture`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ProviderProfile {
    pub name: Option<DisplayName>,
    pub picture: Option<Picture>,
}

/// The app's own id of a user, as its backend names them in a custom-login ticket
/// (`createTicket(uid)`): 4 to 32 of the characters `@cloudbase/node-sdk` allows (letters,
/// digits and `_-#@~=*(){}[]:.,<>+`), kept exactly as given.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CustomUid(String);

impl CustomUid {
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b"_-#@~=*(){}[]:.,<>+".contains(&b);
        if (4..=32).contains(&raw.len()) && raw.bytes().all(allowed) {
            Ok(Self(raw.to_string()))
        } else {
            Err(InvalidInput::new(
                "uid",
                "must be 4 to 32 letters, digits or _-#@~=*(){}[]:.,<>+",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A custom-login ticket as the app's backend mints it (`createTicket`), checked for shape
/// only: `<private_key_id>/@@/<JWT>`. Whether it is genuine is for `crypto::tickets`. A
/// bearer credential until spent: `Debug` shows only the key id.
#[derive(Clone, PartialEq, Eq)]
pub struct CustomTicket {
    key_id: String,
    jwt: String,
}

impl CustomTicket {
    /// Far above the ~700 bytes `createTicket` mints, far below the body limit.
    pub const MAX_LEN: usize = 4096;

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let invalid = || {
            InvalidInput::new(
                "ticket",
                "is not a custom login ticket (<private_key_id>/@@/<JWT>)",
            )
        };
        if raw.len() > Self::MAX_LEN {
            return Err(InvalidInput::new("ticket", "is too long"));
        }
        let (key_id, jwt) = raw.trim().split_once("/@@/").ok_or_else(invalid)?;
        let key_id_ok = (1..=128).contains(&key_id.len())
            && key_id.bytes().all(|b| b.is_ascii_graphic() && b != b'/');
        let base64url = |part: &str| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        let parts: Vec<&str> = jwt.split('.').collect();
        if !key_id_ok || parts.len() != 3 || !parts.iter().all(|part| base64url(part)) {
            return Err(invalid());
        }
        Ok(Self {
            key_id: key_id.to_string(),
            jwt: jwt.to_string(),
        })
    }

    /// The `private_key_id` of the credentials that minted it.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn jwt(&self) -> &str {
        &self.jwt
    }
}

impl fmt::Debug for CustomTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CustomTicket({}/@@/<redacted>)", self.key_id)
    }
}

/// Anything a person can sign in with; each belongs to at most one account.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LoginKey {
    Username(Username),
    Address(Address),
    /// A provider's name of a person (`ProviderIdentity::subject`).
    Provider(ProviderId, String),
    /// A provider's name of a person within this app (`ProviderIdentity::app_subject`).
    ProviderApp(ProviderId, String),
    /// The app's own user id, signed in by its backend's custom-login tickets.
    Custom(CustomUid),
}

impl LoginKey {
    /// The unique key the store reserves for it.
    pub fn storage_key(&self) -> String {
        match self {
            LoginKey::Username(name) => format!("username#{}", name.as_str()),
            LoginKey::Address(address) => {
                format!("{}#{}", address.kind().as_str(), address.stored())
            }
            LoginKey::Provider(provider, subject) => {
                format!("provider#{}#{subject}", provider.as_str())
            }
            LoginKey::ProviderApp(provider, app_subject) => {
                format!("provider-app#{}#{app_subject}", provider.as_str())
            }
            LoginKey::Custom(uid) => format!("custom#{}", uid.as_str()),
        }
    }
}

/// A provider identity linked to an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderLink {
    pub identity: ProviderIdentity,
    pub profile: ProviderProfile,
}

/// The account aggregate as stored.
#[derive(Clone, Debug)]
pub struct User {
    pub id: UserId,
    pub username: Option<Username>,
    pub email: Option<Email>,
    pub phone: Option<PhoneNumber>,
    pub name: Option<DisplayName>,
    /// Argon2id in PHC string form.
    pub password_hash: Option<String>,
    pub providers: Vec<ProviderLink>,
    /// The app's own id of this user, when its backend signs them in with custom-login
    /// tickets: set by the first ticket for that id, which created the account.
    pub custom_uid: Option<CustomUid>,
    /// Set by the user (profile edit); a provider's picture is shown while this is unset.
    pub picture: Option<Picture>,
    pub gender: Option<Gender>,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
    /// Bumped on every change; writes are conditional on it.
    pub version: u64,
    /// An anonymous account (one without any way to sign in again) ends at this time unless
    /// it binds one first; `None` for every other account.
    pub expires_at: Option<UnixTime>,
    /// Sessions and sudo tokens of another epoch are dead: bumping it ends them all at once,
    /// without listing them (a password change or reset, signing out everywhere).
    pub session_epoch: u64,
}

impl User {
    /// A new account, created at `now`, that holds nothing yet: the caller sets what it is
    /// created with.
    pub fn new(now: UnixTime) -> Self {
        User {
            id: UserId::generate(),
            username: None,
            email: None,
            phone: None,
            name: None,
            password_hash: None,
            providers: Vec::new(),
            custom_uid: None,
            picture: None,
            gender: None,
            created_at: now,
            updated_at: now,
            version: 1,
            expires_at: None,
            session_epoch: 0,
        }
    }

    /// Every unique key this account holds.
    pub fn login_keys(&self) -> Vec<LoginKey> {
        let mut keys = Vec::new();
        keys.extend(self.username.clone().map(LoginKey::Username));
        keys.extend(
            self.email
                .clone()
                .map(|e| LoginKey::Address(Address::Email(e))),
        );
        keys.extend(
            self.phone
                .clone()
                .map(|p| LoginKey::Address(Address::Phone(p))),
        );
        keys.extend(
            self.providers
                .iter()
                .flat_map(|l| [l.identity.subject_key(), l.identity.app_key()]),
        );
        keys.extend(self.custom_uid.clone().map(LoginKey::Custom));
        keys
    }

    pub fn address(&self, kind: AddressKind) -> Option<Address> {
        match kind {
            AddressKind::Email => self.email.clone().map(Address::Email),
            AddressKind::Phone => self.phone.clone().map(Address::Phone),
        }
    }

    pub fn has_address(&self, address: &Address) -> bool {
        self.address(address.kind()).as_ref() == Some(address)
    }

    pub fn provider(&self, provider: ProviderId) -> Option<&ProviderLink> {
        self.providers
            .iter()
            .find(|l| l.identity.provider == provider)
    }

    /// Whether the account is alive at `now`: an anonymous one ends at its expiry, which the
    /// code enforces itself because DynamoDB deletes expired items days late.
    pub fn alive_at(&self, now: UnixTime) -> bool {
        self.expires_at.is_none_or(|end| end > now)
    }

    /// Ways left to sign in: a code to a bound email or phone number (`signInWithOtp`), a
    /// password with a username to go with it, a provider, or the app's backend minting a
    /// custom-login ticket for its uid.
    pub fn sign_in_methods(&self) -> usize {
        let by_code = usize::from(self.email.is_some()) + usize::from(self.phone.is_some());
        let by_password = usize::from(self.username.is_some() && self.password_hash.is_some());
        let by_ticket = usize::from(self.custom_uid.is_some());
        by_code + by_password + self.providers.len() + by_ticket
    }
}

/// One sign-in and its current refresh token.
#[derive(Clone, Debug)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub refresh_hash: SecretHash,
    pub expires_at: UnixTime,
    pub revoked: bool,
    /// When the user signed in.
    pub created_at: UnixTime,
    /// When the refresh token last rotated (`created_at` until then).
    pub refreshed_at: UnixTime,
    /// Rotations so far: how far back a retired refresh token of this session can be.
    pub generation: u32,
    /// When the user last proved who they are here: the sign-in, or a later sudo.
    pub authenticated_at: UnixTime,
    /// The account's `session_epoch` this session belongs to; alive only while they match.
    pub epoch: u64,
    /// Bounds the sign-in set beyond the deployment's own (a custom-login ticket's `expire`
    /// and `refresh`): the latest the session may live, and the life of its access tokens.
    pub limits: SessionLimits,
}

/// What a sign-in may shorten of a session's lives; `None` leaves the deployment's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionLimits {
    /// The session ends by this time however it is refreshed.
    pub ends_at: Option<UnixTime>,
    /// Each access token of the session lives at most this long.
    pub access_token_ttl_secs: Option<i64>,
}

/// A code sent to an address, waiting to be verified.
#[derive(Clone, Debug)]
pub struct Verification {
    pub id: VerificationId,
    pub address: Address,
    pub code_hash: SecretHash,
    pub attempts: u32,
    pub expires_at: UnixTime,
    pub used: bool,
    /// The signed-in account that asked for the code, if any: when it is verified, that
    /// account is remembered to hold the address (see `VerifiedAddress`).
    pub requested_by: Option<UserId>,
}

/// An account that just verified a code for an address, sent at its own request: what lets
/// it bind that address without a token (`updateUser({email})` sends none). Spent by the bind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedAddress {
    pub user_id: UserId,
    pub address: Address,
    pub expires_at: UnixTime,
}

/// Proof that someone holds an address; spent by sign-up, sudo or binding.
#[derive(Clone, Debug)]
pub struct VerificationToken {
    pub hash: SecretHash,
    pub address: Address,
    pub expires_at: UnixTime,
    pub used: bool,
}

/// Proof of a fresh re-authentication within one session.
#[derive(Clone, Debug)]
pub struct SudoToken {
    pub hash: SecretHash,
    pub user_id: UserId,
    pub session_id: SessionId,
    pub expires_at: UnixTime,
    /// The account's `session_epoch` when it was granted; void once the epoch moves.
    pub epoch: u64,
}

/// Proof that a provider vouched for an identity; spent by binding.
#[derive(Clone, Debug)]
pub struct ProviderToken {
    pub hash: SecretHash,
    pub identity: ProviderIdentity,
    pub profile: ProviderProfile,
    pub expires_at: UnixTime,
    pub used: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_cannot_look_like_phone_numbers_or_emails() {
        assert!(Username::parse("alice_01").is_ok());
        for raw in ["13800000000", "+86138", "a@b.com", "ab", "_alice", "al ice"] {
            assert!(Username::parse(raw).is_err(), "{raw:?} was accepted");
        }
    }

    #[test]
    fn ids_parse_only_their_own_shape() {
        let id = UserId::generate();
        assert_eq!(UserId::parse(id.as_str()).unwrap(), id);
        assert!(UserId::parse("../../etc").is_err());
    }

    #[test]
    fn a_providers_name_loses_control_and_bidi_characters_and_is_cut_to_64() {
        let hostile = format!(
            "\u{202E}evil\u{0007}\n\u{2066}{}\u{200F}",
            "\u{4E2D}".repeat(3000)
        );
        let name = DisplayName::from_provider(&hostile).unwrap();
        assert_eq!(name.as_str().chars().count(), 64);
        assert!(name.as_str().starts_with("evil\u{4E2D}"));
        assert!(name
            .as_str()
            .chars()
            .all(|c| !c.is_control() && !is_bidi_control(c)));
        assert_eq!(
            DisplayName::from_provider("  Ada  ").map(|n| n.as_str().to_string()),
            Some("Ada".to_string())
        );
        for nothing in ["", "  ", "\u{202E}\u{0000}", "\n"] {
            assert_eq!(DisplayName::from_provider(nothing), None, "{nothing:?}");
        }
    }

    #[test]
    fn login_keys_name_their_kind() {
        let email = Address::Email(Email::parse("A@x.io").unwrap());
        assert_eq!(LoginKey::Address(email).storage_key(), "email#a@x.io");
        let uid = CustomUid::parse("Emp#0042").unwrap();
        assert_eq!(LoginKey::Custom(uid).storage_key(), "custom#Emp#0042");
    }

    #[test]
    fn only_the_shape_of_a_ticket_parses() {
        let ticket = CustomTicket::parse("key-1/@@/aGVhZA.Ym9keQ.c2ln").unwrap();
        assert_eq!(ticket.key_id(), "key-1");
        assert_eq!(ticket.jwt(), "aGVhZA.Ym9keQ.c2ln");
        assert!(!format!("{ticket:?}").contains("Ym9keQ"));
        let huge = format!("k/@@/a.{}.c", "b".repeat(CustomTicket::MAX_LEN));
        for bad in [
            "",
            "aGVhZA.Ym9keQ.c2ln",
            "/@@/aGVhZA.Ym9keQ.c2ln",
            "key/@@/",
            "key/@@/aGVhZA.Ym9keQ",
            "key/@@/aGVhZA.Ym9keQ.",
            "key/@@/aGVhZA.Ym9keQ.c2ln.ZXh0cmE",
            "key/@@/aGVh+A.Ym9keQ.c2ln",
            "a key/@@/aGVhZA.Ym9keQ.c2ln",
            &huge,
        ] {
            assert!(CustomTicket::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn custom_uids_are_what_the_node_sdk_mints() {
        for good in [
            "abcd",
            "user_01",
            "Emp#0042",
            "a-b~c=d*(e){f}[g]:h.i,j<k>l+m@n",
            &"x".repeat(32),
        ] {
            assert_eq!(CustomUid::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "abc",
            &"x".repeat(33),
            "with space",
            "slash/",
            "quote\"",
            "ümlaut",
            "tab\tx",
        ] {
            assert!(CustomUid::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
