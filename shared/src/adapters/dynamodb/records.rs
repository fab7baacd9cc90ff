//! The items and transaction parts that more than one kind of store operation reads or
//! writes: users, sessions, verified-address memories, and the conditions that spend a token
//! or check a sudo token.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};

use super::item::{b, key_of, n, s, Item, Record};
use super::keys::{provider_token_pk, session_pk, verification_token_pk, verified_address_pk};
use super::{DynamoStore, PARTITION_KEY, TTL_ATTRIBUTE};
use crate::domain::{
    Address, CustomUid, DisplayName, Email, Gender, PhoneNumber, Picture, ProviderLink, Session,
    SessionId, SessionLimits, UnixTime, User, UserId, Username, VerifiedAddress,
};
use crate::ports::{DependencyError, Spend};

pub(super) fn user_from(item: &Item) -> Result<User, DependencyError> {
    let record = Record::new(item, "user");
    let providers = match record.value("providers") {
        None => Vec::new(),
        Some(AttributeValue::L(links)) => links
            .iter()
            .map(|link| match link {
                AttributeValue::M(map) => Record::new(map, "user provider")
                    .identity()
                    .map(|(identity, profile)| ProviderLink { identity, profile }),
                _ => Err(record.malformed("providers")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(record.malformed("providers")),
    };
    Ok(User {
        id: UserId::parse(record.key_suffix("USER#")?)
            .map_err(|_| record.malformed(PARTITION_KEY))?,
        username: record.opt_parse("username", Username::parse)?,
        email: record.opt_parse("email", Email::parse)?,
        phone: record.opt_parse("phone", PhoneNumber::from_e164)?,
        name: record.opt_parse("name", DisplayName::parse)?,
        password_hash: record.opt_str("password_hash")?.map(str::to_string),
        providers,
        custom_uid: record.opt_parse("custom_uid", CustomUid::parse)?,
        picture: record.opt_parse("picture", |raw| Picture::parse("picture", raw))?,
        gender: record.opt_parse("gender", Gender::parse)?.flatten(),
        created_at: record.number("created_at")?,
        updated_at: record.number("updated_at")?,
        version: record.number("version")?,
        // Items stored before the epoch existed are of the first one.
        session_epoch: record.opt_number("session_epoch")?.unwrap_or(0),
        expires_at: record.opt_number(TTL_ATTRIBUTE)?,
    })
}

pub(super) fn session_item(session: &Session) -> Item {
    let mut item = key_of(session_pk(&session.id));
    item.insert("user_id".into(), s(session.user_id.as_str()));
    item.insert("refresh_hash".into(), s(session.refresh_hash.to_hex()));
    item.insert("revoked".into(), b(session.revoked));
    item.insert(TTL_ATTRIBUTE.into(), n(session.expires_at));
    item.insert("created_at".into(), n(session.created_at));
    item.insert("refreshed_at".into(), n(session.refreshed_at));
    item.insert("generation".into(), n(session.generation));
    item.insert("authenticated_at".into(), n(session.authenticated_at));
    item.insert("epoch".into(), n(session.epoch));
    if let Some(end) = session.limits.ends_at {
        item.insert("ends_at".into(), n(end));
    }
    if let Some(ttl) = session.limits.access_token_ttl_secs {
        item.insert("access_token_ttl_secs".into(), n(ttl));
    }
    item
}

pub(super) fn session_from(item: &Item) -> Result<Session, DependencyError> {
    let record = Record::new(item, "session");
    let created_at = record.opt_number("created_at")?.unwrap_or(0);
    Ok(Session {
        id: SessionId::parse(record.key_suffix("SESSION#")?)
            .map_err(|_| record.malformed(PARTITION_KEY))?,
        user_id: record.parse("user_id", UserId::parse)?,
        refresh_hash: record.hash("refresh_hash")?,
        expires_at: record.number(TTL_ATTRIBUTE)?,
        revoked: record.bool("revoked")?,
        // Sessions stored before these attributes existed read as of unknown age (0).
        created_at,
        refreshed_at: record.opt_number("refreshed_at")?.unwrap_or(created_at),
        generation: record.opt_number("generation")?.unwrap_or(0),
        authenticated_at: record.opt_number("authenticated_at")?.unwrap_or(created_at),
        epoch: record.opt_number("epoch")?.unwrap_or(0),
        limits: SessionLimits {
            ends_at: record.opt_number("ends_at")?,
            access_token_ttl_secs: record.opt_number("access_token_ttl_secs")?,
        },
    })
}

pub(super) fn verified_address_item(memory: &VerifiedAddress) -> Item {
    let mut item = key_of(verified_address_pk(&memory.user_id, &memory.address));
    item.insert("used".into(), b(false));
    item.insert(TTL_ATTRIBUTE.into(), n(memory.expires_at));
    item
}

/// The update that spends a token, valid only while it is unused, alive and for exactly
/// the spend's address or identity.
pub(super) fn spend_part(
    store: &DynamoStore,
    spend: &Spend,
    now: UnixTime,
) -> Result<TransactWriteItem, DependencyError> {
    let common = "attribute_exists(#pk) AND #used = :false AND #expires_at > :now";
    match spend {
        Spend::Verification { hash, address } => store.update_part(
            verification_token_pk(hash),
            "SET #used = :true",
            &format!("{common} AND #address_kind = :address_kind AND #address = :address"),
            &[
                ("#pk", PARTITION_KEY),
                ("#used", "used"),
                ("#expires_at", TTL_ATTRIBUTE),
                ("#address_kind", "address_kind"),
                ("#address", "address"),
            ],
            vec![
                (":true", b(true)),
                (":false", b(false)),
                (":now", n(now)),
                (":address_kind", s(address.kind().as_str())),
                (":address", s(address.stored())),
            ],
        ),
        Spend::Provider { hash, identity } => store.update_part(
            provider_token_pk(hash),
            "SET #used = :true",
            &format!("{common} AND #provider = :provider AND #subject = :subject"),
            &[
                ("#pk", PARTITION_KEY),
                ("#used", "used"),
                ("#expires_at", TTL_ATTRIBUTE),
                ("#provider", "provider"),
                ("#subject", "subject"),
            ],
            vec![
                (":true", b(true)),
                (":false", b(false)),
                (":now", n(now)),
                (":provider", s(identity.provider.as_str())),
                (":subject", s(identity.subject.as_str())),
            ],
        ),
        Spend::VerifiedAddress { user_id, address } => {
            verified_address_spend_part(store, user_id, address, now)
        }
    }
}

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

/// Spends the memory: valid only while it exists, is unused and alive.
fn verified_address_spend_part(
    store: &DynamoStore,
    user_id: &UserId,
    address: &Address,
    now: UnixTime,
) -> Result<TransactWriteItem, DependencyError> {
    store.update_part(
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
