//! Re-authentication (sudo), verification codes, and binding an email or phone number.

use std::net::IpAddr;

use crate::domain::{
    Address, LoginKey, Password, SecretToken, SudoToken, User, Verification, VerificationCode,
    VerificationId, VerificationToken,
};
use crate::error::{AuthError, AuthResult};
use crate::ports::{AccountChange, ChangeRejected, Message, Spend, SudoCheck};

use super::accounts::taken;
use super::{
    limit_key, purpose, within_ip_limit, within_limit, App, Caller, PasswordThrottle, Principal,
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
    };
    // Each proof's first read runs while the caller's session and account load.
    let principal = match proof {
        SudoProof::Password(password) => {
            let throttle =
                PasswordThrottle::new(app, &format!("user#{}", caller.user_id().as_str()));
            let (principal, allowed) =
                tokio::join!(caller.principal(app), throttle.check(app, now));
            let principal = principal?;
            let Some(stored) = principal.user.password_hash.as_deref() else {
                return Err(AuthError::FailedPrecondition(
                    "the account has no password; use a verification_token instead",
                ));
            };
            allowed?;
            if !app.passwords.verify(password, Some(stored)).await? {
                throttle.record_failure(app, now).await?;
                return Err(AuthError::InvalidPassword("the password is wrong"));
            }
            app.store.put_sudo_token(&record(&principal)).await?;
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
            if !app
                .store
                .exchange_for_sudo(&hash, &stored.address, now, &record(&principal))
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
    let store = &app.store;
    let address_key = address.stored();
    let cooldown_key = limit_key(app, "code-gap", &address_key);
    let hourly_key = limit_key(app, "code-hour", &address_key);
    let ip_key = client_ip.map(|ip| limit_key(app, "code-ip", &ip.to_string()));
    let login = LoginKey::Address(address.clone());
    // Independent reads and counters run concurrently: one round trip of latency.
    let (principal, by_ip, gap, hourly, owner) = tokio::join!(
        async {
            match caller {
                Some(caller) => caller.principal(app).await.map(Some),
                None => Ok(None),
            }
        },
        async {
            match &ip_key {
                Some(key) => store
                    .count_event(key, settings.code_sends_per_ip_per_hour, 3600, now)
                    .await
                    .map(Some),
                None => Ok(None),
            }
        },
        store.acquire_cooldown(&cooldown_key, now + settings.code_resend_interval_secs, now),
        store.count_event(
            &hourly_key,
            settings.code_sends_per_address_per_hour,
            3600,
            now
        ),
        store.login(&login),
    );
    // The resend cooldown is held from here on. Should a dependency fail, give it back: the
    // answer says to try again, and the code (if one went out) is not verifiable anyway.
    let cooldown_until = now + settings.code_resend_interval_secs;
    let holds_cooldown = matches!(gap, Ok(Ok(())));
    let outcome = async {
        let principal = principal?;
        if target == Target::CurrentUser
            && !principal.is_some_and(|p| p.user.has_address(&address))
        {
            return Err(AuthError::PermissionDenied(
                "the address is not bound to the signed-in account",
            ));
        }
        if let Some(decision) = by_ip? {
            within_limit(decision, now)?;
        }
        within_limit(gap?, now)?;
        within_limit(hourly?, now)?;
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
        };
        // Send first, then store: a code that was not delivered never becomes verifiable.
        app.delivery
            .send(&Message {
                to: address.clone(),
                subject: "Your verification code".into(),
                body: text,
                code: Some(code),
            })
            .await?;
        app.store.put_verification(&verification).await?;
        Ok::<_, AuthError>((verification_id, is_user))
    }
    .await;
    // Nor does a caller that may not send to this address hold it.
    let gives_back = matches!(
        outcome,
        Err(AuthError::Unavailable(_)
            | AuthError::Unauthenticated(_)
            | AuthError::PermissionDenied(_))
    );
    if gives_back && holds_cooldown {
        if let Err(err) = store.release_cooldown(&cooldown_key, cooldown_until).await {
            tracing::warn!(error = %err, "the resend cooldown was not released");
        }
    }
    let (verification_id, is_user) = outcome?;
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
        within_ip_limit(
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
        address: verification.address,
        expires_at: now + ttl,
        used: false,
    };
    if !app
        .store
        .redeem_verification(&verification_id, max_attempts, now, &record)
        .await?
    {
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
    if let Some(old) = previous.filter(|old| old != &request.address) {
        let notice = Message {
            to: old.clone(),
            subject: "Your sign-in address was changed".into(),
            body: format!(
                "This address no longer signs in to your account: it was replaced by {}. If you did not do this, contact support.",
                request.address.masked()
            ),
            code: None,
        };
        // The change stands even when the notice cannot be delivered.
        if let Err(err) = app.delivery.send(&notice).await {
            tracing::warn!(to = %old.masked(), error = %err, "the change notice was not delivered");
        }
    }
    Ok(())
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
        after.version = before.version + 1;
        after.updated_at = now;
        let change = AccountChange {
            before: Some(before),
            after,
            sudo: sudo.clone(),
            spend: spend.clone(),
            now,
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
