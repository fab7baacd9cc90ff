//! Re-authentication (sudo), verification codes, and binding an email or phone number.

use std::net::IpAddr;

use crate::domain::{
    Address, LoginKey, Password, SecretToken, SudoToken, UnixTime, Verification, VerificationCode,
    VerificationId, VerificationToken, VerifiedAddress,
};
use crate::error::{AuthError, AuthResult};
use crate::ports::{Message, Spend, SudoCheck};

use super::changes::change_account;
use super::messages::{tell_replaced, ChannelBudget};
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
