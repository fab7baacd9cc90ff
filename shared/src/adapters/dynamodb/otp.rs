//! Sign-in by code and the addresses a signed-in account verifies (issue 14): the memory item
//! (written by `codes::redeem_verification`), its `Spend::VerifiedAddress` part of `apply`, and
//! the transaction of `exchange_verification_for_session`.

use super::item::s;
use super::keys::{login_pk, session_pk};
use super::records::{session_item, spend_part};
use super::DynamoStore;
use crate::domain::{Address, LoginKey, SecretHash, Session, UnixTime};
use crate::ports::{DependencyError, Spend};

impl DynamoStore {
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
