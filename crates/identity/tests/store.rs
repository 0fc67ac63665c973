//! The identity store's conformance suite: every `IdentityStore` method, run
//! against SQLite by default and against PostgreSQL when
//! `STAMPEDE_TEST_DATABASE_URL` is set.

use identity::model::{Email, NewUser, Rotation, User};
use identity::store::{CreateUserError, IdentityStore, NewSession, RoleChange, SqlIdentityStore};
use kernel::Timestamp;
use kernel::db::{Db, DbOptions};
use kernel::testing::TestDatabase;
use kernel::{PageRequest, Role, Roles, UserId};
use time::Duration;
use time::macros::datetime;
use uuid::Uuid;

/// A fixed instant all timestamps are taken from.
/// The instant every story starts at.
fn t0() -> Timestamp {
    datetime!(2026-11-22 10:00:00.123456 UTC).into()
}

/// How many times each race is run.
const RACE_ROUNDS: usize = 50;

async fn open() -> (TestDatabase, Db, SqlIdentityStore) {
    let test = TestDatabase::create().await;
    let db = Db::connect(test.url(), &DbOptions::default())
        .await
        .expect("connect");
    db.migrate(bus::migrations())
        .await
        .expect("migrate the outbox");
    db.migrate(identity::migrations()).await.expect("migrate");
    let store = SqlIdentityStore::new(db.clone());
    (test, db, store)
}

/// The topics waiting in the outbox, oldest first.
async fn outbox_topics(db: &Db) -> Vec<String> {
    kernel::read!(db, |pool| {
        sqlx::query_scalar("select topic from outbox_messages order by id")
            .fetch_all(pool)
            .await
    })
    .expect("read the outbox")
}

fn email(raw: &str) -> Email {
    Email::parse(raw).expect("a valid email")
}

fn new_user(address: &str, referral_code: &str, roles: &[Role]) -> NewUser {
    NewUser {
        id: UserId::new(),
        email: email(address),
        password_hash: format!("hash of {address}"),
        roles: Roles::of(roles),
        referral_code: referral_code.to_owned(),
        referred_by: None,
        created_at: t0(),
    }
}

async fn create(store: &SqlIdentityStore, address: &str, code: &str, roles: &[Role]) -> User {
    store
        .create_user(new_user(address, code, roles))
        .await
        .expect("create the user")
}

fn page(limit: u32, after: Option<UserId>) -> PageRequest {
    PageRequest {
        limit,
        after: after.map(Uuid::from),
    }
}

fn ids(users: &[User]) -> Vec<UserId> {
    users.iter().map(|u| u.id).collect()
}

async fn token_version(store: &SqlIdentityStore, id: UserId) -> i64 {
    store
        .token_version(id)
        .await
        .expect("read the token version")
        .expect("the user exists")
}

/// Starts a login for `user` whose first refresh token has the given hash
/// and expires an hour after `t0()`.
async fn login(store: &SqlIdentityStore, user: UserId, hash: &[u8]) -> Uuid {
    let session_id = Uuid::now_v7();
    store
        .start_session(NewSession {
            session_id,
            user_id: user,
            refresh_token_hash: hash.to_vec(),
            expires_at: t0() + Duration::hours(1),
            now: t0(),
        })
        .await
        .expect("start the session");
    session_id
}

async fn rotate(store: &SqlIdentityStore, presented: &[u8], replacement: &[u8]) -> Rotation {
    store
        .rotate_refresh_token(
            presented.to_vec(),
            replacement.to_vec(),
            t0() + Duration::hours(2),
            t0() + Duration::minutes(1),
        )
        .await
        .expect("present the refresh token")
}

// ---- create_user and user_by_referral_code ----

#[tokio::test]
async fn a_created_user_is_returned_as_stored() {
    let (_test, db, store) = open().await;
    let new = new_user("Alice@Example.com", "ALICE234", &[Role::User]);

    let user = store.create_user(new.clone()).await.expect("create");

    assert_eq!(user.id, new.id);
    assert_eq!(user.email.as_str(), "alice@example.com");
    assert_eq!(user.roles, Roles::of(&[Role::User]));
    assert_eq!(user.referral_code, "ALICE234");
    assert_eq!(user.created_at, t0());
    let stored = store
        .credentials_by_id(new.id)
        .await
        .expect("read")
        .expect("the user was stored");
    assert_eq!(stored.user, user);
    db.close().await;
}

#[tokio::test]
async fn a_duplicate_email_is_refused() {
    let (_test, db, store) = open().await;
    create(&store, "alice@example.com", "ALICE234", &[Role::User]).await;
    let twin = new_user("alice@example.com", "OTHER234", &[Role::User]);
    let twin_id = twin.id;

    let result = store.create_user(twin).await;

    assert!(
        matches!(result, Err(CreateUserError::EmailTaken)),
        "{result:?}"
    );
    assert!(
        store
            .credentials_by_id(twin_id)
            .await
            .expect("read")
            .is_none()
    );
    db.close().await;
}

#[tokio::test]
async fn a_duplicate_referral_code_is_refused() {
    let (_test, db, store) = open().await;
    create(&store, "alice@example.com", "SAMECODE", &[Role::User]).await;
    let other = new_user("bob@example.com", "SAMECODE", &[Role::User]);

    let result = store.create_user(other).await;

    assert!(
        matches!(result, Err(CreateUserError::ReferralCodeTaken)),
        "{result:?}"
    );
    assert!(
        store
            .credentials(&email("bob@example.com"))
            .await
            .expect("read")
            .is_none()
    );
    db.close().await;
}

#[tokio::test]
async fn a_referral_code_leads_to_its_owner() {
    let (_test, db, store) = open().await;
    let alice = create(&store, "alice@example.com", "ALICE234", &[Role::User]).await;
    create(&store, "bob@example.com", "BOBB2345", &[Role::User]).await;

    let owner = store
        .user_by_referral_code("ALICE234")
        .await
        .expect("look up");
    let nobody = store
        .user_by_referral_code("NOBODY23")
        .await
        .expect("look up");

    assert_eq!(owner, Some(alice.id));
    assert_eq!(nobody, None);
    db.close().await;
}

#[tokio::test]
async fn a_referred_user_is_created_with_the_referral() {
    let (_test, db, store) = open().await;
    create(&store, "alice@example.com", "ALICE234", &[Role::User]).await;
    let referrer = store
        .user_by_referral_code("ALICE234")
        .await
        .expect("look up")
        .expect("alice owns the code");
    let mut bob = new_user("bob@example.com", "BOBB2345", &[Role::User]);
    bob.referred_by = Some(referrer);

    let created = store.create_user(bob.clone()).await.expect("create bob");

    assert_eq!(created.id, bob.id);
    assert_eq!(
        store
            .user_by_referral_code("BOBB2345")
            .await
            .expect("look up"),
        Some(bob.id)
    );
    db.close().await;
}

#[tokio::test]
async fn a_referral_by_an_unknown_user_creates_nothing() {
    let (_test, db, store) = open().await;
    let mut bob = new_user("bob@example.com", "BOBB2345", &[Role::User]);
    bob.referred_by = Some(UserId::new());
    let bob_id = bob.id;

    let result = store.create_user(bob).await;

    // The referral is written with the user: its foreign key refuses a
    // referrer that does not exist, and the user is rolled back with it.
    assert!(
        matches!(result, Err(CreateUserError::Database(_))),
        "{result:?}"
    );
    assert!(
        store
            .credentials_by_id(bob_id)
            .await
            .expect("read")
            .is_none()
    );
    assert_eq!(
        store
            .user_by_referral_code("BOBB2345")
            .await
            .expect("look up"),
        None
    );
    db.close().await;
}

// ---- credentials and credentials_by_id ----

#[tokio::test]
async fn credentials_are_found_by_email_with_roles_and_token_version() {
    let (_test, db, store) = open().await;
    let alice = create(
        &store,
        "alice@example.com",
        "ALICE234",
        &[Role::User, Role::Auditor],
    )
    .await;

    let found = store
        .credentials(&email("ALICE@example.com"))
        .await
        .expect("read")
        .expect("alice is found");

    assert_eq!(found.user, alice);
    assert_eq!(found.user.roles, Roles::of(&[Role::User, Role::Auditor]));
    assert_eq!(found.password_hash, "hash of alice@example.com");
    assert_eq!(found.token_version, 0);
    db.close().await;
}

#[tokio::test]
async fn credentials_are_found_by_id_and_follow_the_token_version() {
    let (_test, db, store) = open().await;
    let alice = create(&store, "alice@example.com", "ALICE234", &[Role::User]).await;
    store
        .set_roles(alice.id, Roles::of(&[Role::Operator]), t0())
        .await
        .expect("change roles");

    let found = store
        .credentials_by_id(alice.id)
        .await
        .expect("read")
        .expect("alice is found");

    assert_eq!(found.user.id, alice.id);
    assert_eq!(found.user.email, alice.email);
    assert_eq!(found.user.roles, Roles::of(&[Role::Operator]));
    assert_eq!(found.password_hash, "hash of alice@example.com");
    assert_eq!(found.token_version, 1);
    db.close().await;
}

#[tokio::test]
async fn credentials_of_an_unknown_user_are_none() {
    let (_test, db, store) = open().await;
    create(&store, "alice@example.com", "ALICE234", &[Role::User]).await;

    let by_email = store
        .credentials(&email("bob@example.com"))
        .await
        .expect("read");
    let by_id = store.credentials_by_id(UserId::new()).await.expect("read");

    assert!(by_email.is_none());
    assert!(by_id.is_none());
    db.close().await;
}

/// Five users, `user0@…` to `user4@…`, in id order.
async fn five_users(store: &SqlIdentityStore) -> Vec<User> {
    let mut created = Vec::new();
    for (i, code) in ["CODE2222", "CODE3333", "CODE4444", "CODE5555", "CODE6666"]
        .into_iter()
        .enumerate()
    {
        created.push(create(store, &format!("user{i}@example.com"), code, &[Role::User]).await);
    }
    created.sort_by_key(|u| u.id);
    created
}

// ---- list_users ----

#[tokio::test]
async fn users_are_listed_in_id_order_one_more_than_the_limit() {
    let (_test, db, store) = open().await;
    let created = five_users(&store).await;

    let first = store.list_users(None, page(2, None)).await.expect("list");

    assert_eq!(first.len(), 3, "fetch_limit is the limit plus one");
    assert_eq!(first, created[..3].to_vec());
    db.close().await;
}

#[tokio::test]
async fn a_page_starts_after_its_cursor() {
    let (_test, db, store) = open().await;
    let created = five_users(&store).await;
    let all = ids(&created);

    let second = store
        .list_users(None, page(2, Some(all[1])))
        .await
        .expect("list");
    let last = store
        .list_users(None, page(2, Some(all[3])))
        .await
        .expect("list");
    let past_the_end = store
        .list_users(None, page(2, Some(all[4])))
        .await
        .expect("list");

    assert_eq!(ids(&second), all[2..5].to_vec());
    assert_eq!(ids(&last), all[4..].to_vec());
    assert!(past_the_end.is_empty());
    db.close().await;
}

#[tokio::test]
async fn the_email_filter_is_a_case_insensitive_contains() {
    let (_test, db, store) = open().await;
    let alice = create(&store, "alice@wonder.example", "CODE2222", &[Role::User]).await;
    let malice = create(&store, "malice@example.com", "CODE3333", &[Role::User]).await;
    create(&store, "bob@example.com", "CODE4444", &[Role::User]).await;
    let mut expected = vec![alice.id, malice.id];
    expected.sort();

    let found = store
        .list_users(Some("ALIce".to_owned()), page(10, None))
        .await
        .expect("list");
    let none = store
        .list_users(Some("carol".to_owned()), page(10, None))
        .await
        .expect("list");

    assert_eq!(ids(&found), expected);
    assert!(none.is_empty());
    db.close().await;
}

#[tokio::test]
async fn the_email_filter_treats_wildcards_literally() {
    let (_test, db, store) = open().await;
    let percent = create(&store, "per%cent@example.com", "CODE2222", &[Role::User]).await;
    create(&store, "perxcent@example.com", "CODE3333", &[Role::User]).await;
    let underscore = create(&store, "under_score@example.com", "CODE4444", &[Role::User]).await;
    create(&store, "underxscore@example.com", "CODE5555", &[Role::User]).await;
    let backslash = create(&store, "back\\slash@example.com", "CODE6666", &[Role::User]).await;

    let by_percent = store
        .list_users(Some("%".to_owned()), page(10, None))
        .await
        .expect("list");
    let by_underscore = store
        .list_users(Some("r_s".to_owned()), page(10, None))
        .await
        .expect("list");
    let by_backslash = store
        .list_users(Some("k\\s".to_owned()), page(10, None))
        .await
        .expect("list");

    assert_eq!(ids(&by_percent), vec![percent.id]);
    assert_eq!(ids(&by_underscore), vec![underscore.id]);
    assert_eq!(ids(&by_backslash), vec![backslash.id]);
    db.close().await;
}

#[tokio::test]
async fn the_email_filter_and_the_cursor_combine() {
    let (_test, db, store) = open().await;
    let mut matching = Vec::new();
    for (i, code) in ["CODE2222", "CODE3333", "CODE4444", "CODE5555"]
        .into_iter()
        .enumerate()
    {
        matching.push(create(&store, &format!("team{i}@example.com"), code, &[Role::User]).await);
        create(
            &store,
            &format!("other{i}@example.com"),
            &format!("OTHR{i}{i}{i}{i}"),
            &[Role::User],
        )
        .await;
    }
    let mut expected = ids(&matching);
    expected.sort();

    let rest = store
        .list_users(Some("team".to_owned()), page(1, Some(expected[0])))
        .await
        .expect("list");

    assert_eq!(ids(&rest), expected[1..3].to_vec());
    db.close().await;
}

// ---- set_roles and token_version ----

#[tokio::test]
async fn a_role_change_replaces_the_roles_and_bumps_the_token_version() {
    let (_test, db, store) = open().await;
    let alice = create(&store, "alice@example.com", "ALICE234", &[Role::User]).await;
    let roles = Roles::of(&[Role::User, Role::Operator]);

    let change = store
        .set_roles(alice.id, roles, t0() + Duration::minutes(5))
        .await
        .expect("change roles");

    let expected = User {
        roles,
        ..alice.clone()
    };
    assert_eq!(change, RoleChange::Changed(expected));
    assert_eq!(token_version(&store, alice.id).await, 1);
    let stored = store
        .credentials_by_id(alice.id)
        .await
        .expect("read")
        .expect("alice exists");
    assert_eq!(stored.user.roles, roles);
    db.close().await;
}

#[tokio::test]
async fn a_role_change_for_an_unknown_user_is_not_found() {
    let (_test, db, store) = open().await;

    let change = store
        .set_roles(UserId::new(), Roles::of(&[Role::Admin]), t0())
        .await
        .expect("change roles");

    assert_eq!(change, RoleChange::NotFound);
    db.close().await;
}

#[tokio::test]
async fn the_only_admin_cannot_be_demoted() {
    let (_test, db, store) = open().await;
    let admin = create(&store, "admin@example.com", "ADMN2345", &[Role::Admin]).await;
    create(&store, "alice@example.com", "ALICE234", &[Role::User]).await;

    let change = store
        .set_roles(admin.id, Roles::of(&[Role::User]), t0())
        .await
        .expect("change roles");

    assert_eq!(change, RoleChange::LastAdmin);
    let stored = store
        .credentials_by_id(admin.id)
        .await
        .expect("read")
        .expect("the admin exists");
    assert_eq!(stored.user.roles, Roles::of(&[Role::Admin]));
    assert_eq!(stored.token_version, 0);
    db.close().await;
}

#[tokio::test]
async fn the_only_admin_may_gain_roles_while_staying_admin() {
    let (_test, db, store) = open().await;
    let admin = create(&store, "admin@example.com", "ADMN2345", &[Role::Admin]).await;
    let roles = Roles::of(&[Role::Admin, Role::Operator]);

    let change = store
        .set_roles(admin.id, roles, t0())
        .await
        .expect("change roles");

    assert_eq!(change, RoleChange::Changed(User { roles, ..admin }));
    db.close().await;
}

#[tokio::test]
async fn one_of_two_admins_may_be_demoted() {
    let (_test, db, store) = open().await;
    let first = create(&store, "first@example.com", "FRST2345", &[Role::Admin]).await;
    create(&store, "second@example.com", "SCND2345", &[Role::Admin]).await;

    let change = store
        .set_roles(first.id, Roles::of(&[Role::User]), t0())
        .await
        .expect("change roles");

    assert_eq!(
        change,
        RoleChange::Changed(User {
            roles: Roles::of(&[Role::User]),
            ..first
        })
    );
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_admins_demoting_each_other_at_once_leave_an_admin() {
    let (_test, db, store) = open().await;
    let first = create(&store, "first@example.com", "FRST2345", &[Role::Admin]).await;
    let second = create(&store, "second@example.com", "SCND2345", &[Role::Admin]).await;
    let (admin, demoted) = (Roles::of(&[Role::Admin]), Roles::of(&[Role::User]));

    // A race is not lost every time: run it for several rounds, making both
    // ADMIN again before each.
    for round in 0..RACE_ROUNDS {
        let (a, b) = tokio::join!(
            store.set_roles(first.id, demoted, t0()),
            store.set_roles(second.id, demoted, t0())
        );

        let outcomes = [a.expect("demote first"), b.expect("demote second")];
        let changed = outcomes
            .iter()
            .filter(|o| matches!(o, RoleChange::Changed(_)))
            .count();
        assert!(changed <= 1, "round {round}: {outcomes:?}");
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, RoleChange::Changed(_) | RoleChange::LastAdmin)),
            "round {round}: {outcomes:?}"
        );
        let users = store.list_users(None, page(10, None)).await.expect("list");
        assert!(
            users.iter().any(|u| u.roles.contains(Role::Admin)),
            "round {round}: {users:?}"
        );
        for id in [first.id, second.id] {
            store
                .set_roles(id, admin, t0())
                .await
                .expect("make ADMIN again");
        }
    }
    db.close().await;
}

#[tokio::test]
async fn the_token_version_of_an_unknown_user_is_none() {
    let (_test, db, store) = open().await;
    let alice = create(&store, "alice@example.com", "ALICE234", &[Role::User]).await;

    let known = store.token_version(alice.id).await.expect("read");
    let unknown = store.token_version(UserId::new()).await.expect("read");

    assert_eq!(known, Some(0));
    assert_eq!(unknown, None);
    db.close().await;
}

// ---- start_session, rotate_refresh_token and session_of_refresh_token ----

#[tokio::test]
async fn a_current_refresh_token_is_rotated() {
    let (_test, db, store) = open().await;
    let alice = create(&store, "alice@example.com", "ALICE234", &[Role::User]).await;
    let session = login(&store, alice.id, b"first").await;

    let rotation = rotate(&store, b"first", b"second").await;

    assert_eq!(
        rotation,
        Rotation::Rotated {
            user_id: alice.id,
            session_id: session
        }
    );
    assert_eq!(
        rotate(&store, b"second", b"third").await,
        Rotation::Rotated {
            user_id: alice.id,
            session_id: session
        },
        "the replacement is the current token"
    );
    assert_eq!(token_version(&store, alice.id).await, 0);
    db.close().await;
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_the_login() {
    let (_test, db, store) = open().await;
    let alice = create(&store, "alice@example.com", "ALICE234", &[Role::User]).await;
    login(&store, alice.id, b"first").await;
    rotate(&store, b"first", b"second").await;

    let reuse = rotate(&store, b"first", b"stolen").await;

    assert_eq!(reuse, Rotation::Reused { user_id: alice.id });
    assert_eq!(rotate(&store, b"second", b"third").await, Rotation::Invalid);
    assert_eq!(token_version(&store, alice.id).await, 1);
    assert_eq!(
        store
            .session_of_refresh_token(b"stolen".to_vec())
            .await
            .expect("look up"),
        None,
        "no replacement is issued on reuse"
    );
    db.close().await;
}

#[tokio::test]
async fn an_unknown_refresh_token_is_invalid() {
    let (_test, db, store) = open().await;
    let alice = create(&store, "alice@example.com", "ALICE234", &[Role::User]).await;
    login(&store, alice.id, b"first").await;

    let rotation = rotate(&store, b"never issued", b"second").await;

    assert_eq!(rotation, Rotation::Invalid);
    assert_eq!(token_version(&store, alice.id).await, 0);
    db.close().await;
}

#[tokio::test]
async fn an_expired_refresh_token_is_invalid() {
    let (_test, db, store) = open().await;
    let alice = create(&store, "alice@example.com", "ALICE234", &[Role::User]).await;
    let session = login(&store, alice.id, b"first").await;

    let late = store
        .rotate_refresh_token(
            b"first".to_vec(),
            b"second".to_vec(),
            t0() + Duration::hours(3),
            t0() + Duration::hours(1) + Duration::seconds(1),
        )
        .await
        .expect("present the refresh token");

    assert_eq!(late, Rotation::Invalid);
    assert_eq!(
        store
            .session_of_refresh_token(b"second".to_vec())
            .await
            .expect("look up"),
        None
    );
    assert_eq!(
        rotate(&store, b"first", b"second").await,
        Rotation::Rotated {
            user_id: alice.id,
            session_id: session
        },
        "the refused presentation did not spend the token"
    );
    db.close().await;
}

#[tokio::test]
async fn a_refresh_token_of_a_revoked_login_is_invalid() {
    let (_test, db, store) = open().await;
    let alice = create(&store, "alice@example.com", "ALICE234", &[Role::User]).await;
    let session = login(&store, alice.id, b"first").await;
    store
        .revoke_session(session, t0())
        .await
        .expect("revoke")
        .expect("the login was active");

    let rotation = rotate(&store, b"first", b"second").await;

    assert_eq!(rotation, Rotation::Invalid);
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_two_concurrent_rotations_exactly_one_wins() {
    let (_test, db, store) = open().await;
    let alice = create(&store, "alice@example.com", "ALICE234", &[Role::User]).await;

    // A race is not lost every time: run it for several rounds, each on a
    // login of its own.
    for round in 0..RACE_ROUNDS {
        let (first, one, other) = (
            format!("first {round}"),
            format!("one {round}"),
            format!("other {round}"),
        );
        let session = login(&store, alice.id, first.as_bytes()).await;

        let (a, b) = tokio::join!(
            rotate(&store, first.as_bytes(), one.as_bytes()),
            rotate(&store, first.as_bytes(), other.as_bytes())
        );

        let outcomes = [a, b];
        let won = Rotation::Rotated {
            user_id: alice.id,
            session_id: session,
        };
        let rotated = outcomes.iter().filter(|o| **o == won).count();
        assert_eq!(rotated, 1, "round {round}: {outcomes:?}");
        assert!(
            outcomes.contains(&Rotation::Reused { user_id: alice.id }),
            "round {round}: {outcomes:?}"
        );
    }
    db.close().await;
}

#[tokio::test]
async fn a_refresh_token_leads_to_its_login() {
    let (_test, db, store) = open().await;
    let alice = create(&store, "alice@example.com", "ALICE234", &[Role::User]).await;
    let first_login = login(&store, alice.id, b"first").await;
    let second_login = login(&store, alice.id, b"other").await;
    rotate(&store, b"first", b"second").await;

    let of_first = store
        .session_of_refresh_token(b"first".to_vec())
        .await
        .expect("look up");
    let of_second = store
        .session_of_refresh_token(b"second".to_vec())
        .await
        .expect("look up");
    let of_other = store
        .session_of_refresh_token(b"other".to_vec())
        .await
        .expect("look up");
    let of_unknown = store
        .session_of_refresh_token(b"unknown".to_vec())
        .await
        .expect("look up");

    assert_ne!(first_login, second_login);
    assert_eq!(of_first, Some(first_login));
    assert_eq!(of_second, Some(first_login));
    assert_eq!(of_other, Some(second_login));
    assert_eq!(of_unknown, None);
    db.close().await;
}

#[tokio::test]
async fn a_login_of_an_unknown_user_is_refused() {
    let (_test, db, store) = open().await;

    let result = store
        .start_session(NewSession {
            session_id: Uuid::now_v7(),
            user_id: UserId::new(),
            refresh_token_hash: b"first".to_vec(),
            expires_at: t0() + Duration::hours(1),
            now: t0(),
        })
        .await;

    assert!(result.is_err(), "{result:?}");
    assert_eq!(
        store
            .session_of_refresh_token(b"first".to_vec())
            .await
            .expect("look up"),
        None
    );
    db.close().await;
}

// ---- revoke_session ----

#[tokio::test]
async fn a_login_is_revoked_once() {
    let (_test, db, store) = open().await;
    let alice = create(&store, "alice@example.com", "ALICE234", &[Role::User]).await;
    let session = login(&store, alice.id, b"first").await;

    let first = store.revoke_session(session, t0()).await.expect("revoke");
    let second = store.revoke_session(session, t0()).await.expect("revoke");

    assert_eq!(first, Some(alice.id));
    assert_eq!(second, None);
    assert_eq!(
        token_version(&store, alice.id).await,
        1,
        "only the first revocation bumps the token version"
    );
    db.close().await;
}

#[tokio::test]
async fn revoking_an_unknown_login_does_nothing() {
    let (_test, db, store) = open().await;
    let alice = create(&store, "alice@example.com", "ALICE234", &[Role::User]).await;
    let session = login(&store, alice.id, b"first").await;

    let revoked = store
        .revoke_session(Uuid::now_v7(), t0())
        .await
        .expect("revoke");

    assert_eq!(revoked, None);
    assert_eq!(token_version(&store, alice.id).await, 0);
    assert_eq!(
        rotate(&store, b"first", b"second").await,
        Rotation::Rotated {
            user_id: alice.id,
            session_id: session
        }
    );
    db.close().await;
}

// ---- signing_key ----

#[tokio::test]
async fn the_first_signing_key_is_kept() {
    let (_test, db, store) = open().await;
    let first = ("kid-b".to_owned(), vec![1, 2, 3]);
    let stored = store
        .signing_key(first.clone(), t0())
        .await
        .expect("store the first key");

    // An earlier timestamp and a smaller kid: only the guard keeps it out.
    let second = store
        .signing_key(("kid-a".to_owned(), vec![9, 9]), t0() - Duration::days(1))
        .await
        .expect("offer a second key");

    assert_eq!(stored, first);
    assert_eq!(second, first);
    db.close().await;
}

// ---- messages ----

#[tokio::test]
async fn sign_up_login_and_revocations_announce_themselves_in_the_same_transaction() {
    let (_test, db, store) = open().await;
    let admin = create(&store, "root@example.com", "ROOT2345", &[Role::Admin]).await;
    let user = create(&store, "ann@example.com", "ANN23456", &[Role::User]).await;
    let session = Uuid::now_v7();
    store
        .start_session(NewSession {
            session_id: session,
            user_id: user.id,
            refresh_token_hash: vec![7; 32],
            expires_at: t0() + Duration::hours(1),
            now: t0(),
        })
        .await
        .expect("a login");
    store
        .set_roles(user.id, Roles::of(&[Role::User, Role::Operator]), t0())
        .await
        .expect("a role change");
    store.revoke_session(session, t0()).await.expect("a logout");
    // A refused change announces nothing.
    store
        .set_roles(admin.id, Roles::of(&[Role::User]), t0())
        .await
        .expect("refused as the last admin");

    assert_eq!(
        outbox_topics(&db).await,
        [
            "identity.user_signed_up",
            "identity.user_signed_up",
            "identity.user_logged_in",
            "identity.user_tokens_revoked",
            "identity.user_tokens_revoked",
        ]
    );
    db.close().await;
}

#[tokio::test]
async fn a_refused_sign_up_leaves_no_message() {
    let (_test, db, store) = open().await;
    create(&store, "ann@example.com", "ANN23456", &[Role::User]).await;

    let again = store
        .create_user(new_user("ann@example.com", "OTHER234", &[Role::User]))
        .await;

    assert!(matches!(again, Err(CreateUserError::EmailTaken)));
    assert_eq!(outbox_topics(&db).await, ["identity.user_signed_up"]);
    db.close().await;
}
