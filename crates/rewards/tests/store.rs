//! The rewards store's conformance suite: every `RewardsStore` method, run
//! against SQLite by default and against PostgreSQL when
//! `STAMPEDE_TEST_DATABASE_URL` is set.

use std::num::NonZeroU32;

use kernel::db::{Db, DbOptions};
use kernel::testing::TestDatabase;
use kernel::{PageRequest, Timestamp};
use rewards::model::{
    CatalogueKey, Condition, Description, Event, EventId, EventPeriod, EventRewardId, EventStatus,
    Name, Reward, RewardId, RewardKind,
};
use rewards::store::{
    AddEventReward, CatalogueStore, DeleteEvent, EventFilter, EventRewardChange, NewEventReward,
    SqlRewardsStore, UpdateEventReward,
};
use serde_json::json;
use time::Duration;
use time::macros::datetime;

/// The instant every story starts at.
fn t0() -> Timestamp {
    datetime!(2026-11-22 10:00:00.123456 UTC).into()
}

async fn open() -> (TestDatabase, Db, SqlRewardsStore) {
    let test = TestDatabase::create().await;
    let db = Db::connect(test.url(), &DbOptions::default())
        .await
        .expect("connect");
    db.migrate(rewards::migrations()).await.expect("migrate");
    let store = SqlRewardsStore::new(db.clone());
    (test, db, store)
}

fn event(name: &str, status: EventStatus) -> Event {
    Event {
        id: EventId::new(),
        name: Name::parse(name).expect("a valid name"),
        description: Description::parse("Snow and rewards").expect("valid"),
        status,
        period: EventPeriod::new(t0(), t0() + Duration::days(30)).expect("a valid period"),
        created_at: t0(),
        updated_at: t0(),
    }
}

fn reward(kind: RewardKind) -> Reward {
    Reward {
        id: RewardId::new(),
        name: Name::parse("A reward").expect("valid"),
        kind,
    }
}

fn points(n: u32) -> RewardKind {
    RewardKind::Point {
        points: NonZeroU32::new(n).expect("not zero"),
    }
}

fn page(limit: u32) -> PageRequest {
    PageRequest { limit, after: None }
}

fn new_event_reward(event_id: EventId, reward_id: RewardId) -> NewEventReward {
    NewEventReward {
        id: EventRewardId::new(),
        event_id,
        reward_id,
        condition: None,
        auto_resolve: false,
        quantity: None,
        per_user_limit: 1,
        now: t0(),
    }
}

async fn added(store: &SqlRewardsStore, new: NewEventReward) -> rewards::model::EventReward {
    match store.add_event_reward(new).await.expect("add") {
        AddEventReward::Added(er) => er,
        other => panic!("expected Added, got {other:?}"),
    }
}

#[tokio::test]
async fn an_event_reads_back_exactly_as_it_was_created() {
    let (_test, _db, store) = open().await;
    let created = event("Winter festival", EventStatus::Draft);

    store.create_event(created.clone()).await.expect("create");

    assert_eq!(store.event(created.id).await.expect("read"), Some(created));
    assert_eq!(store.event(EventId::new()).await.expect("read"), None);
}

#[tokio::test]
async fn listing_events_filters_by_status_hides_drafts_and_pages_by_id() {
    let (_test, _db, store) = open().await;
    let draft = event("Draft", EventStatus::Draft);
    let active = event("Active", EventStatus::Active);
    let inactive = event("Inactive", EventStatus::Inactive);
    for e in [&draft, &active, &inactive] {
        store.create_event(e.clone()).await.expect("create");
    }
    let ids = |events: Vec<Event>| events.into_iter().map(|e| e.id).collect::<Vec<_>>();
    let everyone = EventFilter::default();
    let readers = EventFilter {
        include_drafts: true,
        ..EventFilter::default()
    };

    assert_eq!(
        ids(store
            .list_events(readers.clone(), page(10))
            .await
            .expect("list")),
        [draft.id, active.id, inactive.id]
    );
    assert_eq!(
        ids(store.list_events(everyone, page(10)).await.expect("list")),
        [active.id, inactive.id]
    );
    let drafts_for_everyone = EventFilter {
        status: Some(EventStatus::Draft),
        ..EventFilter::default()
    };
    assert!(
        store
            .list_events(drafts_for_everyone, page(10))
            .await
            .expect("list")
            .is_empty()
    );
    let inactive_only = EventFilter {
        status: Some(EventStatus::Inactive),
        include_drafts: true,
        ..EventFilter::default()
    };
    assert_eq!(
        ids(store
            .list_events(inactive_only, page(10))
            .await
            .expect("list")),
        [inactive.id]
    );
    let after_draft = PageRequest {
        limit: 1,
        after: Some(draft.id.0),
    };
    assert_eq!(
        ids(store.list_events(readers, after_draft).await.expect("list")),
        [active.id, inactive.id],
        "fetches one more than the page to tell whether another follows"
    );
}

#[tokio::test]
async fn listing_events_by_name_ignores_case_and_takes_wildcards_literally() {
    let (_test, _db, store) = open().await;
    let winter = event("Winter Festival", EventStatus::Active);
    let sale = event("50% off_week", EventStatus::Active);
    let summer = event("Summer fair", EventStatus::Draft);
    for e in [&winter, &sale, &summer] {
        store.create_event(e.clone()).await.expect("create");
    }
    let named = |fragment: &str| EventFilter {
        include_drafts: true,
        name_contains: Some(fragment.to_owned()),
        ..EventFilter::default()
    };
    let ids = |events: Vec<Event>| events.into_iter().map(|e| e.id).collect::<Vec<_>>();

    assert_eq!(
        ids(store
            .list_events(named("FESTIVAL"), page(10))
            .await
            .expect("list")),
        [winter.id]
    );
    assert_eq!(
        ids(store
            .list_events(named(" fair "), page(10))
            .await
            .expect("list")),
        [summer.id]
    );
    assert_eq!(
        ids(store
            .list_events(named("0%"), page(10))
            .await
            .expect("list")),
        [sale.id]
    );
    assert!(
        store
            .list_events(named("r_f"), page(10))
            .await
            .expect("list")
            .is_empty(),
        "_ matches only itself, not the space of \"winter festival\""
    );
}

#[tokio::test]
async fn an_event_is_updated_only_while_its_status_is_the_expected_one() {
    let (_test, _db, store) = open().await;
    let original = event("Festival", EventStatus::Draft);
    store.create_event(original.clone()).await.expect("create");
    let mut changed = original.clone();
    changed.name = Name::parse("Renamed").expect("valid");
    changed.status = EventStatus::Active;
    changed.period =
        EventPeriod::new(t0() + Duration::days(1), t0() + Duration::days(2)).expect("valid");
    changed.updated_at = t0() + Duration::hours(1);

    assert!(
        store
            .update_event(changed.clone(), EventStatus::Draft)
            .await
            .expect("update")
    );
    assert_eq!(
        store.event(original.id).await.expect("read"),
        Some(changed.clone())
    );

    let mut stale = changed.clone();
    stale.status = EventStatus::Completed;
    assert!(
        !store
            .update_event(stale, EventStatus::Draft)
            .await
            .expect("update"),
        "the stored status is no longer DRAFT"
    );
    assert_eq!(store.event(original.id).await.expect("read"), Some(changed));
}

#[tokio::test]
async fn only_a_draft_event_is_deleted_and_its_event_rewards_go_with_it() {
    let (_test, _db, store) = open().await;
    let draft = event("Draft", EventStatus::Draft);
    let active = event("Active", EventStatus::Active);
    let r = reward(points(10));
    store.create_event(draft.clone()).await.expect("create");
    store.create_event(active.clone()).await.expect("create");
    store.create_reward(r.clone(), t0()).await.expect("reward");
    let er = added(&store, new_event_reward(draft.id, r.id)).await;

    assert_eq!(
        store.delete_draft_event(active.id).await.expect("delete"),
        DeleteEvent::NotDraft
    );
    assert_eq!(
        store.delete_draft_event(draft.id).await.expect("delete"),
        DeleteEvent::Deleted
    );
    assert_eq!(
        store.delete_draft_event(draft.id).await.expect("delete"),
        DeleteEvent::NotFound
    );
    assert_eq!(store.event(draft.id).await.expect("read"), None);
    assert_eq!(
        store.event_reward(draft.id, er.id).await.expect("read"),
        None
    );
    assert!(store.event(active.id).await.expect("read").is_some());
    assert_eq!(store.reward(r.id).await.expect("read"), Some(r));
}

#[tokio::test]
async fn every_reward_type_reads_back_as_it_was_created_in_id_order() {
    let (_test, _db, store) = open().await;
    let kinds = [
        points(100),
        RewardKind::Item {
            item_id: CatalogueKey::parse("hat").expect("valid"),
            quantity: NonZeroU32::new(2).expect("not zero"),
        },
        RewardKind::Coupon {
            coupon_campaign_id: contracts::commerce::CouponCampaignId::new(),
        },
        RewardKind::Badge {
            badge_id: CatalogueKey::parse("early").expect("valid"),
        },
    ];
    let mut created = Vec::new();
    for kind in kinds {
        let r = reward(kind);
        store.create_reward(r.clone(), t0()).await.expect("create");
        created.push(r);
    }

    for r in &created {
        assert_eq!(store.reward(r.id).await.expect("read").as_ref(), Some(r));
    }
    assert_eq!(store.list_rewards(page(10)).await.expect("list"), created);
    let after_first = PageRequest {
        limit: 1,
        after: Some(created[0].id.0),
    };
    assert_eq!(
        store.list_rewards(after_first).await.expect("list"),
        created[1..3]
    );
    assert_eq!(store.reward(RewardId::new()).await.expect("read"), None);
}

#[tokio::test]
async fn an_event_reward_is_added_only_to_a_known_event_with_a_known_reward() {
    let (_test, _db, store) = open().await;
    let e = event("Festival", EventStatus::Active);
    let r = reward(points(5));
    store.create_event(e.clone()).await.expect("create");
    store.create_reward(r.clone(), t0()).await.expect("reward");
    let condition = Condition::parse(&json!({"type": "FRIEND_INVITE", "count": 2})).expect("valid");

    let er = added(
        &store,
        NewEventReward {
            condition: Some(condition.clone()),
            auto_resolve: true,
            quantity: Some(10),
            per_user_limit: 3,
            ..new_event_reward(e.id, r.id)
        },
    )
    .await;

    assert_eq!(er.event_id, e.id);
    assert_eq!(er.reward, r);
    assert_eq!(er.condition, Some(condition));
    assert!(er.auto_resolve);
    assert_eq!((er.quantity, er.remaining), (Some(10), Some(10)));
    assert_eq!(er.per_user_limit, 3);
    assert_eq!(
        store.event_reward(e.id, er.id).await.expect("read"),
        Some(er)
    );
    assert_eq!(
        store
            .add_event_reward(new_event_reward(EventId::new(), r.id))
            .await
            .expect("add"),
        AddEventReward::EventNotFound
    );
    assert_eq!(
        store
            .add_event_reward(new_event_reward(e.id, RewardId::new()))
            .await
            .expect("add"),
        AddEventReward::RewardNotFound
    );
}

#[tokio::test]
async fn an_events_rewards_are_listed_in_id_order_and_only_through_their_event() {
    let (_test, _db, store) = open().await;
    let e = event("One", EventStatus::Active);
    let other = event("Other", EventStatus::Active);
    let r = reward(points(5));
    store.create_event(e.clone()).await.expect("create");
    store.create_event(other.clone()).await.expect("create");
    store.create_reward(r.clone(), t0()).await.expect("reward");
    let first = added(&store, new_event_reward(e.id, r.id)).await;
    let second = added(&store, new_event_reward(e.id, r.id)).await;
    let elsewhere = added(&store, new_event_reward(other.id, r.id)).await;

    assert_eq!(
        store.event_rewards(e.id, page(10)).await.expect("list"),
        [first.clone(), second.clone()]
    );
    let after_first = PageRequest {
        limit: 5,
        after: Some(first.id.0),
    };
    assert_eq!(
        store.event_rewards(e.id, after_first).await.expect("list"),
        [second]
    );
    assert_eq!(
        store.event_reward(e.id, elsewhere.id).await.expect("read"),
        None
    );
}

#[tokio::test]
async fn changing_the_quantity_moves_remaining_and_never_below_what_is_taken() {
    let (_test, db, store) = open().await;
    let e = event("Festival", EventStatus::Active);
    let r = reward(points(5));
    store.create_event(e.clone()).await.expect("create");
    store.create_reward(r.clone(), t0()).await.expect("reward");
    let er = added(
        &store,
        NewEventReward {
            quantity: Some(10),
            ..new_event_reward(e.id, r.id)
        },
    )
    .await;
    // Three units taken, as reward requests will do.
    let er_id = er.id;
    kernel::write_tx!(&db, |conn| {
        sqlx::query("update event_rewards set remaining = 7 where id = $1")
            .bind(er_id)
            .execute(&mut *conn)
            .await
            .map(|_| ())
    })
    .expect("take three");
    let change = |quantity: Option<u32>| EventRewardChange {
        quantity: Some(quantity),
        ..EventRewardChange::default()
    };

    let grown = store
        .update_event_reward(e.id, er.id, change(Some(15)), t0())
        .await
        .expect("update");
    let refused = store
        .update_event_reward(e.id, er.id, change(Some(2)), t0())
        .await
        .expect("update");
    let shrunk = store
        .update_event_reward(e.id, er.id, change(Some(3)), t0())
        .await
        .expect("update");

    let UpdateEventReward::Updated(grown) = grown else {
        panic!("expected Updated, got {grown:?}");
    };
    assert_eq!((grown.quantity, grown.remaining), (Some(15), Some(12)));
    assert_eq!(refused, UpdateEventReward::QuantityBelowTaken { taken: 3 });
    let UpdateEventReward::Updated(shrunk) = shrunk else {
        panic!("expected Updated, got {shrunk:?}");
    };
    assert_eq!((shrunk.quantity, shrunk.remaining), (Some(3), Some(0)));
    assert_eq!(
        store.event_reward(e.id, er.id).await.expect("read"),
        Some(shrunk)
    );
}

#[tokio::test]
async fn an_event_reward_change_touches_only_the_fields_it_names() {
    let (_test, _db, store) = open().await;
    let e = event("Festival", EventStatus::Active);
    let r = reward(points(5));
    store.create_event(e.clone()).await.expect("create");
    store.create_reward(r.clone(), t0()).await.expect("reward");
    let condition = Condition::parse(&json!({"type": "CONTINUOUS_LOGIN", "days": 3})).expect("ok");
    let er = added(
        &store,
        NewEventReward {
            condition: Some(condition),
            quantity: Some(4),
            ..new_event_reward(e.id, r.id)
        },
    )
    .await;

    let outcome = store
        .update_event_reward(
            e.id,
            er.id,
            EventRewardChange {
                condition: Some(None),
                auto_resolve: Some(true),
                quantity: Some(None),
                per_user_limit: Some(2),
            },
            t0(),
        )
        .await
        .expect("update");

    let expected = rewards::model::EventReward {
        condition: None,
        auto_resolve: true,
        quantity: None,
        remaining: None,
        per_user_limit: 2,
        ..er.clone()
    };
    assert_eq!(outcome, UpdateEventReward::Updated(expected.clone()));
    assert_eq!(
        store.event_reward(e.id, er.id).await.expect("read"),
        Some(expected.clone())
    );
    let untouched = store
        .update_event_reward(e.id, er.id, EventRewardChange::default(), t0())
        .await
        .expect("update");
    assert_eq!(untouched, UpdateEventReward::Updated(expected));
    assert_eq!(
        store
            .update_event_reward(EventId::new(), er.id, EventRewardChange::default(), t0())
            .await
            .expect("update"),
        UpdateEventReward::NotFound
    );
}

#[tokio::test]
async fn an_event_reward_is_deleted_only_through_its_own_event() {
    let (_test, _db, store) = open().await;
    let e = event("Festival", EventStatus::Active);
    let r = reward(points(5));
    store.create_event(e.clone()).await.expect("create");
    store.create_reward(r.clone(), t0()).await.expect("reward");
    let er = added(&store, new_event_reward(e.id, r.id)).await;

    assert!(
        !store
            .delete_event_reward(EventId::new(), er.id)
            .await
            .expect("delete")
    );
    assert!(
        store
            .delete_event_reward(e.id, er.id)
            .await
            .expect("delete")
    );
    assert!(
        !store
            .delete_event_reward(e.id, er.id)
            .await
            .expect("delete")
    );
    assert_eq!(store.event_reward(e.id, er.id).await.expect("read"), None);
}
