//! Verifications (a code sent to an address), the verification tokens they earn, and
//! provider tokens: the single-use proofs that an account change or a sign-in spends.

use super::item::{b, identity_attributes, insert_address, key_of, n, s, Item, Record};
use super::keys::{
    login_pk, provider_token_pk, session_pk, verification_pk, verification_token_pk,
};
use super::records::{session_item, spend_part, verified_address_item};
use super::{is_condition_failure, sdk_error, DynamoStore, PARTITION_KEY, TTL_ATTRIBUTE};
use crate::domain::{
    LoginKey, ProviderToken, SecretHash, Session, UnixTime, UserId, Verification, VerificationId,
    VerificationToken, VerifiedAddress,
};
use crate::ports::{DependencyError, Spend};

fn verification_item(verification: &Verification) -> Item {
    let mut item = key_of(verification_pk(&verification.id));
    insert_address(&mut item, &verification.address);
    item.insert("code_hash".into(), s(verification.code_hash.to_hex()));
    item.insert("attempts".into(), n(verification.attempts));
    item.insert("used".into(), b(verification.used));
    item.insert(TTL_ATTRIBUTE.into(), n(verification.expires_at));
    if let Some(user) = &verification.requested_by {
        item.insert("requested_by".into(), s(user.as_str()));
    }
    item
}

pub(super) fn verification_token_item(token: &VerificationToken) -> Item {
    let mut item = key_of(verification_token_pk(&token.hash));
    insert_address(&mut item, &token.address);
    item.insert("used".into(), b(token.used));
    item.insert(TTL_ATTRIBUTE.into(), n(token.expires_at));
    item
}

fn provider_token_item(token: &ProviderToken) -> Item {
    let mut item = identity_attributes(&token.identity, &token.profile);
    item.insert(PARTITION_KEY.into(), s(provider_token_pk(&token.hash)));
    item.insert("used".into(), b(token.used));
    item.insert(TTL_ATTRIBUTE.into(), n(token.expires_at));
    item
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
        requested_by: record.opt_parse("requested_by", UserId::parse)?,
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

pub(super) async fn put_verification(
    store: &DynamoStore,
    verification: &Verification,
) -> Result<(), DependencyError> {
    store
        .put("PutItem verification", verification_item(verification))
        .await
}

pub(super) async fn verification(
    store: &DynamoStore,
    id: &VerificationId,
) -> Result<Option<Verification>, DependencyError> {
    store
        .read(
            "GetItem verification",
            verification_pk(id),
            verification_from,
        )
        .await
}

pub(super) async fn record_wrong_code(
    store: &DynamoStore,
    id: &VerificationId,
    max_attempts: u32,
    now: UnixTime,
) -> Result<(), DependencyError> {
    let result = store
        .client
        .update_item()
        .table_name(&store.table)
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

/// One transaction: spend the verification and store its token (and, for a code a signed-in
/// account asked for, the memory that it verified the address: see `otp.rs`).
pub(super) async fn redeem_verification(
    store: &DynamoStore,
    id: &VerificationId,
    max_attempts: u32,
    now: UnixTime,
    token: &VerificationToken,
    remembered: Option<&VerifiedAddress>,
) -> Result<bool, DependencyError> {
    let mut items = vec![
        store.update_part(
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
        store.plain_put_part(verification_token_item(token))?,
    ];
    if let Some(memory) = remembered {
        items.push(store.plain_put_part(verified_address_item(memory))?);
    }
    let outcome = store
        .transact("TransactWriteItems redeem verification", items)
        .await;
    store
        .settle_spend(
            "redeem verification",
            outcome,
            verification_token_pk(&token.hash),
        )
        .await
}

pub(super) async fn verification_token(
    store: &DynamoStore,
    hash: &SecretHash,
) -> Result<Option<VerificationToken>, DependencyError> {
    store
        .read(
            "GetItem verification token",
            verification_token_pk(hash),
            verification_token_from,
        )
        .await
}

pub(super) async fn put_provider_token(
    store: &DynamoStore,
    token: &ProviderToken,
) -> Result<(), DependencyError> {
    store
        .put("PutItem provider token", provider_token_item(token))
        .await
}

pub(super) async fn provider_token(
    store: &DynamoStore,
    hash: &SecretHash,
) -> Result<Option<ProviderToken>, DependencyError> {
    store
        .read(
            "GetItem provider token",
            provider_token_pk(hash),
            provider_token_from,
        )
        .await
}

/// `Store::exchange_for_session`: one transaction that spends the proof, stores the session
/// and checks that `bound_by`, a login the proof names, still names the session's account.
pub(super) async fn exchange_for_session(
    store: &DynamoStore,
    proof: &Spend,
    bound_by: &LoginKey,
    now: UnixTime,
    session: &Session,
) -> Result<bool, DependencyError> {
    if !proof.login_keys().contains(bound_by) {
        return Ok(false);
    }
    let still_bound = store.condition_check_part(
        login_pk(&bound_by.storage_key()),
        "#user_id = :uid",
        &[("#user_id", "user_id")],
        vec![(":uid", s(session.user_id.as_str()))],
    )?;
    let items = vec![
        spend_part(store, proof, now)?,
        store.plain_put_part(session_item(session))?,
        still_bound,
    ];
    let outcome = store
        .transact("TransactWriteItems exchange for session", items)
        .await;
    store
        .settle_spend("exchange for session", outcome, session_pk(&session.id))
        .await
}
