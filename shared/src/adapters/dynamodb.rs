//! The DynamoDB store: the same semantics as the embedded store (`memory.rs`), made atomic
//! across processes with condition expressions and `TransactWriteItems`.
//!
//! # Table design
//!
//! One table, billed `PAY_PER_REQUEST`, with a string hash key `pk`, no sort key and no
//! indexes. Every read is a strongly consistent `GetItem`/`BatchGetItem` by key. The TTL
//! attribute is `expires_at` (a number, Unix seconds).
//!
//! | `pk`                              | attributes                                                      |
//! |-----------------------------------|-----------------------------------------------------------------|
//! | `USER#<user id>`                  | `username`?, `email`? (normalised), `phone`? (E.164), `name`?, `password_hash`?, `providers` (list of maps `{provider, subject, name?, picture?}`), `created_at`, `updated_at`, `version`, `session_epoch`? (absent: 0) |
//! | `LOGIN#<LoginKey::storage_key()>` | `user_id`, `password_hash`?, `session_epoch`?: reserves a username, email, phone or provider identity for one account; the account's password hash and session epoch are repeated here (same transaction) so that sign-in is one read |
//! | `SESSION#<session id>`            | `user_id`, `refresh_hash` (hex), `revoked`, `expires_at`, `created_at`, `refreshed_at`, `generation`, `authenticated_at`, `epoch`? (absent: 0; alive only while it is the user's `session_epoch`) |
//! | `VERIF#<verification id>`         | `address_kind`, `address`, `code_hash` (hex), `attempts`, `used`, `expires_at` |
//! | `VTOKEN#<hash hex>`               | `address_kind`, `address`, `used`, `expires_at` (verification token) |
//! | `SUDO#<hash hex>`                 | `user_id`, `session_id`, `expires_at`, `epoch`? (absent: 0)    |
//! | `PTOKEN#<hash hex>`               | `provider`, `subject`, `name`?, `picture`?, `used`, `expires_at` (provider token) |
//! | `COOLDOWN#<key>`                  | `expires_at` (busy until), `holder` (random, one per acquisition) |
//! | `COUNT#<key>#<window start>`      | `count`, `expires_at` (window end)                              |
//!
//! Secrets are only ever stored as keyed hashes (`SecretHash`), in hex.
//!
//! # Expiry
//!
//! DynamoDB deletes expired items lazily, possibly days late. So every condition that decides
//! whether something is alive includes `expires_at > :now`, and reads return records exactly as
//! stored: the operations re-check expiry, as they do with the embedded store.
//!
//! # Atomicity
//!
//! * `apply` is one `TransactWriteItems`: the user item `Put` (conditional on
//!   `attribute_not_exists(pk)` on creation, else on the version read), a `Put` of each login
//!   key the account gains (`attribute_not_exists(pk) OR user_id = :uid`; also of each key it
//!   keeps when its password hash changes, which the keys repeat), a `Delete` of each
//!   key it loses (`attribute_not_exists(pk) OR user_id = :uid`), a `ConditionCheck` of the sudo
//!   token and an `Update` spending the verification or provider token. Cancellation reasons
//!   are mapped back by item index to `ChangeRejected` with the embedded store's precedence:
//!   `Stale`, then `Sudo`, then `Token`, then `Taken`.
//!   A sign-up's session is a plain `Put` in the same transaction.
//! * `redeem_verification`, `exchange_for_sudo` and `exchange_for_session` are one transaction
//!   each: spend, and store the token or session the spend earns (for a session, with a
//!   `ConditionCheck` that the provider identity still names its account; for sudo, with an
//!   `Update` marking the session authenticated, conditional on it being alive). `grant_sudo`
//!   is the sudo token's `Put` and that `Update`.
//! * `rotate_refresh_token`, `record_wrong_code`, `count_event`, `uncount_event` and
//!   `acquire_cooldown` are one conditional write each.
//!
//! Transactions cancelled only by conflicts with concurrent transactions or throttling are
//! retried a few times; condition failures are answers, never retried.
//!
//! # Failures and retries
//!
//! The SDK client retries throttling, 5xx answers, timeouts and dropped connections itself
//! (standard mode; attempts and timeouts are set in `bootstrap.rs`), so a write may reach the
//! table more than once, or take effect although its answer never arrived. Every write is
//! therefore either idempotent or settles the ambiguity:
//!
//! * plain `PutItem`s (sessions, verifications, tokens) and the revocation write the same thing
//!   again (a revocation whose every attempt failed reads the session back: revoked is done);
//! * `acquire_cooldown` writes a random `holder` and its condition also accepts its own holder
//!   (when every attempt failed, it reads the holder back);
//! * `rotate_refresh_token` also accepts a session that already holds the new hash, which only
//!   this call knows (when every attempt failed, it reads the session back);
//! * `TransactWriteItems` carries the SDK's idempotency token (`ClientRequestToken`), which is
//!   the same for every attempt of one call. When a transaction still fails (its condition
//!   fails on a retry, or every attempt failed), one consistent read tells whether an earlier
//!   attempt committed it: for `apply` the user item is exactly the `after` state and the token
//!   is spent; for the exchanges the token or session the call earns (a fresh secret or id)
//!   exists. Only then does the call report success, so an `unavailable` answer
//!   means nothing was written.
//!
//! Counters (`count_event`, `record_wrong_code`) are not idempotent: a retried increment may
//! count twice, which errs on the side of the limit.
//!
//! # Permissions
//!
//! On the table: `dynamodb:GetItem`, `dynamodb:BatchGetItem`, `dynamodb:PutItem`,
//! `dynamodb:UpdateItem`, `dynamodb:DeleteItem` and `dynamodb:ConditionCheckItem` (the last
//! three also cover the parts of `TransactWriteItems`). `ensure_table`, for local use only,
//! also needs `dynamodb:DescribeTable`, `dynamodb:CreateTable`, `dynamodb:DescribeTimeToLive`
//! and `dynamodb:UpdateTimeToLive`; the `Directory` (`local-api`'s console) needs `dynamodb:Scan`.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{BuildError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, KeySchemaElement,
    KeyType, KeysAndAttributes, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
    ScalarAttributeType, TableStatus, TimeToLiveSpecification, TimeToLiveStatus, TransactWriteItem,
    Update,
};
use aws_sdk_dynamodb::Client;

mod password;

use crate::domain::{
    Address, AddressKind, DisplayName, Email, LoginKey, PhoneNumber, ProviderId, ProviderIdentity,
    ProviderLink, ProviderProfile, ProviderToken, SecretHash, Session, SessionId, SudoToken,
    UnixTime, User, UserId, Username, Verification, VerificationId, VerificationToken,
};
use crate::ports::{
    AccountChange, AccountListing, ChangeRejected, CountDecision, DependencyError, Directory,
    LimitDecision, Login, Spend, Store,
};

/// The hash key of the table.
pub const PARTITION_KEY: &str = "pk";
/// The TTL attribute of the table.
pub const TTL_ATTRIBUTE: &str = "expires_at";

const CONDITION_FAILED: &str = "ConditionalCheckFailed";
/// Cancellation reasons worth another try: nothing was wrong with the request itself.
const TRANSIENT_REASONS: &[&str] = &[
    "None",
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
];
const MAX_ATTEMPTS: u32 = 4;

type Item = HashMap<String, AttributeValue>;

/// The `Store` over one DynamoDB table; see the module documentation for the layout.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

fn user_pk(id: &UserId) -> String {
    format!("USER#{}", id.as_str())
}

fn login_pk(storage_key: &str) -> String {
    format!("LOGIN#{storage_key}")
}

fn session_pk(id: &SessionId) -> String {
    format!("SESSION#{}", id.as_str())
}

fn verification_pk(id: &VerificationId) -> String {
    format!("VERIF#{}", id.as_str())
}

fn verification_token_pk(hash: &SecretHash) -> String {
    format!("VTOKEN#{}", hash.to_hex())
}

fn sudo_pk(hash: &SecretHash) -> String {
    format!("SUDO#{}", hash.to_hex())
}

fn provider_token_pk(hash: &SecretHash) -> String {
    format!("PTOKEN#{}", hash.to_hex())
}

fn cooldown_pk(key: &str) -> String {
    format!("COOLDOWN#{key}")
}

fn counter_pk(key: &str, window_start: UnixTime) -> String {
    format!("COUNT#{key}#{window_start}")
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn b(value: bool) -> AttributeValue {
    AttributeValue::Bool(value)
}

fn key_of(pk: String) -> Item {
    HashMap::from([(PARTITION_KEY.to_string(), s(pk))])
}

// ---------------------------------------------------------------------------------------------
// Errors

/// A log-safe description of a failed call: the operation, and the error code and message of
/// the service or the kind of transport failure. Requests (keys, addresses, hashes) never
/// appear in it.
fn sdk_error<E, R>(op: &str, err: &SdkError<E, R>) -> DependencyError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: Debug,
{
    let detail = match err {
        SdkError::ServiceError(_) => format!(
            "{}: {}",
            err.code().unwrap_or("unknown error"),
            err.message().unwrap_or("no message")
        ),
        _ => DisplayErrorContext(err).to_string(),
    };
    DependencyError(format!("DynamoDB {op} failed: {detail}"))
}

fn build_error(op: &str, err: BuildError) -> DependencyError {
    DependencyError(format!("DynamoDB {op}: invalid request: {err}"))
}

fn is_condition_failure<E, R>(err: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    matches!(err, SdkError::ServiceError(_))
        && err.code() == Some("ConditionalCheckFailedException")
}

/// A short pause before retrying, growing with the attempt and jittered by the clock.
async fn backoff(attempt: u32) {
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos() % 20))
        .unwrap_or_default();
    let millis = (10u64 << attempt.min(6)) + jitter;
    tokio::time::sleep(Duration::from_millis(millis)).await;
}

// ---------------------------------------------------------------------------------------------
// Encoding

fn user_item(user: &User) -> Item {
    let mut item = key_of(user_pk(&user.id));
    if let Some(username) = &user.username {
        item.insert("username".into(), s(username.as_str()));
    }
    if let Some(email) = &user.email {
        item.insert("email".into(), s(email.as_str()));
    }
    if let Some(phone) = &user.phone {
        item.insert("phone".into(), s(phone.e164()));
    }
    if let Some(name) = &user.name {
        item.insert("name".into(), s(name.as_str()));
    }
    if let Some(hash) = &user.password_hash {
        item.insert("password_hash".into(), s(hash.as_str()));
    }
    let providers = user
        .providers
        .iter()
        .map(|link| AttributeValue::M(identity_attributes(&link.identity, &link.profile)))
        .collect();
    item.insert("providers".into(), AttributeValue::L(providers));
    item.insert("created_at".into(), n(user.created_at));
    item.insert("updated_at".into(), n(user.updated_at));
    item.insert("version".into(), n(user.version));
    item.insert("session_epoch".into(), n(user.session_epoch));
    item
}

fn login_item(storage_key: &str, user: &User) -> Item {
    let mut item = key_of(login_pk(storage_key));
    item.insert("user_id".into(), s(user.id.as_str()));
    if let Some(hash) = &user.password_hash {
        item.insert("password_hash".into(), s(hash.as_str()));
    }
    item.insert("session_epoch".into(), n(user.session_epoch));
    item
}

fn identity_attributes(identity: &ProviderIdentity, profile: &ProviderProfile) -> Item {
    let mut map = Item::new();
    map.insert("provider".into(), s(identity.provider.as_str()));
    map.insert("subject".into(), s(identity.subject.as_str()));
    if let Some(name) = &profile.name {
        map.insert("name".into(), s(name.as_str()));
    }
    if let Some(picture) = &profile.picture {
        map.insert("picture".into(), s(picture.as_str()));
    }
    map
}

fn insert_address(item: &mut Item, address: &Address) {
    item.insert("address_kind".into(), s(address.kind().as_str()));
    item.insert("address".into(), s(address.stored()));
}

fn session_item(session: &Session) -> Item {
    let mut item = key_of(session_pk(&session.id));
    item.insert("user_id".into(), s(session.user_id.as_str()));
    item.insert("refresh_hash".into(), s(session.refresh_hash.to_hex()));
    item.insert("revoked".into(), b(session.revoked));
    item.insert(TTL_ATTRIBUTE.into(), n(session.expires_at));
    item.insert("created_at".into(), n(session.created_at));
    item.insert("refreshed_at".into(), n(session.refreshed_at));
    item.insert("generation".into(), n(session.generation));
    item.insert("authenticated_at".into(), n(session.authenticated_at));
    item.insert("epoch".into(), n(session.epoch));
    item
}

fn verification_item(verification: &Verification) -> Item {
    let mut item = key_of(verification_pk(&verification.id));
    insert_address(&mut item, &verification.address);
    item.insert("code_hash".into(), s(verification.code_hash.to_hex()));
    item.insert("attempts".into(), n(verification.attempts));
    item.insert("used".into(), b(verification.used));
    item.insert(TTL_ATTRIBUTE.into(), n(verification.expires_at));
    item
}

fn verification_token_item(token: &VerificationToken) -> Item {
    let mut item = key_of(verification_token_pk(&token.hash));
    insert_address(&mut item, &token.address);
    item.insert("used".into(), b(token.used));
    item.insert(TTL_ATTRIBUTE.into(), n(token.expires_at));
    item
}

fn sudo_item(token: &SudoToken) -> Item {
    let mut item = key_of(sudo_pk(&token.hash));
    item.insert("user_id".into(), s(token.user_id.as_str()));
    item.insert("session_id".into(), s(token.session_id.as_str()));
    item.insert(TTL_ATTRIBUTE.into(), n(token.expires_at));
    item.insert("epoch".into(), n(token.epoch));
    item
}

fn provider_token_item(token: &ProviderToken) -> Item {
    let mut item = identity_attributes(&token.identity, &token.profile);
    item.insert(PARTITION_KEY.into(), s(provider_token_pk(&token.hash)));
    item.insert("used".into(), b(token.used));
    item.insert(TTL_ATTRIBUTE.into(), n(token.expires_at));
    item
}

// ---------------------------------------------------------------------------------------------
// Decoding: a malformed item is a dependency failure, never a panic.

struct Record<'a> {
    item: &'a Item,
    kind: &'static str,
}

impl<'a> Record<'a> {
    fn new(item: &'a Item, kind: &'static str) -> Self {
        Self { item, kind }
    }

    fn malformed(&self, attribute: &str) -> DependencyError {
        DependencyError(format!(
            "malformed {} item in DynamoDB: attribute `{attribute}`",
            self.kind
        ))
    }

    fn value(&self, attribute: &str) -> Option<&'a AttributeValue> {
        match self.item.get(attribute) {
            None | Some(AttributeValue::Null(_)) => None,
            Some(value) => Some(value),
        }
    }

    fn opt_str(&self, attribute: &str) -> Result<Option<&'a str>, DependencyError> {
        match self.value(attribute) {
            None => Ok(None),
            Some(AttributeValue::S(value)) => Ok(Some(value.as_str())),
            Some(_) => Err(self.malformed(attribute)),
        }
    }

    fn str(&self, attribute: &str) -> Result<&'a str, DependencyError> {
        self.opt_str(attribute)?
            .ok_or_else(|| self.malformed(attribute))
    }

    fn opt_parse<T, E>(
        &self,
        attribute: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<Option<T>, DependencyError> {
        self.opt_str(attribute)?
            .map(|raw| parse(raw).map_err(|_| self.malformed(attribute)))
            .transpose()
    }

    fn parse<T, E>(
        &self,
        attribute: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, DependencyError> {
        self.opt_parse(attribute, parse)?
            .ok_or_else(|| self.malformed(attribute))
    }

    fn opt_number<T: FromStr>(&self, attribute: &str) -> Result<Option<T>, DependencyError> {
        match self.value(attribute) {
            None => Ok(None),
            Some(AttributeValue::N(raw)) => {
                raw.parse().map(Some).map_err(|_| self.malformed(attribute))
            }
            Some(_) => Err(self.malformed(attribute)),
        }
    }

    fn number<T: FromStr>(&self, attribute: &str) -> Result<T, DependencyError> {
        self.opt_number(attribute)?
            .ok_or_else(|| self.malformed(attribute))
    }

    fn bool(&self, attribute: &str) -> Result<bool, DependencyError> {
        match self.value(attribute) {
            Some(AttributeValue::Bool(value)) => Ok(*value),
            _ => Err(self.malformed(attribute)),
        }
    }

    /// What follows `prefix` in the partition key.
    fn key_suffix(&self, prefix: &str) -> Result<&'a str, DependencyError> {
        self.str(PARTITION_KEY)?
            .strip_prefix(prefix)
            .ok_or_else(|| self.malformed(PARTITION_KEY))
    }

    fn hash_in_key(&self, prefix: &str) -> Result<SecretHash, DependencyError> {
        SecretHash::from_hex(self.key_suffix(prefix)?).ok_or_else(|| self.malformed(PARTITION_KEY))
    }

    fn hash(&self, attribute: &str) -> Result<SecretHash, DependencyError> {
        SecretHash::from_hex(self.str(attribute)?).ok_or_else(|| self.malformed(attribute))
    }

    fn address(&self) -> Result<Address, DependencyError> {
        let kind = AddressKind::parse(self.str("address_kind")?)
            .ok_or_else(|| self.malformed("address_kind"))?;
        self.parse("address", |raw| Address::from_stored(kind, raw))
    }

    fn identity(&self) -> Result<(ProviderIdentity, ProviderProfile), DependencyError> {
        let identity = ProviderIdentity {
            provider: self.parse("provider", ProviderId::parse)?,
            subject: self.str("subject")?.to_string(),
        };
        let profile = ProviderProfile {
            name: self.opt_str("name")?.map(str::to_string),
            picture: self.opt_str("picture")?.map(str::to_string),
        };
        Ok((identity, profile))
    }
}

fn user_from(item: &Item) -> Result<User, DependencyError> {
    let record = Record::new(item, "user");
    let providers = match record.value("providers") {
        None => Vec::new(),
        Some(AttributeValue::L(links)) => links
            .iter()
            .map(|link| match link {
                AttributeValue::M(map) => Record::new(map, "user provider")
                    .identity()
                    .map(|(identity, profile)| ProviderLink { identity, profile }),
                _ => Err(record.malformed("providers")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(record.malformed("providers")),
    };
    Ok(User {
        id: UserId::parse(record.key_suffix("USER#")?)
            .map_err(|_| record.malformed(PARTITION_KEY))?,
        username: record.opt_parse("username", Username::parse)?,
        email: record.opt_parse("email", Email::parse)?,
        phone: record.opt_parse("phone", PhoneNumber::from_e164)?,
        name: record.opt_parse("name", DisplayName::parse)?,
        password_hash: record.opt_str("password_hash")?.map(str::to_string),
        providers,
        created_at: record.number("created_at")?,
        updated_at: record.number("updated_at")?,
        version: record.number("version")?,
        // Items stored before the epoch existed are of the first one.
        session_epoch: record.opt_number("session_epoch")?.unwrap_or(0),
    })
}

fn login_from(item: &Item) -> Result<Login, DependencyError> {
    let record = Record::new(item, "login");
    Ok(Login {
        user_id: record.parse("user_id", UserId::parse)?,
        password_hash: record.opt_str("password_hash")?.map(str::to_string),
        session_epoch: record.opt_number("session_epoch")?.unwrap_or(0),
    })
}

fn session_from(item: &Item) -> Result<Session, DependencyError> {
    let record = Record::new(item, "session");
    let created_at = record.opt_number("created_at")?.unwrap_or(0);
    Ok(Session {
        id: SessionId::parse(record.key_suffix("SESSION#")?)
            .map_err(|_| record.malformed(PARTITION_KEY))?,
        user_id: record.parse("user_id", UserId::parse)?,
        refresh_hash: record.hash("refresh_hash")?,
        expires_at: record.number(TTL_ATTRIBUTE)?,
        revoked: record.bool("revoked")?,
        // Sessions stored before these attributes existed read as of unknown age (0).
        created_at,
        refreshed_at: record.opt_number("refreshed_at")?.unwrap_or(created_at),
        generation: record.opt_number("generation")?.unwrap_or(0),
        authenticated_at: record.opt_number("authenticated_at")?.unwrap_or(created_at),
        epoch: record.opt_number("epoch")?.unwrap_or(0),
    })
}

fn verification_from(item: &Item) -> Result<Verification, DependencyError> {
    let record = Record::new(item, "verification");
    Ok(Verification {
        id: VerificationId::parse(record.key_suffix("VERIF#")?)
            .map_err(|_| record.malformed(PARTITION_KEY))?,
        address: record.address()?,
        code_hash: record.hash("code_hash")?,
        attempts: record.number("attempts")?,
        expires_at: record.number(TTL_ATTRIBUTE)?,
        used: record.bool("used")?,
    })
}

fn verification_token_from(item: &Item) -> Result<VerificationToken, DependencyError> {
    let record = Record::new(item, "verification token");
    Ok(VerificationToken {
        hash: record.hash_in_key("VTOKEN#")?,
        address: record.address()?,
        expires_at: record.number(TTL_ATTRIBUTE)?,
        used: record.bool("used")?,
    })
}

fn sudo_from(item: &Item) -> Result<SudoToken, DependencyError> {
    let record = Record::new(item, "sudo token");
    Ok(SudoToken {
        hash: record.hash_in_key("SUDO#")?,
        user_id: record.parse("user_id", UserId::parse)?,
        session_id: record.parse("session_id", SessionId::parse)?,
        expires_at: record.number(TTL_ATTRIBUTE)?,
        epoch: record.opt_number("epoch")?.unwrap_or(0),
    })
}

fn provider_token_from(item: &Item) -> Result<ProviderToken, DependencyError> {
    let record = Record::new(item, "provider token");
    let (identity, profile) = record.identity()?;
    Ok(ProviderToken {
        hash: record.hash_in_key("PTOKEN#")?,
        identity,
        profile,
        expires_at: record.number(TTL_ATTRIBUTE)?,
        used: record.bool("used")?,
    })
}

// ---------------------------------------------------------------------------------------------
// The store

/// What each item of the `apply` transaction stands for, to map cancellation reasons back.
enum Part {
    User,
    Reserve(LoginKey),
    /// A login key the account keeps, rewritten because the password hash it repeats changed.
    Refresh,
    Release,
    Sudo,
    Spend,
    Session,
    /// The session a password change keeps, moved to the new epoch.
    KeptSession,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table when it is missing (on-demand billing, hash key `pk`), waits until it
    /// is active and turns TTL on for `expires_at`. For the local server and tests; deployments
    /// create the table from the SAM template.
    pub async fn ensure_table(&self) -> Result<(), DependencyError> {
        let mut status = match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(out) => out.table.and_then(|t| t.table_status),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                self.create_table().await?
            }
            Err(err) => return Err(sdk_error("DescribeTable", &err)),
        };
        let mut polls = 0;
        while !matches!(status, Some(TableStatus::Active) | None) {
            if polls >= 120 {
                return Err(DependencyError(format!(
                    "DynamoDB table {} did not become active",
                    self.table
                )));
            }
            polls += 1;
            tokio::time::sleep(Duration::from_millis(500)).await;
            status = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|err| sdk_error("DescribeTable", &err))?
                .table
                .and_then(|t| t.table_status);
        }
        self.ensure_ttl().await
    }

    async fn create_table(&self) -> Result<Option<TableStatus>, DependencyError> {
        let op = "CreateTable";
        let result = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(PARTITION_KEY)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(|e| build_error(op, e))?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(PARTITION_KEY)
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(|e| build_error(op, e))?,
            )
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.table_description.and_then(|t| t.table_status)),
            // Someone else created it meanwhile: wait for it like for ours.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                Ok(Some(TableStatus::Creating))
            }
            Err(err) => Err(sdk_error(op, &err)),
        }
    }

    async fn ensure_ttl(&self) -> Result<(), DependencyError> {
        let described = self
            .client
            .describe_time_to_live()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|err| sdk_error("DescribeTimeToLive", &err))?;
        if let Some(ttl) = described.time_to_live_description {
            let on = matches!(
                ttl.time_to_live_status(),
                Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
            );
            match ttl.attribute_name() {
                Some(TTL_ATTRIBUTE) if on => return Ok(()),
                Some(other) if on => {
                    return Err(DependencyError(format!(
                        "DynamoDB table {} has TTL on `{other}`, not `{TTL_ATTRIBUTE}`",
                        self.table
                    )))
                }
                _ => {}
            }
        }
        let spec = TimeToLiveSpecification::builder()
            .attribute_name(TTL_ATTRIBUTE)
            .enabled(true)
            .build()
            .map_err(|e| build_error("UpdateTimeToLive", e))?;
        match self
            .client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(spec)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // A concurrent `ensure_table` got there first.
            Err(err)
                if err.code() == Some("ValidationException")
                    && err.message().is_some_and(|m| m.contains("already enabled")) =>
            {
                Ok(())
            }
            Err(err) => Err(sdk_error("UpdateTimeToLive", &err)),
        }
    }

    async fn get(&self, op: &'static str, pk: String) -> Result<Option<Item>, DependencyError> {
        self.client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_of(pk)))
            .consistent_read(true)
            .send()
            .await
            .map(|out| out.item)
            .map_err(|err| sdk_error(op, &err))
    }

    async fn put(&self, op: &'static str, item: Item) -> Result<(), DependencyError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map(drop)
            .map_err(|err| sdk_error(op, &err))
    }

    /// How long a read that settles an ambiguous write may take: two attempts (it matters: it
    /// tells a refresh token rotated from one that was not), well short of a whole call.
    fn settle_budget(&self) -> Duration {
        self.client
            .config()
            .timeout_config()
            .and_then(|timeouts| timeouts.operation_attempt_timeout())
            .unwrap_or(Duration::from_secs(1))
            .saturating_mul(2)
    }

    /// Reads an item to learn whether a write whose outcome is unknown took effect; `None`
    /// when that read fails too.
    async fn settle(&self, pk: String) -> Option<Option<Item>> {
        match tokio::time::timeout(self.settle_budget(), self.get("GetItem settle", pk)).await {
            Ok(Ok(item)) => Some(item),
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "the outcome of a DynamoDB write could not be read");
                None
            }
            Err(_) => {
                tracing::warn!("reading the outcome of a DynamoDB write timed out");
                None
            }
        }
    }

    /// Whether an item exists, for a write whose outcome is unknown; `None` when unknown still.
    async fn settled_exists(&self, pk: String) -> Option<bool> {
        self.settle(pk).await.map(|item| item.is_some())
    }

    /// Whether `change` is in the table: the user item is exactly its `after` state and the
    /// token it spends is spent. `None` when that cannot be read.
    async fn change_landed(&self, change: &AccountChange) -> Option<bool> {
        let Some(item) = self.settle(user_pk(&change.after.id)).await? else {
            return Some(false);
        };
        let Ok(stored) = user_from(&item) else {
            return Some(false);
        };
        if user_item(&stored) != user_item(&change.after) {
            return Some(false);
        }
        let token_pk = match &change.spend {
            None => return Some(true),
            Some(Spend::Verification { hash, .. }) => verification_token_pk(hash),
            Some(Spend::Provider { hash, .. }) => provider_token_pk(hash),
        };
        let token = self.settle(token_pk).await?;
        Some(
            token
                .as_ref()
                .and_then(|item| Record::new(item, "token").bool("used").ok())
                == Some(true),
        )
    }

    /// The answer of a transaction that spends something (its first item) and stores the fresh
    /// token or session `earned` it earns: true when it committed, false when a condition
    /// failed. A failed condition or a failed call is checked against `earned`: an earlier
    /// attempt whose answer was lost may have committed it.
    async fn settle_spend(
        &self,
        op: &str,
        outcome: Result<Result<(), Vec<String>>, DependencyError>,
        earned: String,
    ) -> Result<bool, DependencyError> {
        match outcome {
            Ok(Ok(())) => Ok(true),
            Ok(Err(codes)) if codes.iter().any(|code| code == CONDITION_FAILED) => {
                self.settled_exists(earned).await.ok_or_else(|| {
                    DependencyError(format!(
                        "DynamoDB {op}: the spend failed, and whether by this call is unknown"
                    ))
                })
            }
            Ok(Err(codes)) => Err(DependencyError(format!(
                "DynamoDB {op} cancelled: [{}]",
                codes.join(", ")
            ))),
            Err(err) => match self.settled_exists(earned).await {
                Some(true) => Ok(true),
                _ => Err(err),
            },
        }
    }

    /// Runs one transaction. `Ok(Err(codes))`: cancelled because a condition failed, with the
    /// cancellation reason code of every item, by index. Cancellations for conflicts with other
    /// transactions or throttling are retried a few times.
    async fn transact(
        &self,
        op: &'static str,
        items: Vec<TransactWriteItem>,
    ) -> Result<Result<(), Vec<String>>, DependencyError> {
        let count = items.len();
        let mut attempt = 0;
        loop {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(Ok(())),
                Err(err) => err,
            };
            let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
                err.as_service_error()
            else {
                return Err(sdk_error(op, &err));
            };
            let codes: Vec<String> = cancelled
                .cancellation_reasons()
                .iter()
                .map(|reason| reason.code().unwrap_or("None").to_string())
                .collect();
            if codes.len() == count && codes.iter().any(|code| code == CONDITION_FAILED) {
                return Ok(Err(codes));
            }
            let transient = !codes.is_empty()
                && codes
                    .iter()
                    .all(|code| TRANSIENT_REASONS.contains(&code.as_str()));
            attempt += 1;
            if !transient || attempt >= MAX_ATTEMPTS {
                return Err(DependencyError(format!(
                    "DynamoDB {op} cancelled after {attempt} attempt(s): [{}]",
                    codes.join(", ")
                )));
            }
            backoff(attempt).await;
        }
    }

    fn put_part(
        &self,
        item: Item,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<TransactWriteItem, DependencyError> {
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition);
        for (placeholder, name) in names {
            put = put.expression_attribute_names(*placeholder, *name);
        }
        for (placeholder, value) in values {
            put = put.expression_attribute_values(placeholder, value);
        }
        let put = put
            .build()
            .map_err(|e| build_error("TransactWriteItems", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn plain_put_part(&self, item: Item) -> Result<TransactWriteItem, DependencyError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .map_err(|e| build_error("TransactWriteItems", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn update_part(
        &self,
        pk: String,
        update: &str,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<TransactWriteItem, DependencyError> {
        let mut builder = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_of(pk)))
            .update_expression(update)
            .condition_expression(condition);
        for (placeholder, name) in names {
            builder = builder.expression_attribute_names(*placeholder, *name);
        }
        for (placeholder, value) in values {
            builder = builder.expression_attribute_values(placeholder, value);
        }
        let update = builder
            .build()
            .map_err(|e| build_error("TransactWriteItems", e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The update that spends a token, valid only while it is unused, alive and for exactly
    /// the spend's address or identity.
    fn spend_part(
        &self,
        spend: &Spend,
        now: UnixTime,
    ) -> Result<TransactWriteItem, DependencyError> {
        let common = "attribute_exists(#pk) AND #used = :false AND #expires_at > :now";
        match spend {
            Spend::Verification { hash, address } => self.update_part(
                verification_token_pk(hash),
                "SET #used = :true",
                &format!("{common} AND #address_kind = :address_kind AND #address = :address"),
                &[
                    ("#pk", PARTITION_KEY),
                    ("#used", "used"),
                    ("#expires_at", TTL_ATTRIBUTE),
                    ("#address_kind", "address_kind"),
                    ("#address", "address"),
                ],
                vec![
                    (":true", b(true)),
                    (":false", b(false)),
                    (":now", n(now)),
                    (":address_kind", s(address.kind().as_str())),
                    (":address", s(address.stored())),
                ],
            ),
            Spend::Provider { hash, identity } => self.update_part(
                provider_token_pk(hash),
                "SET #used = :true",
                &format!("{common} AND #provider = :provider AND #subject = :subject"),
                &[
                    ("#pk", PARTITION_KEY),
                    ("#used", "used"),
                    ("#expires_at", TTL_ATTRIBUTE),
                    ("#provider", "provider"),
                    ("#subject", "subject"),
                ],
                vec![
                    (":true", b(true)),
                    (":false", b(false)),
                    (":now", n(now)),
                    (":provider", s(identity.provider.as_str())),
                    (":subject", s(identity.subject.as_str())),
                ],
            ),
        }
    }

    /// Marks the sudo token's session as authenticated at `now`, provided it is alive.
    fn authenticated_part(
        &self,
        sudo: &SudoToken,
        now: UnixTime,
    ) -> Result<TransactWriteItem, DependencyError> {
        self.update_part(
            session_pk(&sudo.session_id),
            "SET #authenticated_at = :now",
            "#user_id = :uid AND #revoked = :false",
            &[
                ("#authenticated_at", "authenticated_at"),
                ("#user_id", "user_id"),
                ("#revoked", "revoked"),
            ],
            vec![
                (":now", n(now)),
                (":uid", s(sudo.user_id.as_str())),
                (":false", b(false)),
            ],
        )
    }

    fn apply_parts(
        &self,
        change: &AccountChange,
    ) -> Result<Vec<(Part, TransactWriteItem)>, DependencyError> {
        let uid = s(change.after.id.as_str());
        let mut parts = Vec::new();

        let user = user_item(&change.after);
        let user_part = match &change.before {
            None => self.put_part(
                user,
                "attribute_not_exists(#pk)",
                &[("#pk", PARTITION_KEY)],
                vec![],
            )?,
            Some(before) => self.put_part(
                user,
                "#version = :version",
                &[("#version", "version")],
                vec![(":version", n(before.version))],
            )?,
        };
        parts.push((Part::User, user_part));

        let before_keys: Vec<LoginKey> = change.before.iter().flat_map(User::login_keys).collect();
        let before_storage: HashSet<String> =
            before_keys.iter().map(LoginKey::storage_key).collect();
        let after_keys = change.after.login_keys();
        let after_storage: HashSet<String> = after_keys.iter().map(LoginKey::storage_key).collect();

        let owned = "attribute_not_exists(#pk) OR #user_id = :uid";
        // The keys repeat the password hash and the session epoch.
        let password_changed = change.before.as_ref().is_some_and(|before| {
            before.password_hash != change.after.password_hash
                || before.session_epoch != change.after.session_epoch
        });
        let mut seen = HashSet::new();
        for key in after_keys {
            let storage_key = key.storage_key();
            let kept = before_storage.contains(&storage_key);
            if (kept && !password_changed) || !seen.insert(storage_key.clone()) {
                continue;
            }
            let part = self.put_part(
                login_item(&storage_key, &change.after),
                owned,
                &[("#pk", PARTITION_KEY), ("#user_id", "user_id")],
                vec![(":uid", uid.clone())],
            )?;
            let role = if kept {
                Part::Refresh
            } else {
                Part::Reserve(key)
            };
            parts.push((role, part));
        }
        for storage_key in &before_storage {
            if after_storage.contains(storage_key) {
                continue;
            }
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key_of(login_pk(storage_key))))
                .condition_expression(owned)
                .expression_attribute_names("#pk", PARTITION_KEY)
                .expression_attribute_names("#user_id", "user_id")
                .expression_attribute_values(":uid", uid.clone())
                .build()
                .map_err(|e| build_error("TransactWriteItems", e))?;
            parts.push((
                Part::Release,
                TransactWriteItem::builder().delete(delete).build(),
            ));
        }

        if let Some(sudo) = &change.sudo {
            let epoch = change.before.as_ref().map_or(0, |u| u.session_epoch);
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(key_of(sudo_pk(&sudo.hash))))
                .condition_expression(password::sudo_condition(epoch))
                .expression_attribute_names("#epoch", "epoch")
                .expression_attribute_values(":epoch", n(epoch))
                .expression_attribute_names("#user_id", "user_id")
                .expression_attribute_names("#session_id", "session_id")
                .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
                .expression_attribute_values(":sudo_uid", s(sudo.user_id.as_str()))
                .expression_attribute_values(":sid", s(sudo.session_id.as_str()))
                .expression_attribute_values(":now", n(change.now))
                .build()
                .map_err(|e| build_error("TransactWriteItems", e))?;
            parts.push((
                Part::Sudo,
                TransactWriteItem::builder().condition_check(check).build(),
            ));
        }

        if let Some(spend) = &change.spend {
            parts.push((Part::Spend, self.spend_part(spend, change.now)?));
        }
        if let Some(session) = &change.session {
            parts.push((Part::Session, self.plain_put_part(session_item(session))?));
        }
        Ok(parts)
    }
}

#[async_trait]
impl Directory for DynamoStore {
    /// Pages through a consistent `Scan` of the users and sessions.
    async fn accounts(&self, now: UnixTime) -> Result<Vec<AccountListing>, DependencyError> {
        let op = "Scan users and sessions";
        let (mut users, mut sessions) = (Vec::new(), Vec::new());
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .filter_expression("begins_with(#pk, :user) OR begins_with(#pk, :session)")
                .expression_attribute_names("#pk", PARTITION_KEY)
                .expression_attribute_values(":user", s("USER#"))
                .expression_attribute_values(":session", s("SESSION#"))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|err| sdk_error(op, &err))?;
            for item in page.items() {
                match item.get(PARTITION_KEY) {
                    Some(AttributeValue::S(pk)) if pk.starts_with("USER#") => {
                        users.push(user_from(item)?)
                    }
                    _ => sessions.push(session_from(item)?),
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(AccountListing::assemble(users, sessions, now))
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn user(&self, id: &UserId) -> Result<Option<User>, DependencyError> {
        self.get("GetItem user", user_pk(id))
            .await?
            .map(|item| user_from(&item))
            .transpose()
    }

    async fn login(&self, key: &LoginKey) -> Result<Option<Login>, DependencyError> {
        self.get("GetItem login", login_pk(&key.storage_key()))
            .await?
            .map(|item| login_from(&item))
            .transpose()
    }

    async fn apply(
        &self,
        change: &AccountChange,
    ) -> Result<Result<(), ChangeRejected>, DependencyError> {
        let (parts, items): (Vec<Part>, Vec<TransactWriteItem>) =
            self.apply_parts(change)?.into_iter().unzip();
        let codes = match self.transact("TransactWriteItems apply", items).await {
            Ok(Ok(())) => return Ok(Ok(())),
            Ok(Err(codes)) => codes,
            // Every attempt failed, but one whose answer was lost may have committed.
            Err(err) => {
                return match self.change_landed(change).await {
                    Some(true) => {
                        tracing::info!(
                            "a DynamoDB transaction committed although its answer was lost"
                        );
                        Ok(Ok(()))
                    }
                    _ => Err(err),
                }
            }
        };
        let failed = |wanted: fn(&Part) -> bool| {
            parts
                .iter()
                .zip(&codes)
                .any(|(part, code)| wanted(part) && code == CONDITION_FAILED)
        };
        // The embedded store's precedence: the version, the sudo token, the token, the keys.
        if failed(|p| matches!(p, Part::User)) {
            // An earlier attempt of this very call, whose answer was lost, moves the version
            // too: then the change is done.
            return match self.change_landed(change).await {
                Some(true) => Ok(Ok(())),
                Some(false) => Ok(Err(ChangeRejected::Stale)),
                None => Err(DependencyError(
                    "DynamoDB apply: the account changed, and whether by this change is unknown"
                        .to_string(),
                )),
            };
        }
        if failed(|p| matches!(p, Part::Sudo)) {
            return Ok(Err(ChangeRejected::Sudo));
        }
        if failed(|p| matches!(p, Part::Spend)) {
            return Ok(Err(ChangeRejected::Token));
        }
        let taken = parts
            .into_iter()
            .zip(&codes)
            .find_map(|(part, code)| match part {
                Part::Reserve(key) if code == CONDITION_FAILED => Some(key),
                _ => None,
            });
        if let Some(key) = taken {
            return Ok(Err(ChangeRejected::Taken(key)));
        }
        // Only a release or refresh failed: the account's record lists a key another account
        // holds.
        Err(DependencyError(
            "DynamoDB apply: a login key the account keeps or releases is held by another account"
                .to_string(),
        ))
    }

    async fn create_session(&self, session: &Session) -> Result<(), DependencyError> {
        self.put("PutItem session", session_item(session)).await
    }

    async fn session(&self, id: &SessionId) -> Result<Option<Session>, DependencyError> {
        self.get("GetItem session", session_pk(id))
            .await?
            .map(|item| session_from(&item))
            .transpose()
    }

    async fn session_and_user(
        &self,
        session: &SessionId,
        user: &UserId,
    ) -> Result<(Option<Session>, Option<User>), DependencyError> {
        let op = "BatchGetItem session and user";
        let session_key = session_pk(session);
        let user_key = user_pk(user);
        let mut keys = vec![key_of(session_key.clone()), key_of(user_key.clone())];
        let (mut found_session, mut found_user) = (None, None);
        // One round trip; more only when DynamoDB leaves keys unprocessed (throttling).
        for attempt in 0..MAX_ATTEMPTS {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(|e| build_error(op, e))?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|err| sdk_error(op, &err))?;
            let items = out
                .responses
                .and_then(|mut tables| tables.remove(&self.table))
                .unwrap_or_default();
            for item in &items {
                let pk = Record::new(item, "batch").str(PARTITION_KEY)?;
                if pk == session_key {
                    found_session = Some(session_from(item)?);
                } else if pk == user_key {
                    found_user = Some(user_from(item)?);
                }
            }
            keys = out
                .unprocessed_keys
                .and_then(|mut tables| tables.remove(&self.table))
                .map(|unprocessed| unprocessed.keys)
                .unwrap_or_default();
            if keys.is_empty() {
                return Ok((found_session, found_user));
            }
            backoff(attempt).await;
        }
        Err(DependencyError(format!(
            "DynamoDB {op}: keys left unprocessed"
        )))
    }

    async fn rotate_refresh_token(
        &self,
        id: &SessionId,
        current: &SecretHash,
        next: &SecretHash,
        generation: u32,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, DependencyError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(session_pk(id))))
            .update_expression(
                "SET #refresh_hash = :next, #expires_at = :expires_at, #refreshed_at = :now, #generation = :generation",
            )
            // `:next` too: a retry of this call after its first attempt took effect, or a
            // concurrent rotation of the same token (which derives the same `next`), must
            // succeed, not look like a retired token.
            .condition_expression(
                "#refresh_hash IN (:current, :next) AND #revoked = :false AND #expires_at > :now",
            )
            .expression_attribute_names("#refresh_hash", "refresh_hash")
            .expression_attribute_names("#refreshed_at", "refreshed_at")
            .expression_attribute_names("#generation", "generation")
            .expression_attribute_names("#revoked", "revoked")
            .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
            .expression_attribute_values(":next", s(next.to_hex()))
            .expression_attribute_values(":expires_at", n(expires_at))
            .expression_attribute_values(":generation", n(generation))
            .expression_attribute_values(":current", s(current.to_hex()))
            .expression_attribute_values(":false", b(false))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failure(&err) => Ok(false),
            Err(err) => {
                let err = sdk_error("UpdateItem rotate refresh token", &err);
                // Every attempt failed, but one whose answer was lost may have rotated it.
                let rotated = self
                    .settle(session_pk(id))
                    .await
                    .flatten()
                    .and_then(|item| session_from(&item).ok())
                    .is_some_and(|session| session.refresh_hash == *next && !session.revoked);
                if rotated {
                    Ok(true)
                } else {
                    Err(err)
                }
            }
        }
    }

    async fn revoke_session(&self, id: &SessionId) -> Result<(), DependencyError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(session_pk(id))))
            .update_expression("SET #revoked = :true")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#revoked", "revoked")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_values(":true", b(true))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if is_condition_failure(&err) => Ok(()),
            Err(err) => {
                let err = sdk_error("UpdateItem revoke session", &err);
                // Every attempt failed, but one whose answer was lost may have revoked it.
                let revoked = self
                    .settle(session_pk(id))
                    .await
                    .flatten()
                    .and_then(|item| session_from(&item).ok())
                    .is_some_and(|session| session.revoked);
                if revoked {
                    Ok(())
                } else {
                    Err(err)
                }
            }
        }
    }

    async fn acquire_cooldown(
        &self,
        key: &str,
        until: UnixTime,
        now: UnixTime,
    ) -> Result<LimitDecision, DependencyError> {
        let op = "PutItem cooldown";
        // Ours alone: a retry of a put that took effect finds its own holder and succeeds.
        let holder = hex::encode(crate::domain::random_bytes::<16>());
        for attempt in 0..MAX_ATTEMPTS {
            let mut item = key_of(cooldown_pk(key));
            item.insert(TTL_ATTRIBUTE.into(), n(until));
            item.insert("holder".into(), s(holder.as_str()));
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(
                    "attribute_not_exists(#pk) OR #expires_at <= :now OR #holder = :holder",
                )
                .expression_attribute_names("#pk", PARTITION_KEY)
                .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
                .expression_attribute_names("#holder", "holder")
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":holder", s(holder.as_str()))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(Ok(())),
                Err(err) if is_condition_failure(&err) => err,
                Err(err) => {
                    let err = sdk_error(op, &err);
                    // Every attempt failed, but one whose answer was lost may have taken it.
                    let ours = self
                        .settle(cooldown_pk(key))
                        .await
                        .flatten()
                        .is_some_and(|item| item.get("holder") == Some(&s(holder.as_str())));
                    return if ours { Ok(Ok(())) } else { Err(err) };
                }
            };
            let returned = err
                .as_service_error()
                .and_then(|e| match e {
                    aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(
                        failed,
                    ) => failed.item().cloned(),
                    _ => None,
                });
            let holder = match returned {
                Some(item) => Some(item),
                None => self.get("GetItem cooldown", cooldown_pk(key)).await?,
            };
            if let Some(holder) = holder {
                let busy_until: UnixTime =
                    Record::new(&holder, "cooldown").number(TTL_ATTRIBUTE)?;
                if busy_until > now {
                    return Ok(Err(busy_until));
                }
            }
            // The holder expired or vanished since the condition was evaluated: try again.
            backoff(attempt).await;
        }
        Ok(Err(until))
    }

    async fn release_cooldown(&self, key: &str, until: UnixTime) -> Result<(), DependencyError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_of(cooldown_pk(key))))
            .condition_expression("#expires_at = :until")
            .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
            .expression_attribute_values(":until", n(until))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Someone else's cooldown by now, or gone: not ours to release.
            Err(err) if is_condition_failure(&err) => Ok(()),
            Err(err) => Err(sdk_error("DeleteItem cooldown", &err)),
        }
    }

    async fn count_event(
        &self,
        key: &str,
        limit: u32,
        window_secs: i64,
        now: UnixTime,
    ) -> Result<CountDecision, DependencyError> {
        let remainder = now.checked_rem_euclid(window_secs).ok_or_else(|| {
            DependencyError("count_event: the window must not be zero".to_string())
        })?;
        let window_start = now - remainder;
        let window_end = window_start + window_secs;
        if limit == 0 {
            return Ok(Err(window_end));
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(counter_pk(key, window_start))))
            .update_expression("SET #expires_at = :end ADD #count :one")
            .condition_expression("attribute_not_exists(#pk) OR #count < :limit")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_names("#count", "count")
            .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
            .expression_attribute_values(":end", n(window_end))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(output) => {
                let count = output
                    .attributes()
                    .and_then(|a| a.get("count"))
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| {
                        DependencyError("UpdateItem count event: no count came back".to_string())
                    })?;
                Ok(Ok(count))
            }
            Err(err) if is_condition_failure(&err) => Ok(Err(window_end)),
            Err(err) => Err(sdk_error("UpdateItem count event", &err)),
        }
    }

    async fn uncount_event(
        &self,
        key: &str,
        window_secs: i64,
        counted_at: UnixTime,
    ) -> Result<(), DependencyError> {
        let window_start = counted_at - counted_at.rem_euclid(window_secs.max(1));
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(counter_pk(key, window_start))))
            .update_expression("ADD #count :minus_one")
            .condition_expression("#count > :zero")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":minus_one", n(-1))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Nothing left to take back in that window (or the window is gone).
            Err(err) if is_condition_failure(&err) => Ok(()),
            Err(err) => Err(sdk_error("UpdateItem uncount event", &err)),
        }
    }

    async fn put_verification(&self, verification: &Verification) -> Result<(), DependencyError> {
        self.put("PutItem verification", verification_item(verification))
            .await
    }

    async fn verification(
        &self,
        id: &VerificationId,
    ) -> Result<Option<Verification>, DependencyError> {
        self.get("GetItem verification", verification_pk(id))
            .await?
            .map(|item| verification_from(&item))
            .transpose()
    }

    async fn record_wrong_code(
        &self,
        id: &VerificationId,
        max_attempts: u32,
        now: UnixTime,
    ) -> Result<(), DependencyError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(verification_pk(id))))
            .update_expression("SET #attempts = #attempts + :one")
            .condition_expression("#used = :false AND #attempts < :max AND #expires_at > :now")
            .expression_attribute_names("#attempts", "attempts")
            .expression_attribute_names("#used", "used")
            .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":false", b(false))
            .expression_attribute_values(":max", n(max_attempts))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if is_condition_failure(&err) => Ok(()),
            Err(err) => Err(sdk_error("UpdateItem wrong code", &err)),
        }
    }

    async fn redeem_verification(
        &self,
        id: &VerificationId,
        max_attempts: u32,
        now: UnixTime,
        token: &VerificationToken,
    ) -> Result<bool, DependencyError> {
        let items = vec![
            self.update_part(
                verification_pk(id),
                "SET #used = :true",
                "#used = :false AND #attempts < :max AND #expires_at > :now",
                &[
                    ("#used", "used"),
                    ("#attempts", "attempts"),
                    ("#expires_at", TTL_ATTRIBUTE),
                ],
                vec![
                    (":true", b(true)),
                    (":false", b(false)),
                    (":max", n(max_attempts)),
                    (":now", n(now)),
                ],
            )?,
            self.plain_put_part(verification_token_item(token))?,
        ];
        let outcome = self
            .transact("TransactWriteItems redeem verification", items)
            .await;
        self.settle_spend(
            "redeem verification",
            outcome,
            verification_token_pk(&token.hash),
        )
        .await
    }

    async fn verification_token(
        &self,
        hash: &SecretHash,
    ) -> Result<Option<VerificationToken>, DependencyError> {
        self.get("GetItem verification token", verification_token_pk(hash))
            .await?
            .map(|item| verification_token_from(&item))
            .transpose()
    }

    async fn grant_sudo(&self, token: &SudoToken, now: UnixTime) -> Result<bool, DependencyError> {
        let items = vec![
            self.plain_put_part(sudo_item(token))?,
            self.authenticated_part(token, now)?,
        ];
        let outcome = self.transact("TransactWriteItems grant sudo", items).await;
        self.settle_spend("grant sudo", outcome, sudo_pk(&token.hash))
            .await
    }

    async fn exchange_for_sudo(
        &self,
        verification_token: &SecretHash,
        address: &Address,
        now: UnixTime,
        sudo: &SudoToken,
    ) -> Result<bool, DependencyError> {
        let spend = Spend::Verification {
            hash: verification_token.clone(),
            address: address.clone(),
        };
        let items = vec![
            self.spend_part(&spend, now)?,
            self.plain_put_part(sudo_item(sudo))?,
            self.authenticated_part(sudo, now)?,
        ];
        let outcome = self
            .transact("TransactWriteItems exchange for sudo", items)
            .await;
        self.settle_spend("exchange for sudo", outcome, sudo_pk(&sudo.hash))
            .await
    }

    async fn sudo_token(&self, hash: &SecretHash) -> Result<Option<SudoToken>, DependencyError> {
        self.get("GetItem sudo token", sudo_pk(hash))
            .await?
            .map(|item| sudo_from(&item))
            .transpose()
    }

    async fn put_provider_token(&self, token: &ProviderToken) -> Result<(), DependencyError> {
        self.put("PutItem provider token", provider_token_item(token))
            .await
    }

    async fn provider_token(
        &self,
        hash: &SecretHash,
    ) -> Result<Option<ProviderToken>, DependencyError> {
        self.get("GetItem provider token", provider_token_pk(hash))
            .await?
            .map(|item| provider_token_from(&item))
            .transpose()
    }

    async fn exchange_for_session(
        &self,
        provider_token: &SecretHash,
        identity: &ProviderIdentity,
        now: UnixTime,
        session: &Session,
    ) -> Result<bool, DependencyError> {
        let spend = Spend::Provider {
            hash: provider_token.clone(),
            identity: identity.clone(),
        };
        let still_bound = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key_of(login_pk(
                &LoginKey::Provider(identity.clone()).storage_key(),
            ))))
            .condition_expression("#user_id = :uid")
            .expression_attribute_names("#user_id", "user_id")
            .expression_attribute_values(":uid", s(session.user_id.as_str()))
            .build()
            .map_err(|e| build_error("TransactWriteItems", e))?;
        let items = vec![
            self.spend_part(&spend, now)?,
            self.plain_put_part(session_item(session))?,
            TransactWriteItem::builder()
                .condition_check(still_bound)
                .build(),
        ];
        let outcome = self
            .transact("TransactWriteItems exchange for session", items)
            .await;
        self.settle_spend("exchange for session", outcome, session_pk(&session.id))
            .await
    }

    async fn apply_keeping_session(
        &self,
        change: &AccountChange,
        session: &SessionId,
    ) -> Result<Result<(), ChangeRejected>, DependencyError> {
        self.apply_keeping(change, session).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        User {
            id: UserId::generate(),
            username: Some(Username::parse("alice").unwrap()),
            email: Some(Email::parse("alice@example.com").unwrap()),
            phone: Some(PhoneNumber::parse("+86 13800000000", "86").unwrap()),
            name: Some(DisplayName::parse("Alice").unwrap()),
            password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
            providers: vec![ProviderLink {
                identity: ProviderIdentity {
                    provider: ProviderId::WxOpen,
                    subject: "o6_bmasdasdsad6_2sgVt7hMZOPfL".into(),
                },
                profile: ProviderProfile {
                    name: Some("阿丽".into()),
                    picture: None,
                },
            }],
            created_at: 1_700_000_000,
            updated_at: 1_700_000_100,
            version: 3,
            session_epoch: 2,
        }
    }

    #[test]
    fn users_round_trip_through_items() {
        let user = user();
        let back = user_from(&user_item(&user)).unwrap();
        assert_eq!(back.id, user.id);
        assert_eq!(back.username, user.username);
        assert_eq!(back.email, user.email);
        assert_eq!(back.phone, user.phone);
        assert_eq!(back.name, user.name);
        assert_eq!(back.password_hash, user.password_hash);
        assert_eq!(back.providers, user.providers);
        assert_eq!(
            (back.created_at, back.updated_at, back.version),
            (1_700_000_000, 1_700_000_100, 3)
        );
        assert_eq!(back.session_epoch, 2);
    }

    #[test]
    fn malformed_items_are_dependency_errors_naming_only_the_attribute() {
        let mut item = user_item(&user());
        item.insert("email".into(), s("not an email"));
        let err = user_from(&item).unwrap_err();
        assert!(err.0.contains("`email`"), "{err}");
        assert!(!err.0.contains("not an email"), "{err}");

        let mut item = user_item(&user());
        item.insert("version".into(), s("3"));
        assert!(user_from(&item).is_err());

        let mut item = user_item(&user());
        item.insert("providers".into(), AttributeValue::L(vec![s("x")]));
        assert!(user_from(&item).is_err());

        let item = key_of("SESSION#nope".into());
        assert!(session_from(&item).is_err());
    }
}
