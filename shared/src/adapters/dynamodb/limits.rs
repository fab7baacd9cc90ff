//! Rate limits: cooldowns (one event per key until a time) and counters (events per window).

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::item::{key_of, n, s, Record};
use super::{
    backoff, is_condition_failure, sdk_error, DynamoStore, MAX_ATTEMPTS, PARTITION_KEY,
    TTL_ATTRIBUTE,
};
use crate::domain::UnixTime;
use crate::ports::{CountDecision, DependencyError, LimitDecision};

fn cooldown_pk(key: &str) -> String {
    format!("COOLDOWN#{key}")
}

fn counter_pk(key: &str, window_start: UnixTime) -> String {
    format!("COUNT#{key}#{window_start}")
}

pub(super) async fn acquire_cooldown(
    store: &DynamoStore,
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
        let result = store
            .client
            .put_item()
            .table_name(&store.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(#pk) OR #expires_at <= :now OR #holder = :holder",
            )
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
            .expression_attribute_names("#holder", "holder")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":holder", s(holder.as_str()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(Ok(())),
            Err(err) if is_condition_failure(&err) => err,
            Err(err) => {
                let err = sdk_error(op, &err);
                // Every attempt failed, but one whose answer was lost may have taken it.
                let ours = store
                    .settle(cooldown_pk(key))
                    .await
                    .flatten()
                    .is_some_and(|item| item.get("holder") == Some(&s(holder.as_str())));
                return if ours { Ok(Ok(())) } else { Err(err) };
            }
        };
        let returned = err.as_service_error().and_then(|e| match e {
            PutItemError::ConditionalCheckFailedException(failed) => failed.item().cloned(),
            _ => None,
        });
        let holder = match returned {
            Some(item) => Some(item),
            None => store.get("GetItem cooldown", cooldown_pk(key)).await?,
        };
        if let Some(holder) = holder {
            let busy_until: UnixTime = Record::new(&holder, "cooldown").number(TTL_ATTRIBUTE)?;
            if busy_until > now {
                return Ok(Err(busy_until));
            }
        }
        // The holder expired or vanished since the condition was evaluated: try again.
        backoff(attempt).await;
    }
    Ok(Err(until))
}

pub(super) async fn release_cooldown(
    store: &DynamoStore,
    key: &str,
    until: UnixTime,
) -> Result<(), DependencyError> {
    let result = store
        .client
        .delete_item()
        .table_name(&store.table)
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

pub(super) async fn count_event(
    store: &DynamoStore,
    key: &str,
    limit: u32,
    window_secs: i64,
    now: UnixTime,
) -> Result<CountDecision, DependencyError> {
    let remainder = now
        .checked_rem_euclid(window_secs)
        .ok_or_else(|| DependencyError("count_event: the window must not be zero".to_string()))?;
    let window_start = now - remainder;
    let window_end = window_start + window_secs;
    if limit == 0 {
        return Ok(Err(window_end));
    }
    let result = store
        .client
        .update_item()
        .table_name(&store.table)
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

pub(super) async fn uncount_event(
    store: &DynamoStore,
    key: &str,
    window_secs: i64,
    counted_at: UnixTime,
) -> Result<(), DependencyError> {
    let window_start = counted_at - counted_at.rem_euclid(window_secs.max(1));
    let result = store
        .client
        .update_item()
        .table_name(&store.table)
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
