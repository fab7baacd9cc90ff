//! The partition keys of every kind of item the table holds.

use crate::domain::{Address, LoginKey, SecretHash, SessionId, UserId, VerificationId};

pub(super) fn user_pk(id: &UserId) -> String {
    format!("USER#{}", id.as_str())
}

pub(super) fn login_pk(storage_key: &str) -> String {
    format!("LOGIN#{storage_key}")
}

/// A username given up, reserved for its last owner (`user_id`) until the item's TTL
/// attribute: kept apart from the login items, so that it never signs anyone in.
pub(super) fn username_hold_pk(storage_key: &str) -> String {
    format!("HOLD#{storage_key}")
}

pub(super) fn session_pk(id: &SessionId) -> String {
    format!("SESSION#{}", id.as_str())
}

pub(super) fn sudo_pk(hash: &SecretHash) -> String {
    format!("SUDO#{}", hash.to_hex())
}

pub(super) fn verification_pk(id: &VerificationId) -> String {
    format!("VERIF#{}", id.as_str())
}

pub(super) fn verification_token_pk(hash: &SecretHash) -> String {
    format!("VTOKEN#{}", hash.to_hex())
}

pub(super) fn provider_token_pk(hash: &SecretHash) -> String {
    format!("PTOKEN#{}", hash.to_hex())
}

/// The memory of one account having verified one address: one item per pair, so a later
/// verification of the same address by the same account replaces it.
pub(super) fn verified_address_pk(user_id: &UserId, address: &Address) -> String {
    format!(
        "VADDR#{}#{}",
        user_id.as_str(),
        LoginKey::Address(address.clone()).storage_key()
    )
}
