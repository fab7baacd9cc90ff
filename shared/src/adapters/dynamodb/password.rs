//! Password changes and the session epoch: the one account change that also keeps a session.

use aws_sdk_dynamodb::types::TransactWriteItem;

use super::{
    b, n, s, session_pk, DependencyError, DynamoStore, Part, CONDITION_FAILED, TTL_ATTRIBUTE,
};
use crate::domain::SessionId;
use crate::ports::{AccountChange, ChangeRejected};

/// The condition of the sudo token an account change checks: alive, this session's, and of
/// the account's epoch as the change read it. A token stored before tokens carried an epoch is
/// of epoch 0.
pub(super) fn sudo_condition(epoch: u64) -> &'static str {
    if epoch == 0 {
        "#user_id = :sudo_uid AND #session_id = :sid AND #expires_at > :now \
         AND (attribute_not_exists(#epoch) OR #epoch = :epoch)"
    } else {
        "#user_id = :sudo_uid AND #session_id = :sid AND #expires_at > :now AND #epoch = :epoch"
    }
}

impl DynamoStore {
    /// `Store::apply_keeping_session`: `apply`'s transaction plus an `Update` moving the kept
    /// session to the new epoch, conditional on it being alive and the account's.
    pub(super) async fn apply_keeping(
        &self,
        change: &AccountChange,
        session: &SessionId,
    ) -> Result<Result<(), ChangeRejected>, DependencyError> {
        let mut parts = self.apply_parts(change)?;
        parts.push((
            Part::KeptSession,
            self.update_part(
                session_pk(session),
                "SET #epoch = :epoch",
                "#user_id = :uid AND #revoked = :false AND #expires_at > :now",
                &[
                    ("#epoch", "epoch"),
                    ("#user_id", "user_id"),
                    ("#revoked", "revoked"),
                    ("#expires_at", TTL_ATTRIBUTE),
                ],
                vec![
                    (":epoch", n(change.after.session_epoch)),
                    (":uid", s(change.after.id.as_str())),
                    (":false", b(false)),
                    (":now", n(change.now)),
                ],
            )?,
        ));
        let (parts, items): (Vec<Part>, Vec<TransactWriteItem>) = parts.into_iter().unzip();
        let codes = match self
            .transact("TransactWriteItems change password", items)
            .await
        {
            Ok(Ok(())) => return Ok(Ok(())),
            Ok(Err(codes)) => codes,
            // Every attempt failed, but one whose answer was lost may have committed: the user
            // item, whose version is new, tells (the session moved in the same transaction).
            Err(err) => {
                return match self.change_landed(change).await {
                    Some(true) => Ok(Ok(())),
                    _ => Err(err),
                }
            }
        };
        let failed = |wanted: fn(&Part) -> bool| {
            parts
                .iter()
                .zip(&codes)
                .any(|(part, code)| wanted(part) && code == CONDITION_FAILED)
        };
        // `apply`'s precedence; the kept session counts as the sudo check, which it backs.
        if failed(|p| matches!(p, Part::User)) {
            return match self.change_landed(change).await {
                Some(true) => Ok(Ok(())),
                Some(false) => Ok(Err(ChangeRejected::Stale)),
                None => Err(DependencyError(
                    "DynamoDB change password: the account changed, and whether by this change is unknown"
                        .to_string(),
                )),
            };
        }
        if failed(|p| matches!(p, Part::Sudo | Part::KeptSession)) {
            return Ok(Err(ChangeRejected::Sudo));
        }
        if failed(|p| matches!(p, Part::Spend)) {
            return Ok(Err(ChangeRejected::Token));
        }
        // A password change keeps the account's keys: only a key held by another account,
        // which the account's record lists, fails here.
        Err(DependencyError(
            "DynamoDB change password: a login key the account keeps is held by another account"
                .to_string(),
        ))
    }
}
