//! Re-authentication (sudo), verification codes, and binding an email or phone number.

use std::net::IpAddr;

use crate::domain::{
    Address, LoginKey, Password, SecretToken, SudoToken, UnixTime, User, Verification,
    VerificationCode, VerificationId, VerificationToken, VerifiedAddress,
};
use crate::error::{AuthError, AuthResult};
use crate::ports::{AccountChange, ChangeRejected, Message, Spend, SudoCheck};

use super::accounts::taken;
use super::{
    give_back_count, limit_key, purpose, within_limit, App, Caller, ClientCount, PasswordThrottle,
    Principal, HOUR,
};

/// How the caller re-authenticates for sudo.
#[derive(Debug)]
pub enum SudoProof {
    Password(Password),
    /// A verification token for an address already bound to the caller.
    VerificationToken(SecretToken),
}

#[derive(Debug)]
pub struct SudoGrant {
    pub sudo_token: SecretToken,
    pub expires_in: i64,
}

pub async fn sudo(app: &App, caller: &Caller, proof: SudoProof) -> AuthResult<SudoGrant> {
    let now = app.clock.now();
    let sudo_token = SecretToken::generate();
    let record = |principal: &Principal| SudoToken {
        hash: app.secrets.token(purpose::SUDO, &sudo_token),
        user_id: principal.user.id.clone(),
        session_id: principal.session.id.clone(),
        expires_at: now + app.settings.sudo_token_ttl_secs,
        epoch: principal.user.session_epoch,
    };
    // Each proof's first read runs while the caller's session and account load.
    let principal = match proof {
        SudoProof::Password(password) => {
            let throttle =
                PasswordThrottle::new(app, &format!("user#{}", caller.user_id().as_str()));
            let (principal, attempt) =
                tokio::join!(caller.principal(app), throttle.reserve(app, now));
            let attempt = attempt?;
            let principal = match principal {
                Ok(principal) if principal.user.password_hash.is_some() => principal,
                unjudged => {
                    throttle.give_back(app, &attempt).await;
                    unjudged?;
                    return Err(AuthError::FailedPrecondition(
                        "the account has no password; use a verification_token instead",
                    ));
                }
            };
            let stored = principal.user.password_hash.as_deref();
            if !app.passwords.verify(password, stored).await? {
                return Err(AuthError::InvalidPassword("the password is wrong"));
            }
            // The attempt goes back while the sudo token is written: one round trip, not two.
            let grant = record(&principal);
            let (_, granted) = tokio::join!(
                throttle.give_back(app, &attempt),
                app.store.grant_sudo(&grant, None, now)
            );
            if !granted? {
                return Err(session_ended());
            }
            principal
        }
        SudoProof::VerificationToken(token) => {
            let denied = || {
                AuthError::PermissionDenied(
                    "the verification_token is invalid, used, expired or not for an address of this account",
                )
            };
            let hash = app.secrets.token(purpose::VERIFICATION_TOKEN, &token);
            let (principal, stored) =
                tokio::join!(caller.principal(app), app.store.verification_token(&hash));
            let principal = principal?;
            let stored = stored?.ok_or_else(denied)?;
            if !principal.user.has_address(&stored.address) {
                return Err(denied());
            }
            let proof = Spend::Verification {
                hash,
                address: stored.address,
            };
            if !app
                .store
                .grant_sudo(&record(&principal), Some(&proof), now)
                .await?
            {
                return Err(denied());
            }
            principal
        }
    };
    tracing::info!(user = principal.user.id.as_str(), "sudo granted");
    Ok(SudoGrant {
        sudo_token,
        expires_in: app.settings.sudo_token_ttl_secs,
    })
}

fn session_ended() -> AuthError {
    AuthError::Unauthenticated("the session has ended; sign in again")
}

/// Who a code may be sent to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Target {
    #[default]
    Any,
    /// The address must belong to an account.
    User,
    /// The address must not belong to an account.
    NotUser,
    /// The address must be the signed-in caller's own.
    CurrentUser,
}

#[derive(Debug)]
pub struct VerificationSent {
    pub verification_id: VerificationId,
    pub expires_in: i64,
    pub is_user: bool,
}

pub async fn send_verification(
    app: &App,
    caller: Option<&Caller>,
    address: Address,
    target: Target,
    client_ip: Option<IpAddr>,
) -> AuthResult<VerificationSent> {
    let now = app.clock.now();
    let settings = &app.settings;
    if target == Target::CurrentUser && caller.is_none() {
        return Err(AuthError::Unauthenticated(
            "target CUR_USER needs a signed-in caller",
        ));
    }
    if let Address::Phone(phone) = &address {
        if !settings
            .sms_allowed_country_codes
            .allows(phone.country_code())
        {
            return Err(AuthError::InvalidArgument(format!(
                "phone_number: this service does not send SMS to country code +{}",
                phone.country_code()
            )));
        }
    }
    let store = &app.store;
    let login = LoginKey::Address(address.clone());
    // The client's own limit and who may ask come first: a refused request takes nothing
    // from the address's quota. Independent reads and counters run concurrently.
    let (principal, by_client, owner) = tokio::join!(
        async {
            match caller {
                Some(caller) => caller.principal(app).await.map(Some),
                None => Ok(None),
            }
        },
        ClientCount::take(
            app,
            "code-ip",
            client_ip,
            settings.code_sends_per_ip_per_hour,
            now
        ),
        store.login(&login),
    );
    let principal = principal?;
    if target == Target::CurrentUser
        && !principal
            .as_ref()
            .is_some_and(|p| p.user.has_address(&address))
    {
        return Err(AuthError::PermissionDenied(
            "the address is not bound to the signed-in account",
        ));
    }
    by_client?;
    let is_user = owner?.is_some();
    match target {
        Target::User if !is_user => return Err(AuthError::NotFound("no account has this address")),
        Target::NotUser if is_user => {
            return Err(AuthError::FailedPrecondition(
                "an account already has this address",
            ))
        }
        _ => {}
    }

    let quota = SendQuota::take(app, &address, now).await?;
    let verification_id = VerificationId::generate();
    let code = VerificationCode::generate();
    let minutes = (settings.code_ttl_secs + 59) / 60;
    let text = format!(
        "Your verification code is {}. It expires in {minutes} minutes. If you did not ask for it, ignore this message.",
        code.expose()
    );
    let verification = Verification {
        id: verification_id.clone(),
        address: address.clone(),
        code_hash: code_hash(app, &verification_id, &code),
        attempts: 0,
        expires_at: now + settings.code_ttl_secs,
        used: false,
        requested_by: principal.map(|p| p.user.id),
    };
    // Send first, then store: a code that was not delivered never becomes verifiable.
    let sent = app
        .delivery
        .send(&Message {
            to: address.clone(),
            subject: "Your verification code".into(),
            body: text,
            code: Some(code),
        })
        .await;
    if let Err(err) = sent {
        quota.give_back(app).await;
        return Err(err.into());
    }
    if let Err(err) = app.store.put_verification(&verification).await {
        // The message went out and counts; but the code it carries is not verifiable, so the
        // address need not wait for the resend gap to get another.
        quota.release_gap(app).await;
        return Err(err.into());
    }
    tracing::info!(
        verification = verification_id.as_str(),
        to = %address.masked(),
        "verification code sent"
    );
    Ok(VerificationSent {
        verification_id,
        expires_in: settings.code_ttl_secs,
        is_user,
    })
}

/// A deployment-wide hourly budget of one channel (SMS or email), every address and client
/// together: a ceiling on the bill (and on SES's quota) that no spread of addresses or clients
/// gets around.
struct ChannelBudget {
    key: String,
    per_hour: u32,
}

impl ChannelBudget {
    /// Everything the channel of `address` may send in an hour, codes and notices.
    fn of(app: &App, address: &Address) -> Self {
        let settings = &app.settings;
        match address {
            Address::Phone(_) => Self {
                key: limit_key(app, "sms-hour", "deployment"),
                per_hour: settings.sms_sends_per_hour,
            },
            Address::Email(_) => Self {
                key: limit_key(app, "email-hour", "deployment"),
                per_hour: settings.email_sends_per_hour,
            },
        }
    }

    /// The part of the channel's budget notices may use (`AUTH_SMS_NOTICE_SHARE_PERCENT`):
    /// notices count against both, so codes always keep the rest.
    fn notices_of(app: &App, address: &Address) -> Self {
        let whole = Self::of(app, address);
        let share = u64::from(app.settings.sms_notice_share_percent);
        Self {
            key: limit_key(app, "notice-hour", address.kind().as_str()),
            per_hour: (u64::from(whole.per_hour) * share / 100) as u32,
        }
    }
}

/// What one code to an address takes: the address's resend gap and a place in its hourly
/// quota, and a place in its channel's hourly budget. Taken together, and given back when the
/// message does not go out, so that only messages sent count.
struct SendQuota {
    gap_key: String,
    gap_until: UnixTime,
    hourly_key: String,
    budget_key: String,
    now: UnixTime,
}

impl SendQuota {
    async fn take(app: &App, address: &Address, now: UnixTime) -> AuthResult<Self> {
        let settings = &app.settings;
        let store = &app.store;
        let address_key = address.stored();
        let budget = ChannelBudget::of(app, address);
        let quota = SendQuota {
            gap_key: limit_key(app, "code-gap", &address_key),
            gap_until: now + settings.code_resend_interval_secs,
            hourly_key: limit_key(app, "code-hour", &address_key),
            budget_key: budget.key,
            now,
        };
        let (gap, hourly, budget) = tokio::join!(
            store.acquire_cooldown(&quota.gap_key, quota.gap_until, now),
            store.count_event(
                &quota.hourly_key,
                settings.code_sends_per_address_per_hour,
                HOUR,
                now
            ),
            store.count_event(&quota.budget_key, budget.per_hour, HOUR, now),
        );
        let took_gap = matches!(gap, Ok(Ok(())));
        let took_hourly = matches!(hourly, Ok(Ok(_)));
        let took_budget = matches!(budget, Ok(Ok(_)));
        let decision = (|| {
            within_limit(gap?, now)?;
            within_limit(hourly?, now)?;
            within_limit(budget?, now)?;
            Ok::<_, AuthError>(())
        })();
        if decision.is_err() {
            let give_back = async {
                if took_hourly {
                    give_back_count(app, &quota.hourly_key, now).await;
                }
            };
            let give_back_budget = async {
                if took_budget {
                    give_back_count(app, &quota.budget_key, now).await;
                }
            };
            let release = async {
                if took_gap {
                    quota.release_gap(app).await;
                }
            };
            tokio::join!(give_back, give_back_budget, release);
        }
        decision.map(|()| quota)
    }

    async fn release_gap(&self, app: &App) {
        if let Err(err) = app
            .store
            .release_cooldown(&self.gap_key, self.gap_until)
            .await
        {
            tracing::warn!(error = %err, "the resend gap was not released");
        }
    }

    async fn give_back(&self, app: &App) {
        tokio::join!(
            self.release_gap(app),
            give_back_count(app, &self.hourly_key, self.now),
            give_back_count(app, &self.budget_key, self.now),
        );
    }
}

/// What one change notice takes: a place among the notices to its address this hour
/// (`AUTH_NOTICES_PER_ADDRESS_PER_HOUR`), in the notices' share of its channel's budget, and
/// in the channel's budget itself. All of them or none: a notice refused by one gives back
/// what the others counted, and so does one that is not delivered.
struct NoticeQuota {
    keys: [String; 3],
    now: UnixTime,
}

impl NoticeQuota {
    /// The quota, or why the notice may not go out (for the log).
    async fn take(app: &App, address: &Address, now: UnixTime) -> Result<Self, String> {
        let store = &app.store;
        let per_address = app.settings.notices_per_address_per_hour;
        let share = ChannelBudget::notices_of(app, address);
        let whole = ChannelBudget::of(app, address);
        let to_address = limit_key(app, "notice-address", &address.stored());
        let (by_address, by_share, by_budget) = tokio::join!(
            store.count_event(&to_address, per_address, HOUR, now),
            store.count_event(&share.key, share.per_hour, HOUR, now),
            store.count_event(&whole.key, whole.per_hour, HOUR, now),
        );
        let quota = Self {
            keys: [to_address, share.key, whole.key],
            now,
        };
        let outcomes = [by_address, by_share, by_budget];
        let refusal = outcomes
            .iter()
            .zip([
                "the notices to this address this hour are spent",
                "the notices' share of this hour's budget is spent",
                "this hour's budget of the channel is spent",
            ])
            .find_map(|(outcome, spent)| match outcome {
                Ok(Ok(_)) => None,
                Ok(Err(_)) => Some(spent.to_string()),
                Err(err) => Some(err.to_string()),
            });
        let Some(refusal) = refusal else {
            return Ok(quota);
        };
        let give_back = quota
            .keys
            .iter()
            .zip(&outcomes)
            .filter(|(_, outcome)| matches!(outcome, Ok(Ok(_))))
            .map(|(key, _)| give_back_count(app, key, now));
        for given_back in give_back {
            given_back.await;
        }
        Err(refusal)
    }

    async fn give_back(&self, app: &App) {
        let [a, b, c] = &self.keys;
        tokio::join!(
            give_back_count(app, a, self.now),
            give_back_count(app, b, self.now),
            give_back_count(app, c, self.now),
        );
    }
}

fn code_hash(app: &App, id: &VerificationId, code: &VerificationCode) -> crate::domain::SecretHash {
    app.secrets
        .hash(purpose::CODE, &format!("{}:{}", id.as_str(), code.expose()))
}

#[derive(Debug)]
pub struct VerificationGrant {
    pub verification_token: SecretToken,
    pub expires_in: i64,
}

pub async fn verify(
    app: &App,
    verification_id: VerificationId,
    code: VerificationCode,
    client_ip: Option<IpAddr>,
) -> AuthResult<VerificationGrant> {
    let now = app.clock.now();
    let max_attempts = app.settings.code_max_attempts;
    let (allowed, verification) = tokio::join!(
        ClientCount::take(
            app,
            "verify-ip",
            client_ip,
            app.settings.verify_attempts_per_ip_per_hour,
            now
        ),
        app.store.verification(&verification_id),
    );
    allowed?;
    let verification = verification?.ok_or(AuthError::InvalidVerificationCode)?;
    if verification.used || verification.attempts >= max_attempts || verification.expires_at <= now
    {
        return Err(AuthError::InvalidVerificationCode);
    }
    if !code_hash(app, &verification_id, &code).matches(&verification.code_hash) {
        app.store
            .record_wrong_code(&verification_id, max_attempts, now)
            .await?;
        return Err(AuthError::InvalidVerificationCode);
    }
    let token = SecretToken::generate();
    let ttl = app.settings.verification_token_ttl_secs;
    let record = VerificationToken {
        hash: app.secrets.token(purpose::VERIFICATION_TOKEN, &token),
        address: verification.address.clone(),
        expires_at: now + ttl,
        used: false,
    };
    // A code a signed-in account asked for also lets that account bind the address without
    // a token (`updateUser({email})` sends none), for as long as a token would live.
    let remembered = verification.requested_by.map(|user_id| VerifiedAddress {
        user_id,
        address: verification.address,
        expires_at: now + ttl,
    });
    let redeemed = app
        .store
        .redeem_verification(
            &verification_id,
            max_attempts,
            now,
            &record,
            remembered.as_ref(),
        )
        .await?;
    if !redeemed {
        return Err(AuthError::InvalidVerificationCode);
    }
    Ok(VerificationGrant {
        verification_token: token,
        expires_in: ttl,
    })
}

#[derive(Debug)]
pub struct BindContact {
    pub sudo_token: SecretToken,
    pub verification_token: SecretToken,
    pub address: Address,
}

/// Binds an email or phone number in one atomic change; replaces the previous one of that
/// kind and tells the old address.
pub async fn bind_contact(
    app: &App,
    principal: &Principal,
    request: BindContact,
) -> AuthResult<()> {
    let sudo = SudoCheck {
        hash: app.secrets.token(purpose::SUDO, &request.sudo_token),
        user_id: principal.user.id.clone(),
        session_id: principal.session.id.clone(),
    };
    let spend = Spend::Verification {
        hash: app
            .secrets
            .token(purpose::VERIFICATION_TOKEN, &request.verification_token),
        address: request.address.clone(),
    };
    let previous = change_account(app, principal, Some(sudo), Some(spend), |user| {
        let previous = user.address(request.address.kind());
        match &request.address {
            Address::Email(email) => user.email = Some(email.clone()),
            Address::Phone(phone) => user.phone = Some(phone.clone()),
        }
        Ok(previous)
    })
    .await?;
    tracing::info!(
        user = principal.user.id.as_str(),
        kind = request.address.kind().as_str(),
        "address bound"
    );
    tell_replaced(app, previous, &request.address).await;
    Ok(())
}

/// Tells the address a bind replaced (if it did) that it no longer signs in.
pub(crate) async fn tell_replaced(app: &App, previous: Option<Address>, new: &Address) {
    if let Some(old) = previous.filter(|old| old != new) {
        let body = format!(
            "This address no longer signs in to your account: it was replaced by {}. If you did not do this, contact support.",
            named_in_notice(new)
        );
        notify(
            app,
            [Some(old), None],
            "Your sign-in address was changed",
            &body,
        )
        .await;
    }
}

/// How a notice names an address: enough for its owner to recognise it, too little for
/// anyone else to learn it (neither the whole domain nor the whole number).
fn named_in_notice(address: &Address) -> String {
    match address {
        Address::Email(email) => {
            let (local, domain) = email.as_str().split_once('@').unwrap_or(("", ""));
            let first = |text: &str| text.chars().next().unwrap_or('*');
            let top_level = domain.rsplit('.').next().unwrap_or("");
            format!("{}***@{}***.{top_level}", first(local), first(domain))
        }
        Address::Phone(phone) => phone.masked(),
    }
}

/// Tells an account's addresses (its email and its phone, at most) about a change of it: a
/// notice, never a code. The change stands even when a notice cannot be delivered, or is
/// dropped because its address or its channel had its notices for the hour (see
/// `NoticeQuota`): one account changing itself over and over reaches neither an inbox more
/// than a few times nor the budget that codes need.
pub(crate) async fn notify(app: &App, to: [Option<Address>; 2], subject: &str, body: &str) {
    let send = |address: Option<Address>| async move {
        let Some(address) = address else { return };
        let quota = match NoticeQuota::take(app, &address, app.clock.now()).await {
            Ok(quota) => quota,
            Err(why) => {
                tracing::warn!(to = %address.masked(), reason = %why, "a change notice was not sent");
                return;
            }
        };
        let notice = Message {
            to: address,
            subject: subject.to_string(),
            body: body.to_string(),
            code: None,
        };
        if let Err(err) = app.delivery.send(&notice).await {
            quota.give_back(app).await;
            tracing::warn!(to = %notice.to.masked(), error = %err, "a change notice was not delivered");
        }
    };
    let [first, second] = to;
    tokio::join!(send(first), send(second));
}

/// `notify` to the email and the phone `user` has.
pub(crate) async fn notify_account(app: &App, user: &User, subject: &str, body: &str) {
    let to = [
        user.address(crate::domain::AddressKind::Email),
        user.address(crate::domain::AddressKind::Phone),
    ];
    notify(app, to, subject, body).await;
}

/// Applies `edit` to the caller's account as one atomic change, rereading the account and
/// trying again when another request changed it in between.
pub(crate) async fn change_account<T>(
    app: &App,
    principal: &Principal,
    sudo: Option<SudoCheck>,
    spend: Option<Spend>,
    edit: impl Fn(&mut User) -> AuthResult<T>,
) -> AuthResult<T> {
    const ATTEMPTS: usize = 3;
    let mut before = principal.user.clone();
    for _ in 0..ATTEMPTS {
        let now = app.clock.now();
        let mut after = before.clone();
        let outcome = edit(&mut after)?;
        // An account that gains a way to sign in is no longer anonymous: it stops expiring.
        if !after.login_keys().is_empty() {
            after.expires_at = None;
        }
        after.version = before.version + 1;
        after.updated_at = now;
        let change = AccountChange {
            before: Some(before),
            after,
            sudo: sudo.clone(),
            spend: spend.clone(),
            session: None,
            keep_session: None,
            now,
            username_held_until: now + app.settings.username_hold_secs,
        };
        match app.store.apply(&change).await? {
            Ok(()) => return Ok(outcome),
            Err(ChangeRejected::Sudo) => {
                return Err(AuthError::PermissionDenied(
                    "the sudo_token is invalid, expired or was issued to another session",
                ))
            }
            Err(ChangeRejected::Token) => {
                return Err(AuthError::PermissionDenied(match &spend {
                    Some(Spend::Provider { .. }) => {
                        "the provider_token is invalid, used or expired"
                    }
                    Some(Spend::VerifiedAddress { .. }) => {
                        "no code was verified for this address by this account just now"
                    }
                    _ => "the verification_token is invalid, used, expired or for another address",
                }))
            }
            Err(ChangeRejected::Taken(key)) => return Err(taken(&key)),
            Err(ChangeRejected::Stale) => {
                before = app
                    .store
                    .user(&principal.user.id)
                    .await?
                    .ok_or(AuthError::Unauthenticated("the account no longer exists"))?;
            }
        }
    }
    Err(AuthError::Unavailable(
        "the account kept changing under concurrent requests".into(),
    ))
}
