//! Users and their login keys (username, email, phone and provider identities), and the one
//! transaction that changes an account.

use std::collections::HashSet;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};

use super::item::{b, identity_attributes, key_of, n, s, Item, Record};
use super::keys::{
    login_pk, provider_token_pk, session_pk, sudo_pk, user_pk, username_hold_pk,
    verification_token_pk, verified_address_pk,
};
use super::records::{session_from, session_item, spend_part, sudo_condition, user_from};
use super::{sdk_error, DynamoStore, CONDITION_FAILED, PARTITION_KEY, TTL_ATTRIBUTE};
use crate::domain::{LoginKey, SessionId, UnixTime, User, UserId};
use crate::ports::{
    AccountChange, AccountListing, ChangeRejected, DependencyError, Directory, Login, Spend,
};

fn user_item(user: &User) -> Item {
    let mut item = key_of(user_pk(&user.id));
    if let Some(username) = &user.username {
        item.insert("username".into(), s(username.as_str()));
    }
    if let Some(email) = &user.email {
        item.insert("email".into(), s(email.as_str()));
    }
    if let Some(phone) = &user.phone {
        item.insert("phone".into(), s(phone.e164()));
    }
    if let Some(name) = &user.name {
        item.insert("name".into(), s(name.as_str()));
    }
    if let Some(hash) = &user.password_hash {
        item.insert("password_hash".into(), s(hash.as_str()));
    }
    let providers = user
        .providers
        .iter()
        .map(|link| AttributeValue::M(identity_attributes(&link.identity, &link.profile)))
        .collect();
    item.insert("providers".into(), AttributeValue::L(providers));
    if let Some(uid) = &user.custom_uid {
        item.insert("custom_uid".into(), s(uid.as_str()));
    }
    if let Some(picture) = &user.picture {
        item.insert("picture".into(), s(picture.as_str()));
    }
    if let Some(gender) = user.gender {
        item.insert("gender".into(), s(gender.as_str()));
    }
    item.insert("created_at".into(), n(user.created_at));
    item.insert("updated_at".into(), n(user.updated_at));
    item.insert("version".into(), n(user.version));
    item.insert("session_epoch".into(), n(user.session_epoch));
    if let Some(end) = user.expires_at {
        item.insert(TTL_ATTRIBUTE.into(), n(end));
    }
    item
}

fn login_item(storage_key: &str, user: &User) -> Item {
    let mut item = key_of(login_pk(storage_key));
    item.insert("user_id".into(), s(user.id.as_str()));
    if let Some(hash) = &user.password_hash {
        item.insert("password_hash".into(), s(hash.as_str()));
    }
    item.insert("session_epoch".into(), n(user.session_epoch));
    item
}

fn login_from(item: &Item) -> Result<Login, DependencyError> {
    let record = Record::new(item, "login");
    Ok(Login {
        user_id: record.parse("user_id", UserId::parse)?,
        password_hash: record.opt_str("password_hash")?.map(str::to_string),
        session_epoch: record.opt_number("session_epoch")?.unwrap_or(0),
    })
}

/// What each item of the `apply` transaction stands for, to map cancellation reasons back.
enum Part {
    User,
    Reserve(LoginKey),
    /// A login key the account keeps, rewritten because the password hash it repeats changed.
    Refresh,
    Release,
    /// The username given up, reserved for the account.
    Hold,
    Sudo,
    Spend,
    Session,
    /// The session a password change keeps, moved to the new epoch.
    KeptSession,
}

/// Whether `change` is in the table: the user item is exactly its `after` state and the
/// token it spends is spent. `None` when that cannot be read.
async fn change_landed(store: &DynamoStore, change: &AccountChange) -> Option<bool> {
    let Some(item) = store.settle(user_pk(&change.after.id)).await? else {
        return Some(false);
    };
    let Ok(stored) = user_from(&item) else {
        return Some(false);
    };
    if user_item(&stored) != user_item(&change.after) {
        return Some(false);
    }
    let token_pk = match &change.spend {
        None => return Some(true),
        Some(Spend::Verification { hash, .. }) => verification_token_pk(hash),
        Some(Spend::Provider { hash, .. }) => provider_token_pk(hash),
        Some(Spend::VerifiedAddress { user_id, address }) => verified_address_pk(user_id, address),
    };
    let token = store.settle(token_pk).await?;
    Some(
        token
            .as_ref()
            .and_then(|item| Record::new(item, "token").bool("used").ok())
            == Some(true),
    )
}

fn apply_parts(
    store: &DynamoStore,
    change: &AccountChange,
) -> Result<Vec<(Part, TransactWriteItem)>, DependencyError> {
    let uid = s(change.after.id.as_str());
    let mut parts = Vec::new();

    let user = user_item(&change.after);
    let user_part = match &change.before {
        None => store.put_part(
            user,
            "attribute_not_exists(#pk)",
            &[("#pk", PARTITION_KEY)],
            vec![],
        )?,
        Some(before) => store.put_part(
            user,
            "#version = :version",
            &[("#version", "version")],
            vec![(":version", n(before.version))],
        )?,
    };
    parts.push((Part::User, user_part));

    let before_keys: Vec<LoginKey> = change.before.iter().flat_map(User::login_keys).collect();
    let before_storage: HashSet<String> = before_keys.iter().map(LoginKey::storage_key).collect();
    let after_keys = change.after.login_keys();
    let after_storage: HashSet<String> = after_keys.iter().map(LoginKey::storage_key).collect();

    let owned = "attribute_not_exists(#pk) OR #user_id = :uid";
    // The keys repeat the password hash and the session epoch.
    let password_changed = change.before.as_ref().is_some_and(|before| {
        before.password_hash != change.after.password_hash
            || before.session_epoch != change.after.session_epoch
    });
    let mut seen = HashSet::new();
    for key in after_keys {
        let storage_key = key.storage_key();
        let kept = before_storage.contains(&storage_key);
        if (kept && !password_changed) || !seen.insert(storage_key.clone()) {
            continue;
        }
        let part = store.put_part(
            login_item(&storage_key, &change.after),
            owned,
            &[("#pk", PARTITION_KEY), ("#user_id", "user_id")],
            vec![(":uid", uid.clone())],
        )?;
        if kept {
            parts.push((Part::Refresh, part));
            continue;
        }
        if matches!(key, LoginKey::Username(_)) {
            // Free unless another account gave it up less than its hold ago. A rename also
            // removes the hold (its owner takes the name back, or it ended); a new account
            // cannot own one, so a sign-up only checks it (and needs no DeleteItem).
            let pk = username_hold_pk(&storage_key);
            let condition = "attribute_not_exists(#pk) OR #user_id = :uid OR #held_until <= :now";
            let names = [
                ("#pk", PARTITION_KEY),
                ("#user_id", "user_id"),
                ("#held_until", TTL_ATTRIBUTE),
            ];
            let values = vec![(":uid", uid.clone()), (":now", n(change.now))];
            let hold = match change.before {
                None => store.condition_check_part(pk, condition, &names, values)?,
                Some(_) => store.delete_part(pk, condition, &names, values)?,
            };
            parts.push((Part::Reserve(key.clone()), hold));
        }
        parts.push((Part::Reserve(key), part));
    }
    let mut released = HashSet::new();
    for key in &before_keys {
        let storage_key = key.storage_key();
        if after_storage.contains(&storage_key) || !released.insert(storage_key.clone()) {
            continue;
        }
        let part = store.delete_part(
            login_pk(&storage_key),
            owned,
            &[("#pk", PARTITION_KEY), ("#user_id", "user_id")],
            vec![(":uid", uid.clone())],
        )?;
        parts.push((Part::Release, part));
        if matches!(key, LoginKey::Username(_)) {
            let mut hold = key_of(username_hold_pk(&storage_key));
            hold.insert("user_id".into(), uid.clone());
            hold.insert(TTL_ATTRIBUTE.into(), n(change.username_held_until));
            parts.push((Part::Hold, store.plain_put_part(hold)?));
        }
    }

    if let Some(sudo) = &change.sudo {
        let epoch = change.before.as_ref().map_or(0, |u| u.session_epoch);
        let part = store.condition_check_part(
            sudo_pk(&sudo.hash),
            sudo_condition(epoch),
            &[
                ("#user_id", "user_id"),
                ("#session_id", "session_id"),
                ("#expires_at", TTL_ATTRIBUTE),
                ("#epoch", "epoch"),
            ],
            vec![
                (":sudo_uid", s(sudo.user_id.as_str())),
                (":sid", s(sudo.session_id.as_str())),
                (":now", n(change.now)),
                (":epoch", n(epoch)),
            ],
        )?;
        parts.push((Part::Sudo, part));
    }

    if let Some(spend) = &change.spend {
        parts.push((Part::Spend, spend_part(store, spend, change.now)?));
    }
    if let Some(session) = &change.session {
        parts.push((Part::Session, store.plain_put_part(session_item(session))?));
    }
    Ok(parts)
}

pub(super) async fn user(
    store: &DynamoStore,
    id: &UserId,
) -> Result<Option<User>, DependencyError> {
    store.read("GetItem user", user_pk(id), user_from).await
}

pub(super) async fn login(
    store: &DynamoStore,
    key: &LoginKey,
) -> Result<Option<Login>, DependencyError> {
    store
        .read("GetItem login", login_pk(&key.storage_key()), login_from)
        .await
}

/// The `Update` that moves the session a password change keeps to the account's new epoch,
/// conditional on it being alive and the account's.
fn kept_session_part(
    store: &DynamoStore,
    change: &AccountChange,
    session: &SessionId,
) -> Result<TransactWriteItem, DependencyError> {
    store.update_part(
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
    )
}

/// `Store::apply`: one transaction, the kept session included (it moves with the account's
/// new version, so `change_landed` also tells whether it moved).
pub(super) async fn apply(
    store: &DynamoStore,
    change: &AccountChange,
) -> Result<Result<(), ChangeRejected>, DependencyError> {
    if change.spends_another_accounts_memory() {
        return Ok(Err(ChangeRejected::Token));
    }
    let mut parts = apply_parts(store, change)?;
    if let Some(session) = &change.keep_session {
        parts.push((
            Part::KeptSession,
            kept_session_part(store, change, session)?,
        ));
    }
    let (parts, items): (Vec<Part>, Vec<TransactWriteItem>) = parts.into_iter().unzip();
    let codes = match store.transact("TransactWriteItems apply", items).await {
        Ok(Ok(())) => return Ok(Ok(())),
        Ok(Err(codes)) => codes,
        // Every attempt failed, but one whose answer was lost may have committed.
        Err(err) => {
            return match change_landed(store, change).await {
                Some(true) => {
                    tracing::info!("a DynamoDB transaction committed although its answer was lost");
                    Ok(Ok(()))
                }
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
    // The embedded store's precedence: the version, the sudo token, the token, the keys.
    if failed(|p| matches!(p, Part::User)) {
        // An earlier attempt of this very call, whose answer was lost, moves the version
        // too: then the change is done.
        return match change_landed(store, change).await {
            Some(true) => Ok(Ok(())),
            Some(false) => Ok(Err(ChangeRejected::Stale)),
            None => Err(DependencyError(
                "DynamoDB apply: the account changed, and whether by this change is unknown"
                    .to_string(),
            )),
        };
    }
    // The kept session counts as the sudo check, which it backs.
    if failed(|p| matches!(p, Part::Sudo | Part::KeptSession)) {
        return Ok(Err(ChangeRejected::Sudo));
    }
    if failed(|p| matches!(p, Part::Spend)) {
        return Ok(Err(ChangeRejected::Token));
    }
    let taken = parts
        .into_iter()
        .zip(&codes)
        .find_map(|(part, code)| match part {
            Part::Reserve(key) if code == CONDITION_FAILED => Some(key),
            _ => None,
        });
    if let Some(key) = taken {
        return Ok(Err(ChangeRejected::Taken(key)));
    }
    // Only a release or refresh failed: the account's record lists a key another account
    // holds.
    Err(DependencyError(
        "DynamoDB apply: a login key the account keeps or releases is held by another account"
            .to_string(),
    ))
}

#[async_trait]
impl Directory for DynamoStore {
    /// Pages through a consistent `Scan` of the users and sessions.
    async fn accounts(&self, now: UnixTime) -> Result<Vec<AccountListing>, DependencyError> {
        let op = "Scan users and sessions";
        let (mut users, mut sessions) = (Vec::new(), Vec::new());
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .filter_expression("begins_with(#pk, :user) OR begins_with(#pk, :session)")
                .expression_attribute_names("#pk", PARTITION_KEY)
                .expression_attribute_values(":user", s("USER#"))
                .expression_attribute_values(":session", s("SESSION#"))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|err| sdk_error(op, &err))?;
            for item in page.items() {
                match item.get(PARTITION_KEY) {
                    Some(AttributeValue::S(pk)) if pk.starts_with("USER#") => {
                        users.push(user_from(item)?)
                    }
                    _ => sessions.push(session_from(item)?),
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(AccountListing::assemble(users, sessions, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        CustomUid, DisplayName, Email, Gender, PhoneNumber, Picture, ProviderId, ProviderIdentity,
        ProviderLink, ProviderProfile, Username,
    };

    fn user() -> User {
        User {
            id: UserId::generate(),
            username: Some(Username::parse("alice").unwrap()),
            email: Some(Email::parse("alice@example.com").unwrap()),
            phone: Some(PhoneNumber::parse("+86 13800000000", "86").unwrap()),
            name: Some(DisplayName::parse("Alice").unwrap()),
            password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
            providers: vec![ProviderLink {
                identity: ProviderIdentity {
                    provider: ProviderId::WxOpen,
                    subject: "o6_bmasdasdsad6_2sgVt7hMZOPfL".into(),
                    app_subject: "oPEN_bmasdasdsad6_2sgVt7hMZOP".into(),
                },
                profile: ProviderProfile {
                    name: DisplayName::from_provider("阿丽"),
                    picture: None,
                },
            }],
            custom_uid: Some(CustomUid::parse("Emp#0042").unwrap()),
            picture: Some(Picture::parse("picture", "https://example.com/a.png").unwrap()),
            gender: Some(Gender::Female),
            created_at: 1_700_000_000,
            updated_at: 1_700_000_100,
            version: 3,
            session_epoch: 2,
            expires_at: None,
        }
    }

    #[test]
    fn users_round_trip_through_items() {
        let user = user();
        let back = user_from(&user_item(&user)).unwrap();
        assert_eq!(back.id, user.id);
        assert_eq!(back.username, user.username);
        assert_eq!(back.email, user.email);
        assert_eq!(back.phone, user.phone);
        assert_eq!(back.name, user.name);
        assert_eq!(back.password_hash, user.password_hash);
        assert_eq!(back.providers, user.providers);
        assert_eq!(back.custom_uid, user.custom_uid);
        assert_eq!((back.picture, back.gender), (user.picture, user.gender));
        assert_eq!(back.session_epoch, 2);
        assert_eq!(
            (back.created_at, back.updated_at, back.version),
            (1_700_000_000, 1_700_000_100, 3)
        );
    }

    #[test]
    fn malformed_items_are_dependency_errors_naming_only_the_attribute() {
        let mut item = user_item(&user());
        item.insert("email".into(), s("not an email"));
        let err = user_from(&item).unwrap_err();
        assert!(err.0.contains("`email`"), "{err}");
        assert!(!err.0.contains("not an email"), "{err}");

        let mut item = user_item(&user());
        item.insert("version".into(), s("3"));
        assert!(user_from(&item).is_err());

        let mut item = user_item(&user());
        item.insert("providers".into(), AttributeValue::L(vec![s("x")]));
        assert!(user_from(&item).is_err());

        let item = key_of("SESSION#nope".into());
        assert!(session_from(&item).is_err());
    }
}
