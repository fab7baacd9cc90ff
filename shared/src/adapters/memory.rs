//! The embedded store: everything in process memory, for local use and tests. Each method
//! holds one lock for its whole body, which gives it the same all-or-nothing behaviour the
//! DynamoDB adapter gets from transactions and condition expressions.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::domain::{
    Address, LoginKey, ProviderToken, SecretHash, Session, SessionId, SudoToken, UnixTime, User,
    UserId, Verification, VerificationId, VerificationToken, VerifiedAddress,
};
use crate::ports::{
    AccountChange, AccountDeletion, AccountListing, ChangeRejected, CountDecision, DependencyError,
    Directory, LimitDecision, Login, Spend, Store,
};

#[derive(Default)]
struct State {
    users: HashMap<UserId, User>,
    logins: HashMap<String, UserId>,
    /// Usernames given up, by storage key: reserved for their last owner until the time.
    username_holds: HashMap<String, (UserId, UnixTime)>,
    sessions: HashMap<SessionId, Session>,
    cooldowns: HashMap<String, UnixTime>,
    counters: HashMap<String, (UnixTime, u32)>,
    verifications: HashMap<VerificationId, Verification>,
    verification_tokens: HashMap<SecretHash, VerificationToken>,
    sudo_tokens: HashMap<SecretHash, SudoToken>,
    provider_tokens: HashMap<SecretHash, ProviderToken>,
    /// By account and address: each memory is spent (removed) by the bind it allows.
    verified_addresses: HashMap<(UserId, Address), VerifiedAddress>,
}

#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied change: every method
        // checks all conditions before it writes anything.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn spend_is_valid(state: &State, spend: &Spend, now: UnixTime) -> bool {
    match spend {
        Spend::Verification { hash, address } => state
            .verification_tokens
            .get(hash)
            .is_some_and(|t| !t.used && t.expires_at > now && &t.address == address),
        Spend::Provider { hash, identity } => state
            .provider_tokens
            .get(hash)
            .is_some_and(|t| !t.used && t.expires_at > now && &t.identity == identity),
        Spend::VerifiedAddress { user_id, address } => state
            .verified_addresses
            .get(&(user_id.clone(), address.clone()))
            .is_some_and(|memory| memory.expires_at > now),
    }
}

/// Spends a token whose `spend_is_valid` holds.
fn spend(state: &mut State, spend: &Spend) {
    match spend {
        Spend::Verification { hash, .. } => {
            if let Some(token) = state.verification_tokens.get_mut(hash) {
                token.used = true;
            }
        }
        Spend::Provider { hash, .. } => {
            if let Some(token) = state.provider_tokens.get_mut(hash) {
                token.used = true;
            }
        }
        Spend::VerifiedAddress { user_id, address } => {
            state
                .verified_addresses
                .remove(&(user_id.clone(), address.clone()));
        }
    }
}

/// Marks the sudo token's session as authenticated at `now`; false when it is gone or revoked.
fn mark_authenticated(state: &mut State, sudo: &SudoToken, now: UnixTime) -> bool {
    match state.sessions.get_mut(&sudo.session_id) {
        Some(session) if !session.revoked && session.user_id == sudo.user_id => {
            session.authenticated_at = now;
            true
        }
        _ => false,
    }
}

/// Spends a live verification and stores the token it earns; false when it is not alive.
fn redeem(
    state: &mut State,
    id: &VerificationId,
    max_attempts: u32,
    now: UnixTime,
    token: &VerificationToken,
) -> bool {
    let Some(v) = state.verifications.get_mut(id) else {
        return false;
    };
    if v.used || v.attempts >= max_attempts || v.expires_at <= now {
        return false;
    }
    v.used = true;
    state
        .verification_tokens
        .insert(token.hash.clone(), token.clone());
    true
}

#[async_trait]
impl Directory for MemoryStore {
    async fn accounts(&self, now: UnixTime) -> Result<Vec<AccountListing>, DependencyError> {
        let state = self.state();
        Ok(AccountListing::assemble(
            state.users.values().cloned().collect(),
            state.sessions.values().cloned().collect(),
            now,
        ))
    }
}

/// `Store::apply`, under the caller's lock.
fn apply(
    state: &mut State,
    change: &AccountChange,
) -> Result<Result<(), ChangeRejected>, DependencyError> {
    let user_id = &change.after.id;
    let current_version = state.users.get(user_id).map(|u| u.version);
    if current_version != change.before.as_ref().map(|u| u.version) {
        return Ok(Err(ChangeRejected::Stale));
    }
    if let Some(kept) = &change.keep_session {
        let alive = state.sessions.get(kept).is_some_and(|s| {
            !s.revoked && s.expires_at > change.now && s.user_id == change.after.id
        });
        if !alive {
            return Ok(Err(ChangeRejected::Sudo));
        }
    }
    if let Some(sudo) = &change.sudo {
        let alive = state.sudo_tokens.get(&sudo.hash).is_some_and(|t| {
            t.expires_at > change.now
                && t.user_id == sudo.user_id
                && t.session_id == sudo.session_id
                && change.before.as_ref().map(|u| u.session_epoch) == Some(t.epoch)
        });
        if !alive {
            return Ok(Err(ChangeRejected::Sudo));
        }
    }
    if let Some(spend) = &change.spend {
        if !spend_is_valid(state, spend, change.now) || change.spends_another_accounts_memory() {
            return Ok(Err(ChangeRejected::Token));
        }
    }
    let old_keys: Vec<LoginKey> = change.before.iter().flat_map(User::login_keys).collect();
    let new_keys = change.after.login_keys();
    for key in &new_keys {
        let storage_key = key.storage_key();
        let held_by_another = state
            .username_holds
            .get(&storage_key)
            .is_some_and(|(owner, until)| owner != user_id && *until > change.now);
        let owned_by_another = state
            .logins
            .get(&storage_key)
            .is_some_and(|owner| owner != user_id);
        if owned_by_another || held_by_another {
            return Ok(Err(ChangeRejected::Taken(key.clone())));
        }
    }
    // Every condition holds: write.
    let new_storage_keys: Vec<String> = new_keys.iter().map(LoginKey::storage_key).collect();
    for old in old_keys
        .iter()
        .filter(|k| !new_storage_keys.contains(&k.storage_key()))
    {
        state.logins.remove(&old.storage_key());
        if matches!(old, LoginKey::Username(_)) {
            let hold = (user_id.clone(), change.username_held_until);
            state.username_holds.insert(old.storage_key(), hold);
        }
    }
    for key in new_storage_keys {
        state.username_holds.remove(&key);
        state.logins.insert(key, user_id.clone());
    }
    if let Some(token) = &change.spend {
        spend(state, token);
    }
    state.users.insert(user_id.clone(), change.after.clone());
    if let Some(session) = &change.session {
        state.sessions.insert(session.id.clone(), session.clone());
    }
    if let Some(kept) = change
        .keep_session
        .as_ref()
        .and_then(|id| state.sessions.get_mut(id))
    {
        kept.epoch = change.after.session_epoch;
    }
    Ok(Ok(()))
}

#[async_trait]
impl Store for MemoryStore {
    async fn user(&self, id: &UserId) -> Result<Option<User>, DependencyError> {
        Ok(self.state().users.get(id).cloned())
    }

    async fn login(&self, key: &LoginKey) -> Result<Option<Login>, DependencyError> {
        let state = self.state();
        Ok(state.logins.get(&key.storage_key()).map(|id| Login {
            user_id: id.clone(),
            password_hash: state.users.get(id).and_then(|u| u.password_hash.clone()),
            session_epoch: state.users.get(id).map_or(0, |u| u.session_epoch),
        }))
    }

    async fn apply(
        &self,
        change: &AccountChange,
    ) -> Result<Result<(), ChangeRejected>, DependencyError> {
        apply(&mut self.state(), change)
    }

    async fn create_session(&self, session: &Session) -> Result<(), DependencyError> {
        self.state()
            .sessions
            .insert(session.id.clone(), session.clone());
        Ok(())
    }

    async fn session(&self, id: &SessionId) -> Result<Option<Session>, DependencyError> {
        Ok(self.state().sessions.get(id).cloned())
    }

    async fn session_and_user(
        &self,
        session: &SessionId,
        user: &UserId,
    ) -> Result<(Option<Session>, Option<User>), DependencyError> {
        let state = self.state();
        Ok((
            state.sessions.get(session).cloned(),
            state.users.get(user).cloned(),
        ))
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
        let mut state = self.state();
        let Some(session) = state.sessions.get_mut(id) else {
            return Ok(false);
        };
        if session.revoked || session.expires_at <= now {
            return Ok(false);
        }
        if session.refresh_hash.matches(next) {
            return Ok(true);
        }
        if !session.refresh_hash.matches(current) {
            return Ok(false);
        }
        session.refresh_hash = next.clone();
        session.generation = generation;
        session.expires_at = expires_at;
        session.refreshed_at = now;
        Ok(true)
    }

    async fn revoke_session(&self, id: &SessionId) -> Result<(), DependencyError> {
        if let Some(session) = self.state().sessions.get_mut(id) {
            session.revoked = true;
        }
        Ok(())
    }

    async fn acquire_cooldown(
        &self,
        key: &str,
        until: UnixTime,
        now: UnixTime,
    ) -> Result<LimitDecision, DependencyError> {
        let mut state = self.state();
        match state.cooldowns.get(key) {
            Some(&busy_until) if busy_until > now => Ok(Err(busy_until)),
            _ => {
                state.cooldowns.insert(key.to_string(), until);
                Ok(Ok(()))
            }
        }
    }

    async fn release_cooldown(&self, key: &str, until: UnixTime) -> Result<(), DependencyError> {
        let mut state = self.state();
        if state.cooldowns.get(key) == Some(&until) {
            state.cooldowns.remove(key);
        }
        Ok(())
    }

    async fn count_event(
        &self,
        key: &str,
        limit: u32,
        window_secs: i64,
        now: UnixTime,
    ) -> Result<CountDecision, DependencyError> {
        let window_start = now - now.rem_euclid(window_secs);
        let mut state = self.state();
        let entry = state
            .counters
            .entry(key.to_string())
            .or_insert((window_start, 0));
        if entry.0 != window_start {
            *entry = (window_start, 0);
        }
        if entry.1 >= limit {
            return Ok(Err(window_start + window_secs));
        }
        entry.1 += 1;
        Ok(Ok(entry.1))
    }

    async fn uncount_event(
        &self,
        key: &str,
        window_secs: i64,
        counted_at: UnixTime,
    ) -> Result<(), DependencyError> {
        let window_start = counted_at - counted_at.rem_euclid(window_secs);
        if let Some(entry) = self.state().counters.get_mut(key) {
            if entry.0 == window_start {
                entry.1 = entry.1.saturating_sub(1);
            }
        }
        Ok(())
    }

    async fn put_verification(&self, verification: &Verification) -> Result<(), DependencyError> {
        self.state()
            .verifications
            .insert(verification.id.clone(), verification.clone());
        Ok(())
    }

    async fn verification(
        &self,
        id: &VerificationId,
    ) -> Result<Option<Verification>, DependencyError> {
        Ok(self.state().verifications.get(id).cloned())
    }

    async fn record_wrong_code(
        &self,
        id: &VerificationId,
        max_attempts: u32,
        now: UnixTime,
    ) -> Result<(), DependencyError> {
        if let Some(v) = self.state().verifications.get_mut(id) {
            if !v.used && v.attempts < max_attempts && v.expires_at > now {
                v.attempts += 1;
            }
        }
        Ok(())
    }

    async fn redeem_verification(
        &self,
        id: &VerificationId,
        max_attempts: u32,
        now: UnixTime,
        token: &VerificationToken,
        remembered: Option<&VerifiedAddress>,
    ) -> Result<bool, DependencyError> {
        let mut state = self.state();
        if !redeem(&mut state, id, max_attempts, now, token) {
            return Ok(false);
        }
        if let Some(memory) = remembered {
            state.verified_addresses.insert(
                (memory.user_id.clone(), memory.address.clone()),
                memory.clone(),
            );
        }
        Ok(true)
    }

    async fn verification_token(
        &self,
        hash: &SecretHash,
    ) -> Result<Option<VerificationToken>, DependencyError> {
        Ok(self.state().verification_tokens.get(hash).cloned())
    }

    async fn grant_sudo(
        &self,
        token: &SudoToken,
        proof: Option<&Spend>,
        now: UnixTime,
    ) -> Result<bool, DependencyError> {
        let mut state = self.state();
        if proof.is_some_and(|proof| !spend_is_valid(&state, proof, now)) {
            return Ok(false);
        }
        if !mark_authenticated(&mut state, token, now) {
            return Ok(false);
        }
        if let Some(proof) = proof {
            spend(&mut state, proof);
        }
        state.sudo_tokens.insert(token.hash.clone(), token.clone());
        Ok(true)
    }

    async fn sudo_token(&self, hash: &SecretHash) -> Result<Option<SudoToken>, DependencyError> {
        Ok(self.state().sudo_tokens.get(hash).cloned())
    }

    async fn put_provider_token(&self, token: &ProviderToken) -> Result<(), DependencyError> {
        self.state()
            .provider_tokens
            .insert(token.hash.clone(), token.clone());
        Ok(())
    }

    async fn provider_token(
        &self,
        hash: &SecretHash,
    ) -> Result<Option<ProviderToken>, DependencyError> {
        Ok(self.state().provider_tokens.get(hash).cloned())
    }

    async fn exchange_for_session(
        &self,
        proof: &Spend,
        bound_by: &LoginKey,
        now: UnixTime,
        session: &Session,
    ) -> Result<bool, DependencyError> {
        let mut state = self.state();
        let key = bound_by.storage_key();
        if !proof.login_keys().contains(bound_by)
            || !spend_is_valid(&state, proof, now)
            || state.logins.get(&key) != Some(&session.user_id)
        {
            return Ok(false);
        }
        spend(&mut state, proof);
        state.sessions.insert(session.id.clone(), session.clone());
        Ok(true)
    }

    async fn delete_account(
        &self,
        deletion: &AccountDeletion,
    ) -> Result<Result<(), ChangeRejected>, DependencyError> {
        let mut state = self.state();
        let user = &deletion.user;
        let sudo = &deletion.sudo;
        match state.users.get(&user.id) {
            // Deleted before with this very token: done (see `Store::delete_account`).
            None if !state.sudo_tokens.contains_key(&sudo.hash) => return Ok(Ok(())),
            Some(stored) if stored.version == user.version => {}
            _ => return Ok(Err(ChangeRejected::Stale)),
        }
        let alive = state.sudo_tokens.get(&sudo.hash).is_some_and(|t| {
            t.expires_at > deletion.now
                && t.user_id == sudo.user_id
                && t.session_id == sudo.session_id
                && t.user_id == user.id
                && t.epoch == user.session_epoch
        });
        if !alive {
            return Ok(Err(ChangeRejected::Sudo));
        }
        // Every condition holds: delete.
        for key in user.login_keys() {
            let key = key.storage_key();
            if state.logins.get(&key) == Some(&user.id) {
                state.logins.remove(&key);
            }
        }
        state.sudo_tokens.remove(&sudo.hash);
        state.users.remove(&user.id);
        Ok(Ok(()))
    }
}
