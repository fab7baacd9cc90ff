//! Deleting an account: one `TransactWriteItems` of `Delete`s, each conditional (see
//! `Store::delete_account`).
//!
//! | item            | condition                                                       |
//! |-----------------|-----------------------------------------------------------------|
//! | `USER#<id>`     | `version = <the version read>`                                  |
//! | `LOGIN#<key>`   | `attribute_not_exists(pk) OR user_id = <id>`, one per login key  |
//! | `SUDO#<hash>`   | `user_id = <id> AND session_id = <sid> AND expires_at > <now>`, of the account's epoch |
//!
//! Sessions are keyed by their id alone and cannot be listed by account: they stay until their
//! TTL, holding no personal data (an account id, a refresh-token hash, times), and are refused
//! because their account is gone.

use aws_sdk_dynamodb::types::TransactWriteItem;

use super::item::{n, s};
use super::keys::{login_pk, sudo_pk, user_pk};
use super::records::sudo_condition;
use super::{DynamoStore, CONDITION_FAILED, PARTITION_KEY, TTL_ATTRIBUTE};
use crate::domain::LoginKey;
use crate::ports::{AccountDeletion, ChangeRejected, DependencyError};

/// What each item of the transaction stands for, to map cancellation reasons back.
enum Part {
    User,
    Login,
    Sudo,
}

impl DynamoStore {
    fn deletion_parts(
        &self,
        deletion: &AccountDeletion,
    ) -> Result<Vec<(Part, TransactWriteItem)>, DependencyError> {
        let user = &deletion.user;
        let uid = s(user.id.as_str());
        let mut parts = vec![(
            Part::User,
            self.delete_part(
                user_pk(&user.id),
                "#version = :version",
                &[("#version", "version")],
                vec![(":version", n(user.version))],
            )?,
        )];
        for key in user.login_keys() {
            parts.push((
                Part::Login,
                self.delete_part(
                    login_pk(&LoginKey::storage_key(&key)),
                    "attribute_not_exists(#pk) OR #user_id = :uid",
                    &[("#pk", PARTITION_KEY), ("#user_id", "user_id")],
                    vec![(":uid", uid.clone())],
                )?,
            ));
        }
        let sudo = &deletion.sudo;
        parts.push((
            Part::Sudo,
            self.delete_part(
                sudo_pk(&sudo.hash),
                sudo_condition(user.session_epoch),
                &[
                    ("#user_id", "user_id"),
                    ("#session_id", "session_id"),
                    ("#expires_at", TTL_ATTRIBUTE),
                    ("#epoch", "epoch"),
                ],
                // The account's own token: the account deleted, not the one the check names.
                vec![
                    (":sudo_uid", uid),
                    (":sid", s(sudo.session_id.as_str())),
                    (":now", n(deletion.now)),
                    (":epoch", n(user.session_epoch)),
                ],
            )?,
        ));
        Ok(parts)
    }

    /// Whether the deletion is in the table: the user item and the sudo token are both gone
    /// (which is also what a deletion of the same account with the same token, done before,
    /// leaves: done either way). `None` when that cannot be read.
    async fn deletion_landed(&self, deletion: &AccountDeletion) -> Option<bool> {
        let (user, sudo) = tokio::join!(
            self.settle(user_pk(&deletion.user.id)),
            self.settle(sudo_pk(&deletion.sudo.hash)),
        );
        Some(user?.is_none() && sudo?.is_none())
    }

    pub(super) async fn delete_account_items(
        &self,
        deletion: &AccountDeletion,
    ) -> Result<Result<(), ChangeRejected>, DependencyError> {
        let (parts, items): (Vec<Part>, Vec<TransactWriteItem>) =
            self.deletion_parts(deletion)?.into_iter().unzip();
        let codes = match self
            .transact("TransactWriteItems delete account", items)
            .await
        {
            Ok(Ok(())) => return Ok(Ok(())),
            Ok(Err(codes)) => codes,
            // Every attempt failed, but one whose answer was lost may have committed.
            Err(err) => {
                return match self.deletion_landed(deletion).await {
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
        // The embedded store's precedence: the version, then the sudo token.
        if failed(|p| matches!(p, Part::User)) {
            return match self.deletion_landed(deletion).await {
                Some(true) => Ok(Ok(())),
                Some(false) => Ok(Err(ChangeRejected::Stale)),
                None => Err(DependencyError(
                    "DynamoDB delete account: the account changed, and whether by this call is unknown"
                        .to_string(),
                )),
            };
        }
        if failed(|p| matches!(p, Part::Sudo)) {
            return Ok(Err(ChangeRejected::Sudo));
        }
        // Only a login key failed: the account's record lists a key another account holds.
        Err(DependencyError(
            "DynamoDB delete account: a login key of the account is held by another account"
                .to_string(),
        ))
    }
}
