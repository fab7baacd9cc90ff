//! The contract of `Store`: every scenario runs against the embedded store (`memory::…`) and
//! against the DynamoDB store on moto or `AWS_ENDPOINT_URL` (`dynamodb::…`), each DynamoDB test
//! on a table of its own. The race tests run against DynamoDB only.

use shared::domain::{
    Address, CustomUid, DisplayName, Email, Gender, LoginKey, PhoneNumber, Picture, ProviderId,
    ProviderIdentity, ProviderLink, ProviderProfile, ProviderToken, SecretHash, SecretHasher,
    SecretToken, Session, SessionId, SessionLimits, SudoToken, UnixTime, User, UserId, Username,
    Verification, VerificationId, VerificationToken, VerifiedAddress,
};
use shared::ports::{
    AccountChange, AccountDeletion, ChangeRejected, Clock, Directory, Login, Spend, Store,
    SudoCheck, SystemClock,
};

const MAX_ATTEMPTS: u32 = 5;
/// How long a username given up stays reserved in these scenarios.
const HOLD_SECS: i64 = 3600;

macro_rules! contract_tests {
    ($($scenario:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(&shared::adapters::memory::MemoryStore::new()).await;
                }
            )*
        }

        mod dynamodb {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let store = test_support::moto::fresh_store(stringify!($scenario)).await;
                    super::$scenario(&store).await;
                }
            )*
        }
    };
}

contract_tests!(
    creating_a_user_reserves_every_login_key_it_holds,
    creating_a_user_that_exists_is_stale,
    an_account_cannot_take_an_email_another_account_holds,
    a_change_from_an_outdated_version_is_stale_and_writes_nothing,
    binding_with_sudo_and_a_verification_token_reserves_the_address_and_spends_the_token,
    a_verification_token_for_another_address_is_rejected,
    a_used_verification_token_is_rejected,
    an_expired_verification_token_is_rejected_while_its_record_remains,
    an_unknown_verification_token_is_rejected,
    another_sessions_sudo_token_is_rejected,
    another_users_sudo_token_is_rejected,
    an_expired_sudo_token_is_rejected,
    an_unknown_sudo_token_is_rejected,
    binding_a_provider_spends_a_provider_token_for_that_identity_only,
    a_provider_token_exchanges_for_one_session_of_the_account_its_identity_names,
    changing_the_email_releases_the_old_one_for_another_account,
    removing_the_phone_releases_it,
    a_username_given_up_stays_reserved_for_its_last_owner_until_the_hold_ends,
    every_login_key_reads_the_current_password_hash,
    rejections_take_precedence_stale_then_sudo_then_token_then_taken,
    rotating_the_refresh_token_replaces_it_once,
    rotating_again_to_the_same_successor_agrees_and_changes_nothing,
    rotating_with_a_wrong_refresh_token_changes_nothing,
    a_sign_ups_session_is_stored_with_its_account_or_not_at_all,
    sudo_marks_its_session_authenticated_and_needs_a_live_session,
    a_counted_event_given_back_frees_its_place_in_that_window_only,
    revoked_expired_and_unknown_sessions_do_not_rotate,
    session_and_user_are_read_together_as_stored,
    a_verification_redeems_only_once,
    a_verification_out_of_attempts_or_expired_does_not_redeem,
    wrong_codes_count_up_to_the_maximum_on_live_verifications_only,
    a_verification_token_exchanges_for_sudo_once_and_only_for_its_address,
    tokens_read_back_as_stored_even_when_expired,
    events_are_counted_per_key_and_window_up_to_the_limit,
    a_cooldown_allows_one_event_until_it_ends,
    the_directory_lists_every_account_with_its_live_sessions_only,
    // Account deletion and the profile (issue 14).
    the_picture_and_gender_are_stored_and_cleared,
    deleting_an_account_removes_it_with_every_login_key_and_spends_the_sudo_token,
    deleting_from_an_outdated_version_is_stale_and_deletes_nothing,
    deleting_with_a_sudo_token_that_does_not_hold_is_refused_and_deletes_nothing,
    // Sign-in by code and verified addresses (issue 14).
    a_verification_token_exchanges_for_one_session_of_the_account_its_address_names,
    a_remembered_address_is_stored_with_its_redeem_or_not_at_all,
    a_remembered_address_is_spent_by_one_bind_of_its_account_and_address_while_alive,
    an_anonymous_accounts_expiry_reads_back_and_ends_with_its_upgrade,
    // Passwords and the session epoch.
    a_password_change_moves_the_epoch_keeps_its_session_and_rewrites_every_login_key,
    a_sudo_token_of_an_ended_epoch_is_rejected,
    a_password_change_keeping_an_ended_session_is_rejected_and_writes_nothing,
    a_reset_spends_a_token_for_its_address_once_with_the_new_password,
    moving_the_epoch_alone_is_repeated_on_every_login_key,
    // Custom-login tickets (issue 25).
    a_custom_uid_is_a_login_key_of_one_account_released_by_deletion,
    a_sessions_limits_read_back_and_outlast_rotation,
);

// ---------------------------------------------------------------------------------------------
// Test data

fn now() -> UnixTime {
    SystemClock.now()
}

fn random_hex(len: usize) -> String {
    UserId::generate().as_str()[..len].to_string()
}

fn new_hash() -> SecretHash {
    SecretHasher::new([7; 32]).token("test", &SecretToken::generate())
}

fn new_email() -> Email {
    Email::parse(&format!("{}@example.com", random_hex(12))).unwrap()
}

fn new_phone() -> PhoneNumber {
    let digits: String = random_hex(8)
        .bytes()
        .map(|b| char::from(b'0' + b % 10))
        .collect();
    PhoneNumber::parse(&format!("+86 138{digits}"), "86").unwrap()
}

fn new_identity() -> ProviderIdentity {
    ProviderIdentity {
        provider: ProviderId::WxOpen,
        subject: format!("o6_{}", random_hex(20)),
        app_subject: format!("oA_{}", random_hex(20)),
    }
}

fn new_user() -> User {
    let at = now();
    User {
        id: UserId::generate(),
        username: Some(Username::parse(&format!("user{}", random_hex(12))).unwrap()),
        email: None,
        phone: None,
        name: Some(DisplayName::parse("Test User").unwrap()),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_string()),
        providers: Vec::new(),
        custom_uid: None,
        picture: None,
        gender: None,
        created_at: at,
        updated_at: at,
        version: 1,
        expires_at: None,
        session_epoch: 0,
    }
}

fn creation(user: &User) -> AccountChange {
    AccountChange {
        before: None,
        after: user.clone(),
        sudo: None,
        spend: None,
        session: None,
        keep_session: None,
        now: now(),
        username_held_until: now() + HOLD_SECS,
    }
}

/// The change from `before` to a copy edited by `edit`, one version on.
fn change(before: &User, edit: impl FnOnce(&mut User)) -> AccountChange {
    let mut after = before.clone();
    edit(&mut after);
    after.version = before.version + 1;
    after.updated_at = now();
    AccountChange {
        before: Some(before.clone()),
        after,
        sudo: None,
        spend: None,
        session: None,
        keep_session: None,
        now: now(),
        username_held_until: now() + HOLD_SECS,
    }
}

/// `change`, also keeping `session` (moved to the account's new epoch).
fn keeping(change: &AccountChange, session: &SessionId) -> AccountChange {
    AccountChange {
        keep_session: Some(session.clone()),
        ..change.clone()
    }
}

/// The proof of a verification token for `address`.
fn by_code(hash: &SecretHash, address: &Address) -> Spend {
    Spend::Verification {
        hash: hash.clone(),
        address: address.clone(),
    }
}

/// The proof of a provider token for `identity`.
fn by_provider(hash: &SecretHash, identity: &ProviderIdentity) -> Spend {
    Spend::Provider {
        hash: hash.clone(),
        identity: identity.clone(),
    }
}

fn email_key(email: &Email) -> LoginKey {
    LoginKey::Address(Address::Email(email.clone()))
}

async fn create(store: &dyn Store, user: &User) {
    assert_eq!(store.apply(&creation(user)).await.unwrap(), Ok(()));
}

async fn stored_user(store: &dyn Store, id: &UserId) -> User {
    store.user(id).await.unwrap().expect("the user is stored")
}

async fn owner_of(store: &dyn Store, key: &LoginKey) -> Option<UserId> {
    store.login(key).await.unwrap().map(|login| login.user_id)
}

fn login_of(user: &User) -> Login {
    Login {
        user_id: user.id.clone(),
        password_hash: user.password_hash.clone(),
        session_epoch: user.session_epoch,
    }
}

fn assert_same_user(actual: &User, expected: &User) {
    assert_eq!(actual.id, expected.id);
    assert_eq!(actual.username, expected.username);
    assert_eq!(actual.email, expected.email);
    assert_eq!(actual.phone, expected.phone);
    assert_eq!(actual.name, expected.name);
    assert_eq!(actual.password_hash, expected.password_hash);
    assert_eq!(actual.providers, expected.providers);
    assert_eq!(actual.picture, expected.picture);
    assert_eq!(actual.gender, expected.gender);
    assert_eq!(actual.created_at, expected.created_at);
    assert_eq!(actual.updated_at, expected.updated_at);
    assert_eq!(actual.version, expected.version);
    assert_eq!(actual.session_epoch, expected.session_epoch);
}

/// A session of `user` and a live sudo token of it.
async fn signed_in_with_sudo(store: &dyn Store, user: &User) -> (Session, SudoCheck) {
    let session = new_session(user, now() + 3600);
    store.create_session(&session).await.unwrap();
    let sudo = SudoToken {
        hash: new_hash(),
        user_id: user.id.clone(),
        session_id: session.id.clone(),
        expires_at: now() + 300,
        epoch: 0,
    };
    assert!(store.grant_sudo(&sudo, None, now()).await.unwrap());
    let check = SudoCheck {
        hash: sudo.hash,
        user_id: user.id.clone(),
        session_id: session.id.clone(),
    };
    (session, check)
}

fn new_session(user: &User, expires_at: UnixTime) -> Session {
    Session {
        id: SessionId::generate(),
        user_id: user.id.clone(),
        refresh_hash: new_hash(),
        expires_at,
        revoked: false,
        created_at: now(),
        refreshed_at: now(),
        generation: 0,
        authenticated_at: now(),
        epoch: user.session_epoch,
        limits: SessionLimits::default(),
    }
}

async fn verification_token_for(
    store: &dyn Store,
    address: &Address,
    expires_at: UnixTime,
    used: bool,
) -> SecretHash {
    let token = VerificationToken {
        hash: new_hash(),
        address: address.clone(),
        expires_at,
        used: false,
    };
    // The ports offer no plain put of a verification token: one is always earned by redeeming
    // a verification, and spent by exchanging it for sudo. The tests do the same.
    let verification = new_verification(address, now() + 600);
    store.put_verification(&verification).await.unwrap();
    assert!(store
        .redeem_verification(&verification.id, MAX_ATTEMPTS, now(), &token, None)
        .await
        .unwrap());
    if used {
        let holder = new_user();
        let session = new_session(&holder, now() + 3600);
        store.create_session(&session).await.unwrap();
        let sudo = SudoToken {
            hash: new_hash(),
            user_id: holder.id,
            session_id: session.id,
            expires_at: now() + 60,
            epoch: 0,
        };
        assert!(store
            .grant_sudo(&sudo, Some(&by_code(&token.hash, address)), now())
            .await
            .unwrap());
    }
    token.hash
}

fn new_verification(address: &Address, expires_at: UnixTime) -> Verification {
    Verification {
        id: VerificationId::generate(),
        address: address.clone(),
        code_hash: new_hash(),
        attempts: 0,
        expires_at,
        used: false,
        requested_by: None,
    }
}

/// A user with a session and sudo token, and a binding of `email` to it that spends a
/// verification token for `token_address`.
struct Binding {
    user: User,
    change: AccountChange,
    token: SecretHash,
}

async fn binding(store: &dyn Store, email: &Email, token_address: &Address) -> Binding {
    let user = new_user();
    create(store, &user).await;
    let (_, sudo) = signed_in_with_sudo(store, &user).await;
    let token = verification_token_for(store, token_address, now() + 300, false).await;
    let mut change = change(&user, |u| u.email = Some(email.clone()));
    change.sudo = Some(sudo);
    change.spend = Some(Spend::Verification {
        hash: token.clone(),
        address: Address::Email(email.clone()),
    });
    Binding {
        user,
        change,
        token,
    }
}

/// Nothing of a rejected binding was written.
async fn assert_binding_not_applied(store: &dyn Store, binding: &Binding, email: &Email) {
    assert_same_user(&stored_user(store, &binding.user.id).await, &binding.user);
    assert_ne!(
        owner_of(store, &email_key(email)).await,
        Some(binding.user.id.clone())
    );
}

async fn token_used(store: &dyn Store, hash: &SecretHash) -> bool {
    store
        .verification_token(hash)
        .await
        .unwrap()
        .expect("the token is stored")
        .used
}

// ---------------------------------------------------------------------------------------------
// Accounts and login keys

async fn creating_a_user_reserves_every_login_key_it_holds(store: &dyn Store) {
    let mut user = new_user();
    user.email = Some(new_email());
    user.phone = Some(new_phone());
    user.providers = vec![ProviderLink {
        identity: new_identity(),
        profile: ProviderProfile {
            name: DisplayName::from_provider("微信用户"),
            picture: Some(Picture::parse("picture", "https://example.com/a.png").unwrap()),
        },
    }];
    create(store, &user).await;

    assert_same_user(&stored_user(store, &user.id).await, &user);
    let keys = user.login_keys();
    // Username, email, phone, and the provider identity's two names (unionid and openid).
    assert_eq!(keys.len(), 5);
    for key in &keys {
        let found = store.login(key).await.unwrap().expect("key reserved");
        assert_eq!(found, login_of(&user));
    }
    assert!(store
        .login(&email_key(&new_email()))
        .await
        .unwrap()
        .is_none());
    assert!(store.user(&UserId::generate()).await.unwrap().is_none());
}

async fn creating_a_user_that_exists_is_stale(store: &dyn Store) {
    let user = new_user();
    create(store, &user).await;
    let mut again = user.clone();
    again.name = Some(DisplayName::parse("Someone Else").unwrap());
    assert_eq!(
        store.apply(&creation(&again)).await.unwrap(),
        Err(ChangeRejected::Stale)
    );
    assert_same_user(&stored_user(store, &user.id).await, &user);
}

async fn an_account_cannot_take_an_email_another_account_holds(store: &dyn Store) {
    let email = new_email();
    let mut first = new_user();
    first.email = Some(email.clone());
    create(store, &first).await;

    let mut second = new_user();
    second.email = Some(email.clone());
    assert_eq!(
        store.apply(&creation(&second)).await.unwrap(),
        Err(ChangeRejected::Taken(email_key(&email)))
    );
    assert!(store.user(&second.id).await.unwrap().is_none());
    let second_username = LoginKey::Username(second.username.clone().unwrap());
    assert_eq!(owner_of(store, &second_username).await, None);
    assert_eq!(
        owner_of(store, &email_key(&email)).await,
        Some(first.id.clone())
    );

    // An existing account binding it is refused the same way.
    let third = new_user();
    create(store, &third).await;
    let bind = change(&third, |u| u.email = Some(email.clone()));
    assert_eq!(
        store.apply(&bind).await.unwrap(),
        Err(ChangeRejected::Taken(email_key(&email)))
    );
    assert_same_user(&stored_user(store, &third.id).await, &third);
}

async fn a_change_from_an_outdated_version_is_stale_and_writes_nothing(store: &dyn Store) {
    let v1 = new_user();
    create(store, &v1).await;
    let to_v2 = change(&v1, |u| {
        u.name = Some(DisplayName::parse("Second").unwrap())
    });
    assert_eq!(store.apply(&to_v2).await.unwrap(), Ok(()));

    let email = new_email();
    let from_v1 = change(&v1, |u| u.email = Some(email.clone()));
    assert_eq!(
        store.apply(&from_v1).await.unwrap(),
        Err(ChangeRejected::Stale)
    );
    assert_same_user(&stored_user(store, &v1.id).await, &to_v2.after);
    assert_eq!(owner_of(store, &email_key(&email)).await, None);

    // A change of an account that does not exist is stale too.
    let ghost = new_user();
    assert_eq!(
        store.apply(&change(&ghost, |_| {})).await.unwrap(),
        Err(ChangeRejected::Stale)
    );
    assert!(store.user(&ghost.id).await.unwrap().is_none());
}

// ---------------------------------------------------------------------------------------------
// Binding with sudo and a spent token

async fn binding_with_sudo_and_a_verification_token_reserves_the_address_and_spends_the_token(
    store: &dyn Store,
) {
    let email = new_email();
    let bind = binding(store, &email, &Address::Email(email.clone())).await;
    assert_eq!(store.apply(&bind.change).await.unwrap(), Ok(()));

    assert_same_user(&stored_user(store, &bind.user.id).await, &bind.change.after);
    assert_eq!(
        owner_of(store, &email_key(&email)).await,
        Some(bind.user.id.clone())
    );
    assert!(token_used(store, &bind.token).await);

    // The spent token cannot bind again, even with a fresh read of the account.
    let current = stored_user(store, &bind.user.id).await;
    let mut again = change(&current, |u| u.email = Some(email.clone()));
    again.sudo = bind.change.sudo.clone();
    again.spend = bind.change.spend.clone();
    assert_eq!(
        store.apply(&again).await.unwrap(),
        Err(ChangeRejected::Token)
    );
}

async fn a_verification_token_for_another_address_is_rejected(store: &dyn Store) {
    let email = new_email();
    let other = Address::Email(new_email());
    let bind = binding(store, &email, &other).await;
    assert_eq!(
        store.apply(&bind.change).await.unwrap(),
        Err(ChangeRejected::Token)
    );
    assert_binding_not_applied(store, &bind, &email).await;
    assert!(!token_used(store, &bind.token).await);

    // Nor does a phone token stand for an email.
    let phone = Address::Phone(new_phone());
    let bind = binding(store, &email, &phone).await;
    assert_eq!(
        store.apply(&bind.change).await.unwrap(),
        Err(ChangeRejected::Token)
    );
}

async fn a_used_verification_token_is_rejected(store: &dyn Store) {
    let email = new_email();
    let address = Address::Email(email.clone());
    let mut bind = binding(store, &email, &address).await;
    let used = verification_token_for(store, &address, now() + 300, true).await;
    bind.change.spend = Some(Spend::Verification {
        hash: used,
        address,
    });
    assert_eq!(
        store.apply(&bind.change).await.unwrap(),
        Err(ChangeRejected::Token)
    );
    assert_binding_not_applied(store, &bind, &email).await;
}

async fn an_expired_verification_token_is_rejected_while_its_record_remains(store: &dyn Store) {
    let email = new_email();
    let address = Address::Email(email.clone());
    let mut bind = binding(store, &email, &address).await;
    let t = now();
    for expires_at in [t - 60, t] {
        let expired = verification_token_for(store, &address, expires_at, false).await;
        bind.change.spend = Some(Spend::Verification {
            hash: expired.clone(),
            address: address.clone(),
        });
        bind.change.now = t;
        assert_eq!(
            store.apply(&bind.change).await.unwrap(),
            Err(ChangeRejected::Token),
            "a token expiring at now{:+} was accepted",
            expires_at - t
        );
        // Still stored as it was: only the operations decide it is expired.
        let stored = store.verification_token(&expired).await.unwrap().unwrap();
        assert_eq!(stored.expires_at, expires_at);
        assert!(!stored.used);
    }
    assert_binding_not_applied(store, &bind, &email).await;
}

async fn an_unknown_verification_token_is_rejected(store: &dyn Store) {
    let email = new_email();
    let mut bind = binding(store, &email, &Address::Email(email.clone())).await;
    bind.change.spend = Some(Spend::Verification {
        hash: new_hash(),
        address: Address::Email(email.clone()),
    });
    assert_eq!(
        store.apply(&bind.change).await.unwrap(),
        Err(ChangeRejected::Token)
    );
    assert_binding_not_applied(store, &bind, &email).await;
}

async fn another_sessions_sudo_token_is_rejected(store: &dyn Store) {
    let email = new_email();
    let mut bind = binding(store, &email, &Address::Email(email.clone())).await;
    let (other_session, _) = signed_in_with_sudo(store, &bind.user).await;
    if let Some(sudo) = &mut bind.change.sudo {
        sudo.session_id = other_session.id;
    }
    assert_eq!(
        store.apply(&bind.change).await.unwrap(),
        Err(ChangeRejected::Sudo)
    );
    assert_binding_not_applied(store, &bind, &email).await;
    assert!(!token_used(store, &bind.token).await);
}

async fn another_users_sudo_token_is_rejected(store: &dyn Store) {
    let email = new_email();
    let mut bind = binding(store, &email, &Address::Email(email.clone())).await;
    let someone = new_user();
    create(store, &someone).await;
    let (_, theirs) = signed_in_with_sudo(store, &someone).await;
    if let Some(sudo) = &mut bind.change.sudo {
        sudo.hash = theirs.hash;
    }
    assert_eq!(
        store.apply(&bind.change).await.unwrap(),
        Err(ChangeRejected::Sudo)
    );
    assert_binding_not_applied(store, &bind, &email).await;
}

async fn an_expired_sudo_token_is_rejected(store: &dyn Store) {
    let email = new_email();
    let mut bind = binding(store, &email, &Address::Email(email.clone())).await;
    let t = now();
    for expires_at in [t - 60, t] {
        let Some(check) = &bind.change.sudo else {
            unreachable!("bindings carry a sudo check")
        };
        let expired = SudoToken {
            hash: new_hash(),
            user_id: check.user_id.clone(),
            session_id: check.session_id.clone(),
            expires_at,
            epoch: 0,
        };
        assert!(store.grant_sudo(&expired, None, now()).await.unwrap());
        if let Some(sudo) = &mut bind.change.sudo {
            sudo.hash = expired.hash.clone();
        }
        bind.change.now = t;
        assert_eq!(
            store.apply(&bind.change).await.unwrap(),
            Err(ChangeRejected::Sudo)
        );
        let stored = store.sudo_token(&expired.hash).await.unwrap().unwrap();
        assert_eq!(stored.expires_at, expires_at);
    }
    assert_binding_not_applied(store, &bind, &email).await;
    assert!(!token_used(store, &bind.token).await);
}

async fn an_unknown_sudo_token_is_rejected(store: &dyn Store) {
    let email = new_email();
    let mut bind = binding(store, &email, &Address::Email(email.clone())).await;
    if let Some(sudo) = &mut bind.change.sudo {
        sudo.hash = new_hash();
    }
    assert_eq!(
        store.apply(&bind.change).await.unwrap(),
        Err(ChangeRejected::Sudo)
    );
    assert_binding_not_applied(store, &bind, &email).await;
}

async fn binding_a_provider_spends_a_provider_token_for_that_identity_only(store: &dyn Store) {
    let user = new_user();
    create(store, &user).await;
    let (_, sudo) = signed_in_with_sudo(store, &user).await;
    let identity = new_identity();
    let profile = ProviderProfile {
        name: DisplayName::from_provider("Wei"),
        picture: None,
    };
    let token = ProviderToken {
        hash: new_hash(),
        identity: identity.clone(),
        profile: profile.clone(),
        expires_at: now() + 300,
        used: false,
    };
    store.put_provider_token(&token).await.unwrap();

    let link = ProviderLink {
        identity: identity.clone(),
        profile,
    };
    let mut bind = change(&user, |u| u.providers.push(link.clone()));
    bind.sudo = Some(sudo);

    // For another identity: refused.
    bind.spend = Some(Spend::Provider {
        hash: token.hash.clone(),
        identity: new_identity(),
    });
    assert_eq!(
        store.apply(&bind).await.unwrap(),
        Err(ChangeRejected::Token)
    );
    assert!(
        !store
            .provider_token(&token.hash)
            .await
            .unwrap()
            .unwrap()
            .used
    );

    bind.spend = Some(Spend::Provider {
        hash: token.hash.clone(),
        identity: identity.clone(),
    });
    assert_eq!(store.apply(&bind).await.unwrap(), Ok(()));
    assert!(
        store
            .provider_token(&token.hash)
            .await
            .unwrap()
            .unwrap()
            .used
    );
    // Both of the identity's names are reserved with the bind.
    for key in [identity.subject_key(), identity.app_key()] {
        assert_eq!(
            owner_of(store, &key).await,
            Some(user.id.clone()),
            "{key:?}"
        );
    }
    assert_eq!(stored_user(store, &user.id).await.providers, vec![link]);
}

async fn a_provider_token_exchanges_for_one_session_of_the_account_its_identity_names(
    store: &dyn Store,
) {
    let identity = new_identity();
    let mut user = new_user();
    user.providers = vec![ProviderLink {
        identity: identity.clone(),
        profile: ProviderProfile::default(),
    }];
    create(store, &user).await;
    let other = new_user();
    create(store, &other).await;
    let token = |identity: &ProviderIdentity, expires_at: UnixTime| ProviderToken {
        hash: new_hash(),
        identity: identity.clone(),
        profile: ProviderProfile::default(),
        expires_at,
        used: false,
    };
    let exchange = |token: &ProviderToken, identity: &ProviderIdentity, session: &Session| {
        let (hash, identity, session) = (token.hash.clone(), identity.clone(), session.clone());
        async move {
            store
                .exchange_for_session(
                    &by_provider(&hash, &identity),
                    &identity.subject_key(),
                    now(),
                    &session,
                )
                .await
                .unwrap()
        }
    };
    let stored = |session: &Session| {
        let id = session.id.clone();
        async move { store.session(&id).await.unwrap() }
    };

    // Refused, writing nothing: a session for an account the identity does not name, a token
    // of another identity, an expired token whose record remains.
    let live = token(&identity, now() + 300);
    store.put_provider_token(&live).await.unwrap();
    let for_other = new_session(&other, now() + 3600);
    assert!(!exchange(&live, &identity, &for_other).await);
    assert!(stored(&for_other).await.is_none());
    let session = new_session(&user, now() + 3600);
    assert!(!exchange(&live, &new_identity(), &session).await);
    let expired = token(&identity, now() - 1);
    store.put_provider_token(&expired).await.unwrap();
    assert!(!exchange(&expired, &identity, &session).await);
    assert!(stored(&session).await.is_none());
    assert!(
        !store
            .provider_token(&live.hash)
            .await
            .unwrap()
            .unwrap()
            .used
    );

    // Once: the token is spent and the session stored together.
    assert!(exchange(&live, &identity, &session).await);
    let kept = stored(&session).await.expect("the session is stored");
    assert_eq!(
        (kept.id, kept.user_id),
        (session.id.clone(), user.id.clone())
    );
    assert!(
        store
            .provider_token(&live.hash)
            .await
            .unwrap()
            .unwrap()
            .used
    );
    let again = new_session(&user, now() + 3600);
    assert!(!exchange(&live, &identity, &again).await);
    assert!(stored(&again).await.is_none());
}

// ---------------------------------------------------------------------------------------------
// Releasing keys and precedence

async fn changing_the_email_releases_the_old_one_for_another_account(store: &dyn Store) {
    let old = new_email();
    let new = new_email();
    let mut user = new_user();
    user.email = Some(old.clone());
    create(store, &user).await;

    let move_email = change(&user, |u| u.email = Some(new.clone()));
    assert_eq!(store.apply(&move_email).await.unwrap(), Ok(()));
    assert_eq!(owner_of(store, &email_key(&old)).await, None);
    assert_eq!(
        owner_of(store, &email_key(&new)).await,
        Some(user.id.clone())
    );

    let mut other = new_user();
    other.email = Some(old.clone());
    create(store, &other).await;
    assert_eq!(owner_of(store, &email_key(&old)).await, Some(other.id));
    assert_eq!(owner_of(store, &email_key(&new)).await, Some(user.id));
}

fn username_key(name: &str) -> LoginKey {
    LoginKey::Username(Username::parse(name).unwrap())
}

async fn a_username_given_up_stays_reserved_for_its_last_owner_until_the_hold_ends(
    store: &dyn Store,
) {
    let owner = new_user();
    create(store, &owner).await;
    let old = owner.username.clone().unwrap();
    let old_key = LoginKey::Username(old.clone());
    let new = format!("renamed{}", random_hex(12));
    let rename = change(&owner, |u| {
        u.username = Some(Username::parse(&new).unwrap())
    });
    assert_eq!(store.apply(&rename).await.unwrap(), Ok(()));
    let owner = rename.after;
    // The old name signs in nobody...
    assert_eq!(owner_of(store, &old_key).await, None);
    assert_eq!(
        owner_of(store, &username_key(&new)).await,
        Some(owner.id.clone())
    );
    // ...and no other account takes it: not at sign-up, not by a rename.
    let mut newcomer = new_user();
    newcomer.username = Some(old.clone());
    assert_eq!(
        store.apply(&creation(&newcomer)).await.unwrap(),
        Err(ChangeRejected::Taken(old_key.clone()))
    );
    let other = new_user();
    create(store, &other).await;
    let take = change(&other, |u| u.username = Some(old.clone()));
    assert_eq!(
        store.apply(&take).await.unwrap(),
        Err(ChangeRejected::Taken(old_key.clone()))
    );
    assert_eq!(owner_of(store, &old_key).await, None);
    // Its last owner takes it back, and gives up the other name in turn.
    let back = change(&owner, |u| u.username = Some(old.clone()));
    assert_eq!(store.apply(&back).await.unwrap(), Ok(()));
    assert_eq!(owner_of(store, &old_key).await, Some(owner.id.clone()));
    let mut taker = new_user();
    taker.username = Some(Username::parse(&new).unwrap());
    assert_eq!(
        store.apply(&creation(&taker)).await.unwrap(),
        Err(ChangeRejected::Taken(username_key(&new)))
    );
    // A hold that has ended holds nothing: another account takes the name.
    let mut ended = change(&back.after, |u| u.username = None);
    ended.username_held_until = now() - 1;
    assert_eq!(store.apply(&ended).await.unwrap(), Ok(()));
    let take = change(&other, |u| u.username = Some(old.clone()));
    assert_eq!(store.apply(&take).await.unwrap(), Ok(()));
    assert_eq!(owner_of(store, &old_key).await, Some(other.id.clone()));
}

async fn removing_the_phone_releases_it(store: &dyn Store) {
    let phone = new_phone();
    let key = LoginKey::Address(Address::Phone(phone.clone()));
    let mut user = new_user();
    user.phone = Some(phone.clone());
    create(store, &user).await;
    assert_eq!(owner_of(store, &key).await, Some(user.id.clone()));

    let unbind = change(&user, |u| u.phone = None);
    assert_eq!(store.apply(&unbind).await.unwrap(), Ok(()));
    assert_eq!(owner_of(store, &key).await, None);
    // The keys the account keeps stay reserved.
    let username = LoginKey::Username(user.username.clone().unwrap());
    assert_eq!(owner_of(store, &username).await, Some(user.id.clone()));

    let mut other = new_user();
    other.phone = Some(phone);
    create(store, &other).await;
    assert_eq!(owner_of(store, &key).await, Some(other.id));
}

async fn every_login_key_reads_the_current_password_hash(store: &dyn Store) {
    let mut user = new_user();
    user.password_hash = None;
    user.email = Some(new_email());
    create(store, &user).await;
    let keys = user.login_keys();
    for key in &keys {
        assert_eq!(store.login(key).await.unwrap(), Some(login_of(&user)));
    }

    let set_password = change(&user, |u| {
        u.password_hash = Some("$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3".to_string())
    });
    assert_eq!(store.apply(&set_password).await.unwrap(), Ok(()));
    let phone = new_phone();
    let add_phone = change(&set_password.after, |u| u.phone = Some(phone.clone()));
    assert_eq!(store.apply(&add_phone).await.unwrap(), Ok(()));
    for key in add_phone.after.login_keys() {
        assert_eq!(
            store.login(&key).await.unwrap(),
            Some(login_of(&add_phone.after)),
            "{key:?}"
        );
    }
    assert_eq!(add_phone.after.login_keys().len(), keys.len() + 1);
}

async fn rejections_take_precedence_stale_then_sudo_then_token_then_taken(store: &dyn Store) {
    let taken = new_email();
    let mut holder = new_user();
    holder.email = Some(taken.clone());
    create(store, &holder).await;

    let user = new_user();
    create(store, &user).await;
    let mut everything_wrong = change(&user, |u| u.email = Some(taken.clone()));
    everything_wrong.sudo = Some(SudoCheck {
        hash: new_hash(),
        user_id: user.id.clone(),
        session_id: SessionId::generate(),
    });
    everything_wrong.spend = Some(Spend::Verification {
        hash: new_hash(),
        address: Address::Email(taken.clone()),
    });
    let mut outdated = everything_wrong.clone();
    if let Some(before) = &mut outdated.before {
        before.version += 7;
    }
    assert_eq!(
        store.apply(&outdated).await.unwrap(),
        Err(ChangeRejected::Stale)
    );
    assert_eq!(
        store.apply(&everything_wrong).await.unwrap(),
        Err(ChangeRejected::Sudo)
    );
    let (_, sudo) = signed_in_with_sudo(store, &user).await;
    everything_wrong.sudo = Some(sudo);
    assert_eq!(
        store.apply(&everything_wrong).await.unwrap(),
        Err(ChangeRejected::Token)
    );
    let token =
        verification_token_for(store, &Address::Email(taken.clone()), now() + 300, false).await;
    everything_wrong.spend = Some(Spend::Verification {
        hash: token.clone(),
        address: Address::Email(taken.clone()),
    });
    assert_eq!(
        store.apply(&everything_wrong).await.unwrap(),
        Err(ChangeRejected::Taken(email_key(&taken)))
    );
    assert!(!token_used(store, &token).await);
    assert_same_user(&stored_user(store, &user.id).await, &user);
}

// ---------------------------------------------------------------------------------------------
// Sessions

async fn rotating_the_refresh_token_replaces_it_once(store: &dyn Store) {
    let user = new_user();
    let session = new_session(&user, now() + 3600);
    store.create_session(&session).await.unwrap();
    let next = new_hash();
    let later = now() + 7200;
    assert!(store
        .rotate_refresh_token(&session.id, &session.refresh_hash, &next, 1, later, now())
        .await
        .unwrap());
    let stored = store.session(&session.id).await.unwrap().unwrap();
    assert_eq!(stored.refresh_hash, next);
    assert_eq!(stored.expires_at, later);
    assert_eq!(stored.user_id, user.id);
    assert!(!stored.revoked);

    // The replaced token is no longer the live one.
    assert!(!store
        .rotate_refresh_token(
            &session.id,
            &session.refresh_hash,
            &new_hash(),
            1,
            later,
            now()
        )
        .await
        .unwrap());
    assert_eq!(
        store
            .session(&session.id)
            .await
            .unwrap()
            .unwrap()
            .refresh_hash,
        next
    );
}

async fn rotating_again_to_the_same_successor_agrees_and_changes_nothing(store: &dyn Store) {
    let session = new_session(&new_user(), now() + 3600);
    store.create_session(&session).await.unwrap();
    let next = new_hash();
    let t = now();
    assert!(store
        .rotate_refresh_token(&session.id, &session.refresh_hash, &next, 1, t + 7200, t)
        .await
        .unwrap());
    // A second rotation of the same token (another tab) derives the same successor.
    assert!(store
        .rotate_refresh_token(&session.id, &session.refresh_hash, &next, 1, t + 7200, t)
        .await
        .unwrap());
    let stored = store.session(&session.id).await.unwrap().unwrap();
    assert_eq!(stored.refresh_hash, next);
    assert_eq!(stored.generation, 1);
    // Any other successor of the retired token is refused.
    assert!(!store
        .rotate_refresh_token(
            &session.id,
            &session.refresh_hash,
            &new_hash(),
            1,
            t + 7200,
            t
        )
        .await
        .unwrap());
    assert_eq!(
        store
            .session(&session.id)
            .await
            .unwrap()
            .unwrap()
            .refresh_hash,
        next
    );
}

async fn a_sign_ups_session_is_stored_with_its_account_or_not_at_all(store: &dyn Store) {
    let mut user = new_user();
    let session = new_session(&user, now() + 3600);
    let mut signup = creation(&user);
    signup.session = Some(session.clone());
    assert_eq!(store.apply(&signup).await.unwrap(), Ok(()));
    let stored = store.session(&session.id).await.unwrap().expect("stored");
    assert_eq!(stored.user_id, user.id);
    assert_eq!(stored.refresh_hash, session.refresh_hash);

    // A sign-up refused (its username is taken) leaves no session behind.
    let mut rival = new_user();
    rival.username = user.username.take();
    let orphan = new_session(&rival, now() + 3600);
    let mut refused = creation(&rival);
    refused.session = Some(orphan.clone());
    assert!(matches!(
        store.apply(&refused).await.unwrap(),
        Err(ChangeRejected::Taken(_))
    ));
    assert!(store.session(&orphan.id).await.unwrap().is_none());
    assert!(store.user(&rival.id).await.unwrap().is_none());
}

async fn sudo_marks_its_session_authenticated_and_needs_a_live_session(store: &dyn Store) {
    let user = new_user();
    let mut session = new_session(&user, now() + 3600);
    session.authenticated_at = now() - 1000;
    store.create_session(&session).await.unwrap();
    let sudo = |session: &Session| SudoToken {
        hash: new_hash(),
        user_id: user.id.clone(),
        session_id: session.id.clone(),
        expires_at: now() + 300,
        epoch: 0,
    };
    let t = now();
    let granted = sudo(&session);
    assert!(store.grant_sudo(&granted, None, t).await.unwrap());
    assert_eq!(
        store
            .session(&session.id)
            .await
            .unwrap()
            .unwrap()
            .authenticated_at,
        t
    );
    assert!(store.sudo_token(&granted.hash).await.unwrap().is_some());

    // A revoked session gets no sudo token, and stays as it was.
    store.revoke_session(&session.id).await.unwrap();
    let refused = sudo(&session);
    assert!(!store.grant_sudo(&refused, None, t + 5).await.unwrap());
    assert!(store.sudo_token(&refused.hash).await.unwrap().is_none());
    assert_eq!(
        store
            .session(&session.id)
            .await
            .unwrap()
            .unwrap()
            .authenticated_at,
        t
    );
    // Nor does a session that never existed.
    let unknown = new_session(&user, now() + 3600);
    let refused = sudo(&unknown);
    assert!(!store.grant_sudo(&refused, None, t).await.unwrap());
    assert!(store.sudo_token(&refused.hash).await.unwrap().is_none());
}

async fn a_counted_event_given_back_frees_its_place_in_that_window_only(store: &dyn Store) {
    let key = format!("give-back#{}", SessionId::generate().as_str());
    let window = 3600;
    let t = now() - now().rem_euclid(window) + 10;
    assert_eq!(store.count_event(&key, 2, window, t).await.unwrap(), Ok(1));
    assert_eq!(store.count_event(&key, 2, window, t).await.unwrap(), Ok(2));
    assert!(store
        .count_event(&key, 2, window, t)
        .await
        .unwrap()
        .is_err());
    store.uncount_event(&key, window, t).await.unwrap();
    assert_eq!(
        store.count_event(&key, 2, window, t + 1).await.unwrap(),
        Ok(2)
    );
    // Giving back in another window touches nothing of this one; nor goes below zero there.
    store.uncount_event(&key, window, t + window).await.unwrap();
    assert!(store
        .count_event(&key, 2, window, t)
        .await
        .unwrap()
        .is_err());
    assert_eq!(
        store
            .count_event(&key, 2, window, t + window)
            .await
            .unwrap(),
        Ok(1)
    );
}

async fn rotating_with_a_wrong_refresh_token_changes_nothing(store: &dyn Store) {
    let session = new_session(&new_user(), now() + 3600);
    store.create_session(&session).await.unwrap();
    assert!(!store
        .rotate_refresh_token(
            &session.id,
            &new_hash(),
            &new_hash(),
            1,
            now() + 7200,
            now()
        )
        .await
        .unwrap());
    let stored = store.session(&session.id).await.unwrap().unwrap();
    assert_eq!(stored.refresh_hash, session.refresh_hash);
    assert_eq!(stored.expires_at, session.expires_at);
}

async fn revoked_expired_and_unknown_sessions_do_not_rotate(store: &dyn Store) {
    let user = new_user();
    let revoked = new_session(&user, now() + 3600);
    store.create_session(&revoked).await.unwrap();
    store.revoke_session(&revoked.id).await.unwrap();
    assert!(store.session(&revoked.id).await.unwrap().unwrap().revoked);
    assert!(!store
        .rotate_refresh_token(
            &revoked.id,
            &revoked.refresh_hash,
            &new_hash(),
            1,
            now() + 60,
            now()
        )
        .await
        .unwrap());

    let t = now();
    let expired = new_session(&user, t);
    store.create_session(&expired).await.unwrap();
    assert!(!store
        .rotate_refresh_token(
            &expired.id,
            &expired.refresh_hash,
            &new_hash(),
            1,
            t + 60,
            t
        )
        .await
        .unwrap());
    // Read back as stored, expired or not.
    let stored = store.session(&expired.id).await.unwrap().unwrap();
    assert_eq!(stored.expires_at, t);
    assert_eq!(stored.refresh_hash, expired.refresh_hash);

    let unknown = SessionId::generate();
    assert!(!store
        .rotate_refresh_token(&unknown, &new_hash(), &new_hash(), 1, t + 60, t)
        .await
        .unwrap());
    store.revoke_session(&unknown).await.unwrap();
    assert!(store.session(&unknown).await.unwrap().is_none());
}

async fn session_and_user_are_read_together_as_stored(store: &dyn Store) {
    let mut user = new_user();
    user.email = Some(new_email());
    create(store, &user).await;
    let session = new_session(&user, now() - 5);
    store.create_session(&session).await.unwrap();

    let (found_session, found_user) = store.session_and_user(&session.id, &user.id).await.unwrap();
    let found_session = found_session.expect("the session is stored");
    assert_eq!(found_session.id, session.id);
    assert_eq!(found_session.user_id, user.id);
    assert_eq!(found_session.refresh_hash, session.refresh_hash);
    assert_eq!(found_session.expires_at, session.expires_at);
    assert!(!found_session.revoked);
    assert_same_user(&found_user.expect("the user is stored"), &user);

    let (none, some) = store
        .session_and_user(&SessionId::generate(), &user.id)
        .await
        .unwrap();
    assert!(none.is_none() && some.is_some());
    let (some, none) = store
        .session_and_user(&session.id, &UserId::generate())
        .await
        .unwrap();
    assert!(some.is_some() && none.is_none());
    let (none_session, none_user) = store
        .session_and_user(&SessionId::generate(), &UserId::generate())
        .await
        .unwrap();
    assert!(none_session.is_none() && none_user.is_none());
}

// ---------------------------------------------------------------------------------------------
// Verifications and tokens

fn earned_token(address: &Address) -> VerificationToken {
    VerificationToken {
        hash: new_hash(),
        address: address.clone(),
        expires_at: now() + 300,
        used: false,
    }
}

async fn a_verification_redeems_only_once(store: &dyn Store) {
    let address = Address::Phone(new_phone());
    let verification = new_verification(&address, now() + 600);
    store.put_verification(&verification).await.unwrap();

    let first = earned_token(&address);
    assert!(store
        .redeem_verification(&verification.id, MAX_ATTEMPTS, now(), &first, None)
        .await
        .unwrap());
    let stored = store
        .verification_token(&first.hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.address, address);
    assert_eq!(stored.expires_at, first.expires_at);
    assert!(!stored.used);
    assert!(
        store
            .verification(&verification.id)
            .await
            .unwrap()
            .unwrap()
            .used
    );

    let second = earned_token(&address);
    assert!(!store
        .redeem_verification(&verification.id, MAX_ATTEMPTS, now(), &second, None)
        .await
        .unwrap());
    assert!(store
        .verification_token(&second.hash)
        .await
        .unwrap()
        .is_none());
}

async fn a_verification_out_of_attempts_or_expired_does_not_redeem(store: &dyn Store) {
    let address = Address::Email(new_email());
    let t = now();

    let mut exhausted = new_verification(&address, t + 600);
    exhausted.attempts = MAX_ATTEMPTS;
    let expired = new_verification(&address, t);
    let unknown = VerificationId::generate();
    store.put_verification(&exhausted).await.unwrap();
    store.put_verification(&expired).await.unwrap();

    for id in [&exhausted.id, &expired.id, &unknown] {
        let token = earned_token(&address);
        assert!(!store
            .redeem_verification(id, MAX_ATTEMPTS, t, &token, None)
            .await
            .unwrap());
        assert!(store
            .verification_token(&token.hash)
            .await
            .unwrap()
            .is_none());
    }
    assert!(
        !store
            .verification(&exhausted.id)
            .await
            .unwrap()
            .unwrap()
            .used
    );
    let stored = store.verification(&expired.id).await.unwrap().unwrap();
    assert!(!stored.used);
    assert_eq!(stored.expires_at, t);
    assert_eq!(stored.code_hash, expired.code_hash);
    assert_eq!(stored.address, address);
}

async fn wrong_codes_count_up_to_the_maximum_on_live_verifications_only(store: &dyn Store) {
    let address = Address::Email(new_email());
    let t = now();
    let verification = new_verification(&address, t + 600);
    store.put_verification(&verification).await.unwrap();
    for expected in 1..=MAX_ATTEMPTS {
        store
            .record_wrong_code(&verification.id, MAX_ATTEMPTS, t)
            .await
            .unwrap();
        let attempts = store
            .verification(&verification.id)
            .await
            .unwrap()
            .unwrap()
            .attempts;
        assert_eq!(attempts, expected);
    }
    store
        .record_wrong_code(&verification.id, MAX_ATTEMPTS, t)
        .await
        .unwrap();
    let attempts = store
        .verification(&verification.id)
        .await
        .unwrap()
        .unwrap()
        .attempts;
    assert_eq!(attempts, MAX_ATTEMPTS, "counted past the maximum");

    let expired = new_verification(&address, t);
    store.put_verification(&expired).await.unwrap();
    store
        .record_wrong_code(&expired.id, MAX_ATTEMPTS, t)
        .await
        .unwrap();
    assert_eq!(
        store
            .verification(&expired.id)
            .await
            .unwrap()
            .unwrap()
            .attempts,
        0
    );

    let used = new_verification(&address, t + 600);
    store.put_verification(&used).await.unwrap();
    assert!(store
        .redeem_verification(&used.id, MAX_ATTEMPTS, t, &earned_token(&address), None)
        .await
        .unwrap());
    store
        .record_wrong_code(&used.id, MAX_ATTEMPTS, t)
        .await
        .unwrap();
    assert_eq!(
        store
            .verification(&used.id)
            .await
            .unwrap()
            .unwrap()
            .attempts,
        0
    );

    store
        .record_wrong_code(&VerificationId::generate(), MAX_ATTEMPTS, t)
        .await
        .unwrap();
}

async fn a_verification_token_exchanges_for_sudo_once_and_only_for_its_address(store: &dyn Store) {
    let user = new_user();
    let (session, _) = signed_in_with_sudo(store, &user).await;
    let address = Address::Email(new_email());
    let token = verification_token_for(store, &address, now() + 300, false).await;
    let sudo = |expires_at| SudoToken {
        hash: new_hash(),
        user_id: user.id.clone(),
        session_id: session.id.clone(),
        expires_at,
        epoch: 0,
    };

    let elsewhere = sudo(now() + 300);
    let other_address = Address::Email(new_email());
    assert!(!store
        .grant_sudo(&elsewhere, Some(&by_code(&token, &other_address)), now())
        .await
        .unwrap());
    assert!(store.sudo_token(&elsewhere.hash).await.unwrap().is_none());
    assert!(!token_used(store, &token).await);

    let granted = sudo(now() + 300);
    assert!(store
        .grant_sudo(&granted, Some(&by_code(&token, &address)), now())
        .await
        .unwrap());
    assert!(token_used(store, &token).await);
    let stored = store.sudo_token(&granted.hash).await.unwrap().unwrap();
    assert_eq!(stored.user_id, user.id);
    assert_eq!(stored.session_id, session.id);
    assert_eq!(stored.expires_at, granted.expires_at);

    let again = sudo(now() + 300);
    assert!(!store
        .grant_sudo(&again, Some(&by_code(&token, &address)), now())
        .await
        .unwrap());
    assert!(store.sudo_token(&again.hash).await.unwrap().is_none());

    let t = now();
    let expired = verification_token_for(store, &address, t, false).await;
    let late = sudo(t + 300);
    assert!(!store
        .grant_sudo(&late, Some(&by_code(&expired, &address)), t)
        .await
        .unwrap());
    assert!(store.sudo_token(&late.hash).await.unwrap().is_none());
    assert!(!store
        .grant_sudo(&late, Some(&by_code(&new_hash(), &address)), t)
        .await
        .unwrap());
    // The session the sudo token is for must be alive: a revoked one gets nothing, and the
    // verification token stays unspent.
    let fresh = verification_token_for(store, &address, now() + 300, false).await;
    store.revoke_session(&session.id).await.unwrap();
    let revoked = sudo(now() + 300);
    assert!(!store
        .grant_sudo(&revoked, Some(&by_code(&fresh, &address)), now())
        .await
        .unwrap());
    assert!(store.sudo_token(&revoked.hash).await.unwrap().is_none());
    assert!(!token_used(store, &fresh).await);
}

async fn tokens_read_back_as_stored_even_when_expired(store: &dyn Store) {
    let t = now();
    let provider = ProviderToken {
        hash: new_hash(),
        identity: new_identity(),
        profile: ProviderProfile {
            name: None,
            picture: Some(Picture::parse("picture", "https://example.com/p.jpg").unwrap()),
        },
        expires_at: t - 1,
        used: false,
    };
    store.put_provider_token(&provider).await.unwrap();
    let stored = store.provider_token(&provider.hash).await.unwrap().unwrap();
    assert_eq!(stored.hash, provider.hash);
    assert_eq!(stored.identity, provider.identity);
    assert_eq!(stored.profile, provider.profile);
    assert_eq!(stored.expires_at, t - 1);
    assert!(!stored.used);

    let holder = new_user();
    let session = new_session(&holder, t + 3600);
    store.create_session(&session).await.unwrap();
    let sudo = SudoToken {
        hash: new_hash(),
        user_id: holder.id.clone(),
        session_id: session.id.clone(),
        expires_at: t - 1,
        epoch: 0,
    };
    assert!(store.grant_sudo(&sudo, None, now()).await.unwrap());
    let stored = store.sudo_token(&sudo.hash).await.unwrap().unwrap();
    assert_eq!(
        (
            stored.hash,
            stored.user_id,
            stored.session_id,
            stored.expires_at
        ),
        (sudo.hash, sudo.user_id, sudo.session_id, t - 1)
    );

    assert!(store.provider_token(&new_hash()).await.unwrap().is_none());
    assert!(store.sudo_token(&new_hash()).await.unwrap().is_none());
    assert!(store
        .verification_token(&new_hash())
        .await
        .unwrap()
        .is_none());
    assert!(store
        .verification(&VerificationId::generate())
        .await
        .unwrap()
        .is_none());
}

// ---------------------------------------------------------------------------------------------
// Limits

async fn events_are_counted_per_key_and_window_up_to_the_limit(store: &dyn Store) {
    let window = 60;
    let start = now() - now().rem_euclid(window);
    let end = start + window;
    let key = format!("send#{}", random_hex(8));
    for (count, offset) in [(1, 0), (2, 10), (3, 59)] {
        assert_eq!(
            store
                .count_event(&key, 3, window, start + offset)
                .await
                .unwrap(),
            Ok(count)
        );
    }
    assert_eq!(
        store
            .count_event(&key, 3, window, start + 59)
            .await
            .unwrap(),
        Err(end)
    );
    assert_eq!(
        store
            .count_event(&key, 3, window, start + 30)
            .await
            .unwrap(),
        Err(end)
    );
    // The next window starts from zero; other keys count on their own.
    assert_eq!(
        store.count_event(&key, 3, window, end).await.unwrap(),
        Ok(1)
    );
    let other = format!("send#{}", random_hex(8));
    assert_eq!(
        store.count_event(&other, 1, window, start).await.unwrap(),
        Ok(1)
    );
    assert_eq!(
        store.count_event(&other, 1, window, start).await.unwrap(),
        Err(end)
    );
    let none_allowed = format!("send#{}", random_hex(8));
    assert_eq!(
        store
            .count_event(&none_allowed, 0, window, start)
            .await
            .unwrap(),
        Err(end)
    );
}

async fn a_cooldown_allows_one_event_until_it_ends(store: &dyn Store) {
    let t = now();
    let key = format!("cooldown#{}", random_hex(8));
    assert_eq!(
        store.acquire_cooldown(&key, t + 60, t).await.unwrap(),
        Ok(())
    );
    assert_eq!(
        store.acquire_cooldown(&key, t + 90, t + 30).await.unwrap(),
        Err(t + 60)
    );
    assert_eq!(
        store.acquire_cooldown(&key, t + 61, t + 59).await.unwrap(),
        Err(t + 60)
    );
    // At its end the cooldown is free again, and the new holder sets the next end.
    assert_eq!(
        store.acquire_cooldown(&key, t + 120, t + 60).await.unwrap(),
        Ok(())
    );
    assert_eq!(
        store.acquire_cooldown(&key, t + 200, t + 61).await.unwrap(),
        Err(t + 120)
    );
    let other = format!("cooldown#{}", random_hex(8));
    assert_eq!(
        store
            .acquire_cooldown(&other, t + 60, t + 61)
            .await
            .unwrap(),
        Ok(())
    );
}

// ---------------------------------------------------------------------------------------------
// Races, against DynamoDB only

const ROUNDS: usize = 30;

/// Asserts that across the rounds each side of the race won at least once. moto handles one
/// request at a time (`tests/support/serial_moto.py`), so a race is only run when both
/// requests are in flight together and either may reach moto first: a side that always won
/// would mean the two never overlapped (the second only started once the first was done), and
/// nothing was raced at all.
#[track_caller]
fn assert_both_sides_won(wins: [usize; 2]) {
    eprintln!("race wins (first, second): {wins:?}");
    assert_eq!(wins[0] + wins[1], ROUNDS, "one winner per round: {wins:?}");
    assert!(
        wins[0] > 0 && wins[1] > 0,
        "one side won every round, so the two writes never overlapped: {wins:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_two_accounts_racing_for_one_email_get_exactly_one_winner() {
    let store = test_support::moto::fresh_store("race_for_one_email").await;
    let store: &dyn Store = &store;
    let mut wins = [0usize; 2];
    for round in 0..ROUNDS {
        let email = new_email();
        let address = Address::Email(email.clone());
        let a = binding(store, &email, &address).await;
        let b = binding(store, &email, &address).await;

        let (result_a, result_b) = tokio::join!(store.apply(&a.change), store.apply(&b.change));
        let (result_a, result_b) = (result_a.unwrap(), result_b.unwrap());
        let (winner, loser, lost) = match (&result_a, &result_b) {
            (Ok(()), Err(rejection)) => {
                wins[0] += 1;
                (&a, &b, rejection)
            }
            (Err(rejection), Ok(())) => {
                wins[1] += 1;
                (&b, &a, rejection)
            }
            other => panic!("round {round}: expected exactly one winner, got {other:?}"),
        };
        assert_eq!(
            lost,
            &ChangeRejected::Taken(email_key(&email)),
            "round {round}"
        );

        assert_eq!(
            owner_of(store, &email_key(&email)).await,
            Some(winner.user.id.clone()),
            "round {round}"
        );
        assert_same_user(
            &stored_user(store, &winner.user.id).await,
            &winner.change.after,
        );
        assert_same_user(&stored_user(store, &loser.user.id).await, &loser.user);
        assert!(token_used(store, &winner.token).await, "round {round}");
        assert!(!token_used(store, &loser.token).await, "round {round}");
    }
    assert_both_sides_won(wins);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_a_verification_raced_twice_redeems_once() {
    let store = test_support::moto::fresh_store("race_to_redeem").await;
    let store: &dyn Store = &store;
    let mut wins = [0usize; 2];
    for round in 0..ROUNDS {
        let address = Address::Email(new_email());
        let verification = new_verification(&address, now() + 600);
        store.put_verification(&verification).await.unwrap();
        let (first, second) = (earned_token(&address), earned_token(&address));
        let (a, b) = tokio::join!(
            store.redeem_verification(&verification.id, MAX_ATTEMPTS, now(), &first, None),
            store.redeem_verification(&verification.id, MAX_ATTEMPTS, now(), &second, None),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(a ^ b, "round {round}: redeemed {a} and {b}");
        wins[usize::from(b)] += 1;
        assert_eq!(
            store
                .verification_token(&first.hash)
                .await
                .unwrap()
                .is_some(),
            a,
            "round {round}"
        );
        assert_eq!(
            store
                .verification_token(&second.hash)
                .await
                .unwrap()
                .is_some(),
            b,
            "round {round}"
        );
    }
    assert_both_sides_won(wins);
}

// ---------------------------------------------------------------------------------------------
// Failures of DynamoDB itself

#[tokio::test]
async fn dynamodb_a_malformed_item_is_a_dependency_error_not_a_panic() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let store = test_support::moto::fresh_store("malformed_item").await;
    let id = UserId::generate();
    test_support::moto::dynamodb_client()
        .await
        .put_item()
        .table_name(store.table())
        .item("pk", AttributeValue::S(format!("USER#{}", id.as_str())))
        .item("email", AttributeValue::S("secret-but-broken".to_string()))
        .item("version", AttributeValue::S("one".to_string()))
        .send()
        .await
        .unwrap();
    let err = store.user(&id).await.unwrap_err();
    assert!(err.0.contains("malformed user item"), "{err}");
    assert!(!err.0.contains("secret-but-broken"), "{err}");
    assert!(store
        .session_and_user(&SessionId::generate(), &id)
        .await
        .is_err());
}

#[tokio::test]
async fn dynamodb_a_missing_table_is_a_dependency_error() {
    let client = test_support::moto::dynamodb_client().await;
    let table = test_support::moto::unique_table_name("never_created");
    let store = shared::adapters::dynamodb::DynamoStore::new(client, table);
    let err = store.user(&UserId::generate()).await.unwrap_err();
    assert!(err.0.contains("ResourceNotFoundException"), "{err}");
    let user = new_user();
    assert!(store.apply(&creation(&user)).await.is_err());
}

/// The console's read model: every account as stored, each with the sessions alive now (not
/// revoked, not expired though still stored), most recently refreshed first.
async fn the_directory_lists_every_account_with_its_live_sessions_only<S: Store + Directory>(
    store: &S,
) {
    let mut linked = new_user();
    linked.email = Some(new_email());
    linked.providers.push(ProviderLink {
        identity: new_identity(),
        profile: ProviderProfile {
            name: DisplayName::from_provider("<b>WeChat name</b>"),
            picture: None,
        },
    });
    let plain = new_user();
    create(store, &linked).await;
    create(store, &plain).await;

    let older = new_session(&linked, now() + 3600);
    let rotated = new_session(&linked, now() + 3600);
    let revoked = new_session(&linked, now() + 3600);
    let expired = new_session(&linked, now() - 1);
    for session in [&older, &rotated, &revoked, &expired] {
        store.create_session(session).await.unwrap();
    }
    store.revoke_session(&revoked.id).await.unwrap();
    let rotated_at = now() + 5;
    assert!(store
        .rotate_refresh_token(
            &rotated.id,
            &rotated.refresh_hash,
            &new_hash(),
            1,
            rotated_at + 3600,
            rotated_at
        )
        .await
        .unwrap());

    let listings = store.accounts(now()).await.unwrap();
    assert_eq!(listings.len(), 2, "{listings:?}");
    let listed = listings
        .iter()
        .find(|l| l.user.id == linked.id)
        .expect("the linked account is listed");
    assert_eq!(listed.user.email, linked.email);
    assert_eq!(listed.user.username, linked.username);
    assert_eq!(listed.user.providers, linked.providers);
    let sessions: Vec<&SessionId> = listed.sessions.iter().map(|s| &s.id).collect();
    assert_eq!(
        sessions,
        [&rotated.id, &older.id],
        "live sessions, newest refresh first"
    );
    assert_eq!(listed.sessions[0].refreshed_at, rotated_at);
    assert_eq!(listed.sessions[0].created_at, rotated.created_at);
    assert!(listings
        .iter()
        .find(|l| l.user.id == plain.id)
        .is_some_and(|l| l.sessions.is_empty()));
}

// ---------------------------------------------------------------------------------------------
// Account deletion and the profile (issue 14)

async fn the_picture_and_gender_are_stored_and_cleared(store: &dyn Store) {
    let user = new_user();
    create(store, &user).await;
    let set = change(&user, |u| {
        u.picture = Some(Picture::parse("picture", "https://example.com/me.png").unwrap());
        u.gender = Some(Gender::Male);
    });
    assert_eq!(store.apply(&set).await.unwrap(), Ok(()));
    assert_same_user(&stored_user(store, &user.id).await, &set.after);
    let cleared = change(&set.after, |u| {
        u.picture = None;
        u.gender = None;
    });
    assert_eq!(store.apply(&cleared).await.unwrap(), Ok(()));
    assert_same_user(&stored_user(store, &user.id).await, &cleared.after);
}

/// A user holding every kind of login key, created.
async fn user_with_every_key(store: &dyn Store) -> User {
    let mut user = new_user();
    user.email = Some(new_email());
    user.phone = Some(new_phone());
    user.providers = vec![ProviderLink {
        identity: new_identity(),
        profile: ProviderProfile::default(),
    }];
    create(store, &user).await;
    user
}

fn deletion(user: &User, sudo: &SudoCheck) -> AccountDeletion {
    AccountDeletion {
        user: user.clone(),
        sudo: sudo.clone(),
        now: now(),
    }
}

/// The account and every key it holds are stored as they were.
async fn assert_not_deleted(store: &dyn Store, user: &User) {
    assert_same_user(&stored_user(store, &user.id).await, user);
    for key in user.login_keys() {
        assert_eq!(
            owner_of(store, &key).await,
            Some(user.id.clone()),
            "{key:?}"
        );
    }
}

async fn deleting_an_account_removes_it_with_every_login_key_and_spends_the_sudo_token(
    store: &dyn Store,
) {
    let user = user_with_every_key(store).await;
    let bystander = user_with_every_key(store).await;
    let (session, sudo) = signed_in_with_sudo(store, &user).await;
    assert_eq!(
        store.delete_account(&deletion(&user, &sudo)).await.unwrap(),
        Ok(())
    );
    assert!(store.user(&user.id).await.unwrap().is_none());
    for key in user.login_keys() {
        assert_eq!(owner_of(store, &key).await, None, "{key:?} is still held");
    }
    assert!(store.sudo_token(&sudo.hash).await.unwrap().is_none());
    // The session is left to expire; what refuses it is that its account is gone.
    let (session_read, user_read) = store.session_and_user(&session.id, &user.id).await.unwrap();
    assert!(session_read.is_some());
    assert!(user_read.is_none());
    // Asked again with the same spent token (a retry): done, and nothing else changes.
    assert_eq!(
        store.delete_account(&deletion(&user, &sudo)).await.unwrap(),
        Ok(())
    );
    // With a live token of the gone account: nothing to delete.
    let (_, live) = signed_in_with_sudo(store, &user).await;
    assert_eq!(
        store.delete_account(&deletion(&user, &live)).await.unwrap(),
        Err(ChangeRejected::Stale)
    );
    assert_not_deleted(store, &bystander).await;

    // Every identifier is free for another account at once.
    let mut heir = new_user();
    heir.username = user.username.clone();
    heir.email = user.email.clone();
    heir.phone = user.phone.clone();
    heir.providers = user.providers.clone();
    create(store, &heir).await;
    assert_not_deleted(store, &heir).await;
}

async fn deleting_from_an_outdated_version_is_stale_and_deletes_nothing(store: &dyn Store) {
    let user = user_with_every_key(store).await;
    let (_, sudo) = signed_in_with_sudo(store, &user).await;
    let email = new_email();
    let rebound = change(&user, |u| u.email = Some(email.clone()));
    assert_eq!(store.apply(&rebound).await.unwrap(), Ok(()));

    assert_eq!(
        store.delete_account(&deletion(&user, &sudo)).await.unwrap(),
        Err(ChangeRejected::Stale)
    );
    assert_not_deleted(store, &rebound.after).await;
    assert!(store.sudo_token(&sudo.hash).await.unwrap().is_some());
    // From the current version it goes, with the address bound since.
    assert_eq!(
        store
            .delete_account(&deletion(&rebound.after, &sudo))
            .await
            .unwrap(),
        Ok(())
    );
    assert_eq!(owner_of(store, &email_key(&email)).await, None);
}

async fn deleting_with_a_sudo_token_that_does_not_hold_is_refused_and_deletes_nothing(
    store: &dyn Store,
) {
    let user = user_with_every_key(store).await;
    let (session, sudo) = signed_in_with_sudo(store, &user).await;
    let (_, other_sessions) = signed_in_with_sudo(store, &user).await;
    let stranger = new_user();
    create(store, &stranger).await;
    let (_, strangers) = signed_in_with_sudo(store, &stranger).await;
    let expired = SudoToken {
        hash: new_hash(),
        user_id: user.id.clone(),
        session_id: session.id.clone(),
        // Still stored (DynamoDB deletes it lazily), but past its time.
        expires_at: now() - 1,
        epoch: user.session_epoch,
    };
    assert!(store.grant_sudo(&expired, None, now()).await.unwrap());
    // Alive and this session's, but granted in another epoch of the account (one a password
    // change or sign-out everywhere ended).
    let other_epoch = SudoToken {
        hash: new_hash(),
        expires_at: now() + 300,
        epoch: user.session_epoch + 1,
        ..expired.clone()
    };
    assert!(store.grant_sudo(&other_epoch, None, now()).await.unwrap());
    let refused = [
        SudoCheck {
            hash: other_epoch.hash.clone(),
            ..sudo.clone()
        },
        // Another session's token, presented as this session's.
        SudoCheck {
            session_id: session.id.clone(),
            ..other_sessions
        },
        // Another account's token, presented as this account's.
        SudoCheck {
            user_id: user.id.clone(),
            session_id: session.id.clone(),
            ..strangers.clone()
        },
        SudoCheck {
            hash: expired.hash.clone(),
            ..sudo.clone()
        },
        SudoCheck {
            hash: new_hash(),
            ..sudo.clone()
        },
    ];
    for check in refused {
        assert_eq!(
            store
                .delete_account(&deletion(&user, &check))
                .await
                .unwrap(),
            Err(ChangeRejected::Sudo)
        );
        assert_not_deleted(store, &user).await;
    }
    // The stranger's own token does not delete this account either.
    assert_eq!(
        store
            .delete_account(&deletion(&user, &strangers))
            .await
            .unwrap(),
        Err(ChangeRejected::Sudo)
    );
    assert_not_deleted(store, &user).await;
    assert!(store.sudo_token(&strangers.hash).await.unwrap().is_some());
}

// ---------------------------------------------------------------------------------------------
// Sign-in by code and verified addresses (issue 14)

async fn a_verification_token_exchanges_for_one_session_of_the_account_its_address_names(
    store: &dyn Store,
) {
    let email = new_email();
    let address = Address::Email(email.clone());
    let mut user = new_user();
    user.email = Some(email);
    create(store, &user).await;
    let other = new_user();
    create(store, &other).await;
    let exchange = |hash: &SecretHash, address: &Address, session: &Session| {
        let (hash, address, session) = (hash.clone(), address.clone(), session.clone());
        async move {
            store
                .exchange_for_session(
                    &by_code(&hash, &address),
                    &LoginKey::Address(address.clone()),
                    now(),
                    &session,
                )
                .await
                .unwrap()
        }
    };
    let stored = |session: &Session| {
        let id = session.id.clone();
        async move { store.session(&id).await.unwrap() }
    };

    // Refused, writing nothing: a session of an account the address does not sign in to, a
    // token for another address, an expired token whose record remains, a used token.
    let live = verification_token_for(store, &address, now() + 300, false).await;
    let for_other = new_session(&other, now() + 3600);
    assert!(!exchange(&live, &address, &for_other).await);
    assert!(stored(&for_other).await.is_none());
    let session = new_session(&user, now() + 3600);
    let elsewhere = Address::Email(new_email());
    let for_elsewhere = verification_token_for(store, &elsewhere, now() + 300, false).await;
    assert!(!exchange(&for_elsewhere, &address, &session).await);
    let expired = verification_token_for(store, &address, now() - 1, false).await;
    assert!(!exchange(&expired, &address, &session).await);
    let used = verification_token_for(store, &address, now() + 300, true).await;
    assert!(!exchange(&used, &address, &session).await);
    assert!(stored(&session).await.is_none());
    assert!(!token_used(store, &live).await);

    // Once: the token is spent and the session stored together.
    assert!(exchange(&live, &address, &session).await);
    let kept = stored(&session).await.expect("the session is stored");
    assert_eq!(
        (kept.id, kept.user_id),
        (session.id.clone(), user.id.clone())
    );
    assert!(token_used(store, &live).await);
    let again = new_session(&user, now() + 3600);
    assert!(!exchange(&live, &address, &again).await);
    assert!(stored(&again).await.is_none());
}

/// A verification asked for by `user`, redeemed remembering that `user` verified `address`.
async fn remembered(
    store: &dyn Store,
    user: &User,
    address: &Address,
    expires_at: UnixTime,
) -> bool {
    let mut verification = new_verification(address, now() + 600);
    verification.requested_by = Some(user.id.clone());
    store.put_verification(&verification).await.unwrap();
    let memory = VerifiedAddress {
        user_id: user.id.clone(),
        address: address.clone(),
        expires_at,
    };
    store
        .redeem_verification(
            &verification.id,
            MAX_ATTEMPTS,
            now(),
            &earned_token(address),
            Some(&memory),
        )
        .await
        .unwrap()
}

/// A change binding `email` to `user` that spends the memory of `spender` verifying it.
fn bind_remembered(user: &User, spender: &User, email: &Email) -> AccountChange {
    let mut bind = change(user, |u| u.email = Some(email.clone()));
    bind.spend = Some(Spend::VerifiedAddress {
        user_id: spender.id.clone(),
        address: Address::Email(email.clone()),
    });
    bind
}

async fn a_remembered_address_is_stored_with_its_redeem_or_not_at_all(store: &dyn Store) {
    let user = new_user();
    create(store, &user).await;
    let email = new_email();
    let address = Address::Email(email.clone());

    // A verification that does not redeem (already used) remembers nothing.
    let mut verification = new_verification(&address, now() + 600);
    verification.requested_by = Some(user.id.clone());
    store.put_verification(&verification).await.unwrap();
    assert!(store
        .redeem_verification(
            &verification.id,
            MAX_ATTEMPTS,
            now(),
            &earned_token(&address),
            None
        )
        .await
        .unwrap());
    let memory = VerifiedAddress {
        user_id: user.id.clone(),
        address: address.clone(),
        expires_at: now() + 300,
    };
    let token = earned_token(&address);
    assert!(!store
        .redeem_verification(&verification.id, MAX_ATTEMPTS, now(), &token, Some(&memory))
        .await
        .unwrap());
    assert!(store
        .verification_token(&token.hash)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .apply(&bind_remembered(&user, &user, &email))
            .await
            .unwrap(),
        Err(ChangeRejected::Token)
    );

    // One that redeems stores its token and the memory together.
    assert_eq!(
        store
            .verification(&verification.id)
            .await
            .unwrap()
            .unwrap()
            .requested_by,
        Some(user.id.clone())
    );
    assert!(remembered(store, &user, &address, now() + 300).await);
    assert_eq!(
        store
            .apply(&bind_remembered(&user, &user, &email))
            .await
            .unwrap(),
        Ok(())
    );
    assert_eq!(owner_of(store, &email_key(&email)).await, Some(user.id));
}

async fn a_remembered_address_is_spent_by_one_bind_of_its_account_and_address_while_alive(
    store: &dyn Store,
) {
    let user = new_user();
    create(store, &user).await;
    let other = new_user();
    create(store, &other).await;
    let email = new_email();
    let address = Address::Email(email.clone());
    assert!(remembered(store, &user, &address, now() + 300).await);

    // Another account's memory, another address, an expired memory: rejected, nothing written.
    assert_eq!(
        store
            .apply(&bind_remembered(&other, &user, &email))
            .await
            .unwrap(),
        Err(ChangeRejected::Token)
    );
    assert_eq!(
        store
            .apply(&bind_remembered(&other, &other, &email))
            .await
            .unwrap(),
        Err(ChangeRejected::Token)
    );
    let elsewhere = new_email();
    assert_eq!(
        store
            .apply(&bind_remembered(&user, &user, &elsewhere))
            .await
            .unwrap(),
        Err(ChangeRejected::Token)
    );
    let stale = new_email();
    assert!(remembered(store, &user, &Address::Email(stale.clone()), now() - 1).await);
    assert_eq!(
        store
            .apply(&bind_remembered(&user, &user, &stale))
            .await
            .unwrap(),
        Err(ChangeRejected::Token)
    );
    assert_same_user(&stored_user(store, &user.id).await, &user);

    // The address held by another account: `Taken`, and the memory stays unspent.
    let holder = stored_user(store, &other.id).await;
    let held = change(&holder, |u| u.email = Some(email.clone()));
    assert_eq!(store.apply(&held).await.unwrap(), Ok(()));
    assert_eq!(
        store
            .apply(&bind_remembered(&user, &user, &email))
            .await
            .unwrap(),
        Err(ChangeRejected::Taken(email_key(&email)))
    );
    let released = change(&held.after, |u| u.email = None);
    assert_eq!(store.apply(&released).await.unwrap(), Ok(()));

    // Once.
    assert_eq!(
        store
            .apply(&bind_remembered(&user, &user, &email))
            .await
            .unwrap(),
        Ok(())
    );
    let bound = stored_user(store, &user.id).await;
    let mut again = change(&bound, |u| u.name = None);
    again.spend = Some(Spend::VerifiedAddress {
        user_id: user.id.clone(),
        address,
    });
    assert_eq!(
        store.apply(&again).await.unwrap(),
        Err(ChangeRejected::Token)
    );
}

async fn an_anonymous_accounts_expiry_reads_back_and_ends_with_its_upgrade(store: &dyn Store) {
    let mut user = new_user();
    user.username = None;
    user.password_hash = None;
    user.expires_at = Some(now() + 3600);
    create(store, &user).await;
    let (_, read) = store
        .session_and_user(&SessionId::generate(), &user.id)
        .await
        .unwrap();
    assert_eq!(read.expect("the user").expires_at, user.expires_at);
    let upgraded = change(&user, |u| {
        u.email = Some(new_email());
        u.expires_at = None;
    });
    assert_eq!(store.apply(&upgraded).await.unwrap(), Ok(()));
    assert_eq!(stored_user(store, &user.id).await.expires_at, None);
}

// ---------------------------------------------------------------------------------------------
// Passwords and the session epoch

const NEW_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3aGFzaA";

/// A stored user with a username and an email: two login keys that repeat its hash and epoch.
async fn user_with_email(store: &dyn Store) -> User {
    let mut user = new_user();
    user.email = Some(new_email());
    create(store, &user).await;
    user
}

/// The change of a password: a new hash, one epoch on.
fn password_change(before: &User) -> AccountChange {
    change(before, |u| {
        u.password_hash = Some(NEW_HASH.to_string());
        u.session_epoch += 1;
    })
}

async fn stored_session(store: &dyn Store, session: &Session) -> Session {
    let (stored, _) = store
        .session_and_user(&session.id, &session.user_id)
        .await
        .unwrap();
    stored.expect("the session is stored")
}

async fn assert_logins_repeat(store: &dyn Store, user: &User) {
    for key in user.login_keys() {
        assert_eq!(
            store.login(&key).await.unwrap(),
            Some(login_of(user)),
            "{key:?}"
        );
    }
}

async fn a_password_change_moves_the_epoch_keeps_its_session_and_rewrites_every_login_key(
    store: &dyn Store,
) {
    let user = user_with_email(store).await;
    let (kept, sudo) = signed_in_with_sudo(store, &user).await;
    let other = new_session(&user, now() + 3600);
    store.create_session(&other).await.unwrap();
    let mut change = password_change(&user);
    change.sudo = Some(sudo);

    assert_eq!(
        store.apply(&keeping(&change, &kept.id)).await.unwrap(),
        Ok(())
    );
    assert_same_user(&stored_user(store, &user.id).await, &change.after);
    assert_logins_repeat(store, &change.after).await;
    assert_eq!(stored_session(store, &kept).await.epoch, 1);
    assert_eq!(stored_session(store, &other).await.epoch, 0, "left behind");
}

async fn a_sudo_token_of_an_ended_epoch_is_rejected(store: &dyn Store) {
    let user = user_with_email(store).await;
    let (kept, sudo) = signed_in_with_sudo(store, &user).await;
    let mut first = password_change(&user);
    first.sudo = Some(sudo.clone());
    assert_eq!(
        store.apply(&keeping(&first, &kept.id)).await.unwrap(),
        Ok(())
    );
    // The same token, from the same (kept) session, for the account as it now is.
    let mut again = password_change(&first.after);
    again.sudo = Some(sudo);
    assert_eq!(
        store.apply(&keeping(&again, &kept.id)).await.unwrap(),
        Err(ChangeRejected::Sudo)
    );
    let mut bind = change(&first.after, |u| u.name = None);
    bind.sudo = again.sudo.clone();
    assert_eq!(store.apply(&bind).await.unwrap(), Err(ChangeRejected::Sudo));
    assert_same_user(&stored_user(store, &user.id).await, &first.after);
}

async fn a_password_change_keeping_an_ended_session_is_rejected_and_writes_nothing(
    store: &dyn Store,
) {
    let user = user_with_email(store).await;
    let (kept, sudo) = signed_in_with_sudo(store, &user).await;
    let mut change = password_change(&user);
    change.sudo = Some(sudo);
    store.revoke_session(&kept.id).await.unwrap();
    assert_eq!(
        store.apply(&keeping(&change, &kept.id)).await.unwrap(),
        Err(ChangeRejected::Sudo)
    );
    // Another account's session, or none, cannot be kept either.
    let stranger = new_user();
    let theirs = new_session(&stranger, now() + 3600);
    store.create_session(&theirs).await.unwrap();
    for session in [&theirs.id, &SessionId::generate()] {
        assert_eq!(
            store.apply(&keeping(&change, session)).await.unwrap(),
            Err(ChangeRejected::Sudo)
        );
    }
    assert_same_user(&stored_user(store, &user.id).await, &user);
    assert_logins_repeat(store, &user).await;
    assert_eq!(stored_session(store, &kept).await.epoch, 0);
}

async fn a_reset_spends_a_token_for_its_address_once_with_the_new_password(store: &dyn Store) {
    let user = user_with_email(store).await;
    let address = Address::Email(user.email.clone().unwrap());
    let elsewhere = Address::Email(new_email());
    let foreign = verification_token_for(store, &elsewhere, now() + 300, false).await;
    let token = verification_token_for(store, &address, now() + 300, false).await;
    let reset = |before: &User, hash: &SecretHash| {
        let mut change = password_change(before);
        change.spend = Some(Spend::Verification {
            hash: hash.clone(),
            address: address.clone(),
        });
        change
    };

    let refused = reset(&user, &foreign);
    assert_eq!(
        store.apply(&refused).await.unwrap(),
        Err(ChangeRejected::Token)
    );
    assert!(!token_used(store, &foreign).await, "not spent by a refusal");
    assert_same_user(&stored_user(store, &user.id).await, &user);
    assert_logins_repeat(store, &user).await;

    let done = reset(&user, &token);
    assert_eq!(store.apply(&done).await.unwrap(), Ok(()));
    assert!(token_used(store, &token).await);
    assert_logins_repeat(store, &done.after).await;
    let twice = reset(&done.after, &token);
    assert_eq!(
        store.apply(&twice).await.unwrap(),
        Err(ChangeRejected::Token)
    );
    assert_same_user(&stored_user(store, &user.id).await, &done.after);
}

async fn moving_the_epoch_alone_is_repeated_on_every_login_key(store: &dyn Store) {
    let user = user_with_email(store).await;
    let ended = change(&user, |u| u.session_epoch += 1);
    assert_eq!(store.apply(&ended).await.unwrap(), Ok(()));
    assert_logins_repeat(store, &ended.after).await;
    assert_eq!(
        store
            .login(&email_key(user.email.as_ref().unwrap()))
            .await
            .unwrap()
            .map(|login| login.session_epoch),
        Some(1)
    );
}

/// Items written before the epoch existed lack its attributes: they read as epoch 0, and such
/// a sudo token still passes for an account of epoch 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_items_stored_before_the_epoch_read_as_epoch_zero() {
    let store = test_support::moto::fresh_store("before_the_epoch").await;
    let user = user_with_email(&store).await;
    let (session, sudo) = signed_in_with_sudo(&store, &user).await;
    let client = test_support::moto::dynamodb_client().await;
    let mut items = vec![
        (format!("USER#{}", user.id.as_str()), "session_epoch"),
        (format!("SESSION#{}", session.id.as_str()), "epoch"),
        (format!("SUDO#{}", sudo.hash.to_hex()), "epoch"),
    ];
    for key in user.login_keys() {
        items.push((format!("LOGIN#{}", key.storage_key()), "session_epoch"));
    }
    for (pk, attribute) in items {
        client
            .update_item()
            .table_name(store.table())
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk))
            .update_expression("REMOVE #a")
            .expression_attribute_names("#a", attribute)
            .send()
            .await
            .unwrap();
    }
    assert_same_user(&stored_user(&store, &user.id).await, &user);
    assert_logins_repeat(&store, &user).await;
    assert_eq!(stored_session(&store, &session).await.epoch, 0);
    assert_eq!(
        store.sudo_token(&sudo.hash).await.unwrap().map(|t| t.epoch),
        Some(0)
    );
    let mut rename = change(&user, |u| u.name = None);
    rename.sudo = Some(sudo);
    assert_eq!(store.apply(&rename).await.unwrap(), Ok(()));
}

// ---------------------------------------------------------------------------------------------
// Custom-login tickets (issue 25)

fn new_custom_uid() -> CustomUid {
    CustomUid::parse(&format!("Emp#{}", random_hex(12))).unwrap()
}

async fn a_custom_uid_is_a_login_key_of_one_account_released_by_deletion(store: &dyn Store) {
    let uid = new_custom_uid();
    let key = LoginKey::Custom(uid.clone());
    let mut first = new_user();
    first.custom_uid = Some(uid.clone());
    create(store, &first).await;
    assert_eq!(store.login(&key).await.unwrap(), Some(login_of(&first)));
    assert_eq!(
        stored_user(store, &first.id).await.custom_uid,
        Some(uid.clone())
    );
    let mut second = new_user();
    second.custom_uid = Some(uid.clone());
    assert_eq!(
        store.apply(&creation(&second)).await.unwrap(),
        Err(ChangeRejected::Taken(key.clone()))
    );
    assert!(
        store.user(&second.id).await.unwrap().is_none(),
        "nothing of it was written"
    );
    // Deleting the account frees the uid: its next ticket makes a new account.
    let (_, sudo) = signed_in_with_sudo(store, &first).await;
    let deletion = AccountDeletion {
        user: stored_user(store, &first.id).await,
        sudo,
        now: now(),
    };
    assert_eq!(store.delete_account(&deletion).await.unwrap(), Ok(()));
    assert_eq!(owner_of(store, &key).await, None);
    create(store, &second).await;
    assert_eq!(owner_of(store, &key).await, Some(second.id.clone()));
}

async fn a_sessions_limits_read_back_and_outlast_rotation(store: &dyn Store) {
    let user = new_user();
    create(store, &user).await;
    let mut session = new_session(&user, now() + 600);
    session.limits = SessionLimits {
        ends_at: Some(now() + 600),
        access_token_ttl_secs: Some(120),
    };
    store.create_session(&session).await.unwrap();
    let stored = store
        .session(&session.id)
        .await
        .unwrap()
        .expect("the session");
    assert_eq!(stored.limits, session.limits);
    let next = new_hash();
    assert!(store
        .rotate_refresh_token(
            &session.id,
            &session.refresh_hash,
            &next,
            1,
            now() + 300,
            now()
        )
        .await
        .unwrap());
    let (rotated, _) = store.session_and_user(&session.id, &user.id).await.unwrap();
    let rotated = rotated.expect("the session");
    assert_eq!(rotated.limits, session.limits);
    assert_eq!(rotated.generation, 1);
}
