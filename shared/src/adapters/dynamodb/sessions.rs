//! Sessions, their refresh tokens, and the sudo tokens that vouch for a recent sign-in.

use aws_sdk_dynamodb::types::{KeysAndAttributes, TransactWriteItem};

use super::item::{b, key_of, n, s, Item, Record};
use super::keys::{session_pk, sudo_pk, user_pk};
use super::records::{session_from, session_item, spend_part, user_from};
use super::{
    backoff, build_error, is_condition_failure, sdk_error, DynamoStore, MAX_ATTEMPTS,
    PARTITION_KEY, TTL_ATTRIBUTE,
};
use crate::domain::{SecretHash, Session, SessionId, SudoToken, UnixTime, User, UserId};
use crate::ports::{DependencyError, Spend};

fn sudo_item(token: &SudoToken) -> Item {
    let mut item = key_of(sudo_pk(&token.hash));
    item.insert("user_id".into(), s(token.user_id.as_str()));
    item.insert("session_id".into(), s(token.session_id.as_str()));
    item.insert(TTL_ATTRIBUTE.into(), n(token.expires_at));
    item.insert("epoch".into(), n(token.epoch));
    item
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

/// The session as stored after a write to it whose outcome is unknown; `None` when it is gone
/// or cannot be read.
async fn settled_session(store: &DynamoStore, id: &SessionId) -> Option<Session> {
    let item = store.settle(session_pk(id)).await.flatten()?;
    session_from(&item).ok()
}

/// Marks the sudo token's session as authenticated at `now`, provided it is alive.
fn authenticated_part(
    store: &DynamoStore,
    sudo: &SudoToken,
    now: UnixTime,
) -> Result<TransactWriteItem, DependencyError> {
    store.update_part(
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

pub(super) async fn create_session(
    store: &DynamoStore,
    session: &Session,
) -> Result<(), DependencyError> {
    store.put("PutItem session", session_item(session)).await
}

pub(super) async fn session(
    store: &DynamoStore,
    id: &SessionId,
) -> Result<Option<Session>, DependencyError> {
    store
        .read("GetItem session", session_pk(id), session_from)
        .await
}

pub(super) async fn session_and_user(
    store: &DynamoStore,
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
        let out = store
            .client
            .batch_get_item()
            .request_items(&store.table, request)
            .send()
            .await
            .map_err(|err| sdk_error(op, &err))?;
        let items = out
            .responses
            .and_then(|mut tables| tables.remove(&store.table))
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
            .and_then(|mut tables| tables.remove(&store.table))
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

pub(super) async fn rotate_refresh_token(
    store: &DynamoStore,
    id: &SessionId,
    current: &SecretHash,
    next: &SecretHash,
    generation: u32,
    expires_at: UnixTime,
    now: UnixTime,
) -> Result<bool, DependencyError> {
    let result = store
        .client
        .update_item()
        .table_name(&store.table)
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
            let rotated = settled_session(store, id)
                .await
                .is_some_and(|session| session.refresh_hash == *next && !session.revoked);
            if rotated {
                Ok(true)
            } else {
                Err(err)
            }
        }
    }
}

pub(super) async fn revoke_session(
    store: &DynamoStore,
    id: &SessionId,
) -> Result<(), DependencyError> {
    let result = store
        .client
        .update_item()
        .table_name(&store.table)
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
            let revoked = settled_session(store, id)
                .await
                .is_some_and(|session| session.revoked);
            if revoked {
                Ok(())
            } else {
                Err(err)
            }
        }
    }
}

/// `Store::grant_sudo`: one transaction that stores the token, marks the session as
/// authenticated and spends the proof, if any.
pub(super) async fn grant_sudo(
    store: &DynamoStore,
    token: &SudoToken,
    proof: Option<&Spend>,
    now: UnixTime,
) -> Result<bool, DependencyError> {
    let mut items = vec![
        store.plain_put_part(sudo_item(token))?,
        authenticated_part(store, token, now)?,
    ];
    if let Some(proof) = proof {
        items.push(spend_part(store, proof, now)?);
    }
    let outcome = store.transact("TransactWriteItems grant sudo", items).await;
    store
        .settle_spend("grant sudo", outcome, sudo_pk(&token.hash))
        .await
}

pub(super) async fn sudo_token(
    store: &DynamoStore,
    hash: &SecretHash,
) -> Result<Option<SudoToken>, DependencyError> {
    store
        .read("GetItem sudo token", sudo_pk(hash), sudo_from)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SessionLimits;

    #[test]
    fn sessions_keep_the_limits_their_sign_in_set() {
        let mut session = Session {
            id: SessionId::generate(),
            user_id: UserId::generate(),
            refresh_hash: SecretHash::from_hex(&"07".repeat(32)).unwrap(),
            expires_at: 1_700_003_600,
            revoked: false,
            created_at: 1_700_000_000,
            refreshed_at: 1_700_000_000,
            generation: 0,
            authenticated_at: 1_700_000_000,
            epoch: 1,
            limits: SessionLimits {
                ends_at: Some(1_700_086_400),
                access_token_ttl_secs: Some(600),
            },
        };
        let back = session_from(&session_item(&session)).unwrap();
        assert_eq!(back.limits, session.limits);
        session.limits = SessionLimits::default();
        let back = session_from(&session_item(&session)).unwrap();
        assert_eq!(back.limits, SessionLimits::default());
        assert_eq!(back.expires_at, session.expires_at);
    }
}
