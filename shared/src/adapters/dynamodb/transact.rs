//! Transactions: building their parts, running them, and reading their answers.

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update,
};

use super::item::{key_of, Item};
use super::{backoff, build_error, sdk_error, DynamoStore, CONDITION_FAILED, MAX_ATTEMPTS};
use crate::ports::DependencyError;

/// Cancellation reasons worth another try: nothing was wrong with the request itself.
const TRANSIENT_REASONS: &[&str] = &[
    "None",
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
];

/// The attribute names a part's expressions use, left out rather than empty: DynamoDB rejects
/// an empty map.
fn attribute_names(names: &[(&str, &str)]) -> Option<HashMap<String, String>> {
    (!names.is_empty()).then(|| {
        names
            .iter()
            .map(|(placeholder, name)| (placeholder.to_string(), name.to_string()))
            .collect()
    })
}

/// The values a part's expressions use, left out rather than empty like the names.
fn attribute_values(values: Vec<(&str, AttributeValue)>) -> Option<Item> {
    (!values.is_empty()).then(|| {
        values
            .into_iter()
            .map(|(placeholder, value)| (placeholder.to_string(), value))
            .collect()
    })
}

impl DynamoStore {
    /// The answer of a transaction that spends something (its first item) and stores the fresh
    /// token or session `earned` it earns: true when it committed, false when a condition
    /// failed. A failed condition or a failed call is checked against `earned`: an earlier
    /// attempt whose answer was lost may have committed it.
    pub(super) async fn settle_spend(
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
    pub(super) async fn transact(
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

    pub(super) fn put_part(
        &self,
        item: Item,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<TransactWriteItem, DependencyError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_names(attribute_names(names))
            .set_expression_attribute_values(attribute_values(values))
            .build()
            .map_err(|e| build_error("TransactWriteItems", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    pub(super) fn plain_put_part(&self, item: Item) -> Result<TransactWriteItem, DependencyError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .map_err(|e| build_error("TransactWriteItems", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    pub(super) fn update_part(
        &self,
        pk: String,
        update: &str,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<TransactWriteItem, DependencyError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_of(pk)))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(attribute_names(names))
            .set_expression_attribute_values(attribute_values(values))
            .build()
            .map_err(|e| build_error("TransactWriteItems", e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    pub(super) fn delete_part(
        &self,
        pk: String,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<TransactWriteItem, DependencyError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key_of(pk)))
            .condition_expression(condition)
            .set_expression_attribute_names(attribute_names(names))
            .set_expression_attribute_values(attribute_values(values))
            .build()
            .map_err(|e| build_error("TransactWriteItems", e))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// A condition on an item the transaction does not write.
    pub(super) fn condition_check_part(
        &self,
        pk: String,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<TransactWriteItem, DependencyError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key_of(pk)))
            .condition_expression(condition)
            .set_expression_attribute_names(attribute_names(names))
            .set_expression_attribute_values(attribute_values(values))
            .build()
            .map_err(|e| build_error("TransactWriteItems", e))?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }
}
