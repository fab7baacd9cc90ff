//! Sign-in by code and the addresses a signed-in account verifies (issue 14): the memory item
//! (written by `codes::redeem_verification`), its `Spend::VerifiedAddress` part of `apply`, and
//! the transaction of `exchange_verification_for_session`.

use aws_sdk_dynamodb::types::TransactWriteItem;

use super::accounts::login_pk;
use super::codes::spend_part;
use super::item::{b, key_of, n, s, Item};
use super::sessions::{session_item, session_pk};
use super::{DynamoStore, PARTITION_KEY, TTL_ATTRIBUTE};
use crate::domain::{Address, LoginKey, SecretHash, Session, UnixTime, UserId, VerifiedAddress};
use crate::ports::{DependencyError, Spend};

/// The memory of one account having verified one address: one item per pair, so a later
/// verification of the same address by the same account replaces it.
pub(super) fn verified_address_pk(user_id: &UserId, address: &Address) -> String {
    format!(
        "VADDR#{}#{}",
        user_id.as_str(),
        LoginKey::Address(address.clone()).storage_key()
    )
}

pub(super) fn verified_address_item(memory: &VerifiedAddress) -> Item {
    let mut item = key_of(verified_address_pk(&memory.user_id, &memory.address));
    item.insert("used".into(), b(false));
    item.insert(TTL_ATTRIBUTE.into(), n(memory.expires_at));
    item
}

impl DynamoStore {
    /// Spends the memory: valid only while it exists, is unused and alive.
    pub(super) fn verified_address_spend_part(
        &self,
        user_id: &UserId,
        address: &Address,
        now: UnixTime,
    ) -> Result<TransactWriteItem, DependencyError> {
        self.update_part(
            verified_address_pk(user_id, address),
            "SET #used = :true",
            "attribute_exists(#pk) AND #used = :false AND #expires_at > :now",
            &[
                ("#pk", PARTITION_KEY),
                ("#used", "used"),
                ("#expires_at", TTL_ATTRIBUTE),
            ],
            vec![(":true", b(true)), (":false", b(false)), (":now", n(now))],
        )
    }

    /// One transaction: spend the verification token, store the session, and check that the
    /// address's login key still names the session's account.
    pub(super) async fn code_for_session(
        &self,
        verification_token: &SecretHash,
        address: &Address,
        now: UnixTime,
        session: &Session,
    ) -> Result<bool, DependencyError> {
        let spend = Spend::Verification {
            hash: verification_token.clone(),
            address: address.clone(),
        };
        let items = vec![
            spend_part(self, &spend, now)?,
            self.plain_put_part(session_item(session))?,
            self.condition_check_part(
                login_pk(&LoginKey::Address(address.clone()).storage_key()),
                "#user_id = :uid",
                &[("#user_id", "user_id")],
                vec![(":uid", s(session.user_id.as_str()))],
            )?,
        ];
        let outcome = self
            .transact("TransactWriteItems sign in by code", items)
            .await;
        self.settle_spend("sign in by code", outcome, session_pk(&session.id))
            .await
    }
}
