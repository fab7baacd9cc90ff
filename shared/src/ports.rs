//! The traits the operations need. Adapters implement them; tests and binaries choose which.

use async_trait::async_trait;

use crate::domain::{
    Address, LoginKey, ProviderId, ProviderIdentity, ProviderProfile, ProviderToken, SecretHash,
    Session, SessionId, SudoToken, UnixTime, User, UserId, Verification, VerificationCode,
    VerificationId, VerificationToken, VerifiedAddress,
};

/// A dependency failed; the operation answers `unavailable`. The text is for logs only.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DependencyError(pub String);

/// A sudo token an account change requires to be alive, this session's and of the account's
/// current session epoch (the one of `AccountChange::before`).
#[derive(Clone, Debug)]
pub struct SudoCheck {
    pub hash: SecretHash,
    pub user_id: UserId,
    pub session_id: SessionId,
}

/// A single-use token an account change spends.
#[derive(Clone, Debug)]
pub enum Spend {
    /// A verification token, which must be for exactly this address.
    Verification { hash: SecretHash, address: Address },
    /// A provider token, which must be for exactly this identity.
    Provider {
        hash: SecretHash,
        identity: ProviderIdentity,
    },
    /// The memory that this account verified a code for exactly this address, alive and
    /// unspent (see `VerifiedAddress`).
    VerifiedAddress { user_id: UserId, address: Address },
}

/// One atomic change of an account: the user item moves from `before` to `after` (created when
/// `before` is `None`), login keys the account gains are reserved, keys it loses are released,
/// the sudo token is checked, the token is spent, the session (of a sign-up) is stored and the
/// kept session moves to the account's new epoch. All of it happens, or none of it.
///
/// A username the account gives up does not sign in any more, but stays reserved for it
/// until `username_held_until`: no other account takes it before then (`Taken`), and this
/// one may take it back.
#[derive(Clone, Debug)]
pub struct AccountChange {
    pub before: Option<User>,
    pub after: User,
    pub sudo: Option<SudoCheck>,
    pub spend: Option<Spend>,
    pub session: Option<Session>,
    /// The caller's session, moved to `after.session_epoch` so that it outlives the epoch a
    /// password change ends; `ChangeRejected::Sudo` when it is gone, revoked, expired or
    /// another account's.
    pub keep_session: Option<SessionId>,
    pub now: UnixTime,
    pub username_held_until: UnixTime,
}

impl Spend {
    /// The logins the spent token proves: its address, or both of the provider's names of
    /// the person.
    pub fn login_keys(&self) -> Vec<LoginKey> {
        match self {
            Spend::Verification { address, .. } | Spend::VerifiedAddress { address, .. } => {
                vec![LoginKey::Address(address.clone())]
            }
            Spend::Provider { identity, .. } => vec![identity.subject_key(), identity.app_key()],
        }
    }
}

impl AccountChange {
    /// Whether it spends the memory of an address verified by another account than the one
    /// it changes: a memory lets only its own account bind the address, so stores reject it
    /// as an invalid token.
    pub fn spends_another_accounts_memory(&self) -> bool {
        matches!(&self.spend, Some(Spend::VerifiedAddress { user_id, .. }) if user_id != &self.after.id)
    }
}

/// Why an account change did not happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeRejected {
    /// The sudo token is unknown, expired, another session's or of an ended session epoch.
    Sudo,
    /// The token to spend is unknown, expired, used, or for another address or identity.
    Token,
    /// Another account holds this login key.
    Taken(LoginKey),
    /// The account changed since it was read (or, on creation, already exists).
    Stale,
}

/// A login key's holder, as sign-in needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    pub user_id: UserId,
    pub password_hash: Option<String>,
    /// The account's `session_epoch`, repeated like the hash: a sign-in's session needs it.
    pub session_epoch: u64,
}

/// The answer of a limit: go ahead, or wait until the given time.
pub type LimitDecision = Result<(), UnixTime>;

/// The answer of a counted limit: the events counted in this window so far, this one
/// included, or the time the window ends when it is full.
pub type CountDecision = Result<u32, UnixTime>;

#[async_trait]
pub trait Store: Send + Sync {
    async fn user(&self, id: &UserId) -> Result<Option<User>, DependencyError>;
    /// Who holds a login key, with the account's password hash: the key carries it, so that
    /// sign-in costs one read.
    async fn login(&self, key: &LoginKey) -> Result<Option<Login>, DependencyError>;
    async fn apply(
        &self,
        change: &AccountChange,
    ) -> Result<Result<(), ChangeRejected>, DependencyError>;

    async fn create_session(&self, session: &Session) -> Result<(), DependencyError>;
    async fn session(&self, id: &SessionId) -> Result<Option<Session>, DependencyError>;
    /// The session and its user in one round trip: every signed-in call needs both.
    async fn session_and_user(
        &self,
        session: &SessionId,
        user: &UserId,
    ) -> Result<(Option<Session>, Option<User>), DependencyError>;
    /// Replaces the refresh token when `current` is still the session's live one, making it
    /// the session's `generation`-th. A session that already holds `next` counts as rotated:
    /// `next` derives from `current`, so a concurrent rotation of the same token agrees.
    async fn rotate_refresh_token(
        &self,
        id: &SessionId,
        current: &SecretHash,
        next: &SecretHash,
        generation: u32,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, DependencyError>;
    async fn revoke_session(&self, id: &SessionId) -> Result<(), DependencyError>;

    /// Allows one event per key until `until`.
    async fn acquire_cooldown(
        &self,
        key: &str,
        until: UnixTime,
        now: UnixTime,
    ) -> Result<LimitDecision, DependencyError>;
    /// Ends the cooldown `acquire_cooldown` granted until `until`, if it still stands: the
    /// event it was taken for did not happen after all.
    async fn release_cooldown(&self, key: &str, until: UnixTime) -> Result<(), DependencyError>;
    /// Allows `limit` events per key in each fixed window of `window_secs`.
    async fn count_event(
        &self,
        key: &str,
        limit: u32,
        window_secs: i64,
        now: UnixTime,
    ) -> Result<CountDecision, DependencyError>;
    /// Takes back one event `count_event` counted at `counted_at`, in the same window: what it
    /// was counted for turned out not to count (a right password).
    async fn uncount_event(
        &self,
        key: &str,
        window_secs: i64,
        counted_at: UnixTime,
    ) -> Result<(), DependencyError>;

    async fn put_verification(&self, verification: &Verification) -> Result<(), DependencyError>;
    async fn verification(
        &self,
        id: &VerificationId,
    ) -> Result<Option<Verification>, DependencyError>;
    /// Counts a wrong code against a live verification.
    async fn record_wrong_code(
        &self,
        id: &VerificationId,
        max_attempts: u32,
        now: UnixTime,
    ) -> Result<(), DependencyError>;
    /// Spends a live verification and stores the token it earns, atomically; with
    /// `remembered`, also remembers in the same step that its account verified its address.
    /// False when the verification was already spent, out of attempts or expired.
    async fn redeem_verification(
        &self,
        id: &VerificationId,
        max_attempts: u32,
        now: UnixTime,
        token: &VerificationToken,
        remembered: Option<&VerifiedAddress>,
    ) -> Result<bool, DependencyError>;
    async fn verification_token(
        &self,
        hash: &SecretHash,
    ) -> Result<Option<VerificationToken>, DependencyError>;

    /// Stores a sudo token and marks its session as authenticated at `now`, atomically, also
    /// spending `proof` when there is one (a verification token for the user's own address);
    /// false (nothing written) when the session is gone or revoked, or `proof` does not hold.
    async fn grant_sudo(
        &self,
        token: &SudoToken,
        proof: Option<&Spend>,
        now: UnixTime,
    ) -> Result<bool, DependencyError>;
    async fn sudo_token(&self, hash: &SecretHash) -> Result<Option<SudoToken>, DependencyError>;

    async fn put_provider_token(&self, token: &ProviderToken) -> Result<(), DependencyError>;
    async fn provider_token(
        &self,
        hash: &SecretHash,
    ) -> Result<Option<ProviderToken>, DependencyError>;
    /// Spends `proof` and stores `session` in one atomic step, provided `bound_by` (one of the
    /// logins the proof names, the one sign-in found) still signs in to the session's account;
    /// false (nothing written) when the token is spent, expired or for another address or
    /// identity, or the login moved.
    async fn exchange_for_session(
        &self,
        proof: &Spend,
        bound_by: &LoginKey,
        now: UnixTime,
        session: &Session,
    ) -> Result<bool, DependencyError>;

    // Account deletion (issue 14).

    /// Deletes the account `deletion.user` as read, in one atomic step: the user item (only
    /// while still at that version), every login key it holds (each only while it still names
    /// this account), and the sudo token, which is spent (only while alive and this session's).
    /// `Stale` when the account changed or is gone, `Sudo` when the token does not hold. An
    /// account already gone with its token spent counts as deleted (`Ok`): a retry whose first
    /// answer was lost cannot tell that apart, and either way the deletion asked for is done.
    /// Sessions are not listed anywhere, so they stay, but nothing accepts a session whose
    /// account is gone.
    async fn delete_account(
        &self,
        deletion: &AccountDeletion,
    ) -> Result<Result<(), ChangeRejected>, DependencyError>;
}

/// What `Store::delete_account` removes.
#[derive(Clone, Debug)]
pub struct AccountDeletion {
    /// The account as read: its version is the condition, its login keys are released.
    pub user: User,
    pub sudo: SudoCheck,
    pub now: UnixTime,
}

/// An account and its live sessions, as the local console lists them.
#[derive(Clone, Debug)]
pub struct AccountListing {
    pub user: User,
    /// Neither revoked nor expired, most recently refreshed first.
    pub sessions: Vec<Session>,
}

impl AccountListing {
    /// Every user with its sessions still alive at `now`, newest account first.
    pub fn assemble(users: Vec<User>, sessions: Vec<Session>, now: UnixTime) -> Vec<Self> {
        let mut listings: Vec<Self> = users
            .into_iter()
            .map(|user| Self {
                user,
                sessions: Vec::new(),
            })
            .collect();
        listings.sort_by(|a, b| {
            (b.user.created_at, b.user.id.as_str()).cmp(&(a.user.created_at, a.user.id.as_str()))
        });
        let position: std::collections::HashMap<UserId, usize> = listings
            .iter()
            .enumerate()
            .map(|(index, listing)| (listing.user.id.clone(), index))
            .collect();
        for session in sessions {
            if session.revoked || session.expires_at <= now {
                continue;
            }
            if let Some(&index) = position.get(&session.user_id) {
                listings[index].sessions.push(session);
            }
        }
        for listing in &mut listings {
            listing
                .sessions
                .sort_by_key(|session| std::cmp::Reverse(session.refreshed_at));
        }
        listings
    }
}

/// Every account at once, for `local-api`'s console. On DynamoDB this is a scan of the whole
/// table: fine for a developer's local table, and never wired into a Lambda function.
#[async_trait]
pub trait Directory: Send + Sync {
    async fn accounts(&self, now: UnixTime) -> Result<Vec<AccountListing>, DependencyError>;
}

/// A message to a person: a code, or a notice about their account.
#[derive(Debug)]
pub struct Message {
    pub to: Address,
    pub subject: String,
    pub body: String,
    pub code: Option<VerificationCode>,
}

#[async_trait]
pub trait Delivery: Send + Sync {
    async fn send(&self, message: &Message) -> Result<(), DependencyError>;
}

/// Why a provider did not vouch for anyone.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("the provider rejected the code: {0}")]
    InvalidCode(String),
    #[error("the provider is not configured")]
    NotConfigured,
    #[error("the provider failed: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait IdentityProvider: Send + Sync {
    async fn exchange_code(
        &self,
        provider: ProviderId,
        code: &str,
        redirect_uri: Option<&str>,
    ) -> Result<(ProviderIdentity, ProviderProfile), ProviderError>;
}

pub trait Clock: Send + Sync {
    fn now(&self) -> UnixTime;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as UnixTime)
            .unwrap_or_default()
    }
}
