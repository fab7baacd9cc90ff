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
//! | `USER#<user id>`                  | `username`?, `email`? (normalised), `phone`? (E.164), `name`?, `password_hash`?, `providers` (list of maps `{provider, subject, app_subject?, name?, picture?}`; `app_subject` absent: the same as `subject`), `picture`? (https URL), `gender`? (`MALE`/`FEMALE`), `created_at`, `updated_at`, `version`, `session_epoch`? (absent: 0), `expires_at`? (an anonymous account's end) |
//! | `LOGIN#<LoginKey::storage_key()>` | `user_id`, `password_hash`?, `session_epoch`?: reserves a username, email, phone or provider identity (two keys each: `provider#wx_open#<unionid, else openid>` and `provider-app#wx_open#<openid>`) for one account; the account's password hash and session epoch are repeated here (same transaction) so that sign-in is one read |
//! | `SESSION#<session id>`            | `user_id`, `refresh_hash` (hex), `revoked`, `expires_at`, `created_at`, `refreshed_at`, `generation`, `authenticated_at`, `epoch`? (absent: 0; alive only while it is the user's `session_epoch`) |
//! | `VERIF#<verification id>`         | `address_kind`, `address`, `code_hash` (hex), `attempts`, `used`, `expires_at`, `requested_by`? (user id) |
//! | `VADDR#<user id>#<LoginKey::storage_key()>` | `used`, `expires_at`: the account verified a code for that address (`records.rs`) |
//! | `VTOKEN#<hash hex>`               | `address_kind`, `address`, `used`, `expires_at` (verification token) |
//! | `SUDO#<hash hex>`                 | `user_id`, `session_id`, `expires_at`, `epoch`? (absent: 0)    |
//! | `PTOKEN#<hash hex>`               | `provider`, `subject`, `app_subject`?, `name`?, `picture`?, `used`, `expires_at` (provider token) |
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
//! * `redeem_verification`, `grant_sudo` and `exchange_for_session` are one transaction
//!   each: spend, and store the token or session the spend earns (for a session, with a
//!   `ConditionCheck` that the address or provider identity still names its account; for sudo,
//!   with an `Update` marking the session authenticated, conditional on it being alive, and
//!   the spend only when sudo is by a verification token). `apply` with a kept session adds
//!   that session's `Update` to the account's transaction.
//! * `delete_account` is one transaction of conditional `Delete`s (see `deletion.rs`).
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
//!
//! # Code layout
//!
//! This file holds the store and what every kind of item shares: errors, reads, and settling
//! writes whose outcome is unknown. `item` encodes and decodes attributes, `transact` builds
//! and runs transactions, `table` creates the table. The `Store` methods live with the items
//! they write: `accounts` (users and login keys), `sessions` (sessions and sudo tokens),
//! `codes` (verifications, verification tokens and provider tokens) and `limits` (cooldowns
//! and counters); the `impl Store` here only hands each call to its module.

mod accounts;
mod codes;
mod deletion;
mod item;
mod keys;
mod limits;
mod records;
mod sessions;
mod table;
mod transact;

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{BuildError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::Client;

use crate::domain::{
    LoginKey, ProviderToken, SecretHash, Session, SessionId, SudoToken, UnixTime, User, UserId,
    Verification, VerificationId, VerificationToken, VerifiedAddress,
};
use crate::ports::{
    AccountChange, AccountDeletion, ChangeRejected, CountDecision, DependencyError, LimitDecision,
    Login, Spend, Store,
};

use item::{key_of, Item};

/// The hash key of the table.
pub const PARTITION_KEY: &str = "pk";
/// The TTL attribute of the table.
pub const TTL_ATTRIBUTE: &str = "expires_at";

const CONDITION_FAILED: &str = "ConditionalCheckFailed";
const MAX_ATTEMPTS: u32 = 4;

/// The `Store` over one DynamoDB table; see the module documentation for the layout.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
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

    /// One item by key, decoded; `None` when there is none.
    async fn read<T>(
        &self,
        op: &'static str,
        pk: String,
        decode: fn(&Item) -> Result<T, DependencyError>,
    ) -> Result<Option<T>, DependencyError> {
        self.get(op, pk)
            .await?
            .map(|item| decode(&item))
            .transpose()
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
}

#[async_trait]
impl Store for DynamoStore {
    async fn user(&self, id: &UserId) -> Result<Option<User>, DependencyError> {
        accounts::user(self, id).await
    }

    async fn login(&self, key: &LoginKey) -> Result<Option<Login>, DependencyError> {
        accounts::login(self, key).await
    }

    async fn apply(
        &self,
        change: &AccountChange,
    ) -> Result<Result<(), ChangeRejected>, DependencyError> {
        accounts::apply(self, change).await
    }

    async fn create_session(&self, session: &Session) -> Result<(), DependencyError> {
        sessions::create_session(self, session).await
    }

    async fn session(&self, id: &SessionId) -> Result<Option<Session>, DependencyError> {
        sessions::session(self, id).await
    }

    async fn session_and_user(
        &self,
        session: &SessionId,
        user: &UserId,
    ) -> Result<(Option<Session>, Option<User>), DependencyError> {
        sessions::session_and_user(self, session, user).await
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
        sessions::rotate_refresh_token(self, id, current, next, generation, expires_at, now).await
    }

    async fn revoke_session(&self, id: &SessionId) -> Result<(), DependencyError> {
        sessions::revoke_session(self, id).await
    }

    async fn acquire_cooldown(
        &self,
        key: &str,
        until: UnixTime,
        now: UnixTime,
    ) -> Result<LimitDecision, DependencyError> {
        limits::acquire_cooldown(self, key, until, now).await
    }

    async fn release_cooldown(&self, key: &str, until: UnixTime) -> Result<(), DependencyError> {
        limits::release_cooldown(self, key, until).await
    }

    async fn count_event(
        &self,
        key: &str,
        limit: u32,
        window_secs: i64,
        now: UnixTime,
    ) -> Result<CountDecision, DependencyError> {
        limits::count_event(self, key, limit, window_secs, now).await
    }

    async fn uncount_event(
        &self,
        key: &str,
        window_secs: i64,
        counted_at: UnixTime,
    ) -> Result<(), DependencyError> {
        limits::uncount_event(self, key, window_secs, counted_at).await
    }

    async fn put_verification(&self, verification: &Verification) -> Result<(), DependencyError> {
        codes::put_verification(self, verification).await
    }

    async fn verification(
        &self,
        id: &VerificationId,
    ) -> Result<Option<Verification>, DependencyError> {
        codes::verification(self, id).await
    }

    async fn record_wrong_code(
        &self,
        id: &VerificationId,
        max_attempts: u32,
        now: UnixTime,
    ) -> Result<(), DependencyError> {
        codes::record_wrong_code(self, id, max_attempts, now).await
    }

    async fn redeem_verification(
        &self,
        id: &VerificationId,
        max_attempts: u32,
        now: UnixTime,
        token: &VerificationToken,
        remembered: Option<&VerifiedAddress>,
    ) -> Result<bool, DependencyError> {
        codes::redeem_verification(self, id, max_attempts, now, token, remembered).await
    }

    async fn verification_token(
        &self,
        hash: &SecretHash,
    ) -> Result<Option<VerificationToken>, DependencyError> {
        codes::verification_token(self, hash).await
    }

    async fn grant_sudo(
        &self,
        token: &SudoToken,
        proof: Option<&Spend>,
        now: UnixTime,
    ) -> Result<bool, DependencyError> {
        sessions::grant_sudo(self, token, proof, now).await
    }

    async fn sudo_token(&self, hash: &SecretHash) -> Result<Option<SudoToken>, DependencyError> {
        sessions::sudo_token(self, hash).await
    }

    async fn put_provider_token(&self, token: &ProviderToken) -> Result<(), DependencyError> {
        codes::put_provider_token(self, token).await
    }

    async fn provider_token(
        &self,
        hash: &SecretHash,
    ) -> Result<Option<ProviderToken>, DependencyError> {
        codes::provider_token(self, hash).await
    }

    async fn exchange_for_session(
        &self,
        proof: &Spend,
        bound_by: &LoginKey,
        now: UnixTime,
        session: &Session,
    ) -> Result<bool, DependencyError> {
        codes::exchange_for_session(self, proof, bound_by, now, session).await
    }

    async fn delete_account(
        &self,
        deletion: &AccountDeletion,
    ) -> Result<Result<(), ChangeRejected>, DependencyError> {
        self.delete_account_items(deletion).await
    }
}
