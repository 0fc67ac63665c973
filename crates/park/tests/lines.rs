//! The park's service on a real database (SQLite, or PostgreSQL when
//! `STAMPEDE_TEST_DATABASE_URL` is set): the line store conformance suite
//! on both stores (Redis only with `STAMPEDE_TEST_REDIS_URL`), fairness
//! under concurrency, and the estimate under a controlled clock.

use std::sync::Arc;

use futures::future::join_all;
use kernel::auth::{Role, Roles, Staff};
use kernel::clock::ManualClock;
use kernel::db::DbOptions;
use kernel::testing::TestDatabase;
use kernel::{Db, Principal, SharedClock, UserId};
use park::line::{LineStore, LineStoreError, LineTotals, MemoryLines, RedisLines, Waiting};
use park::model::{
    AttractionId, AttractionKind, AttractionPatch, AttractionStatus, EntryStatus, LineEntryId,
    NewAttraction,
};
use park::store::SqlParkStore;
use park::{ParkError, ParkService, ParkSettings};
use time::Duration;
use time::macros::datetime;

const REDIS_VAR: &str = "STAMPEDE_TEST_REDIS_URL";

async fn database() -> (TestDatabase, Db) {
    let test = TestDatabase::create().await;
    let db = Db::connect(
        test.url(),
        // A thousand joins to one line queue for its row on PostgreSQL,
        // each holding a connection: give them time rather than a 503.
        &DbOptions {
            max_connections: 32,
            acquire_timeout: std::time::Duration::from_secs(60),
            ..DbOptions::default()
        },
    )
    .await
    .expect("the test database opens");
    db.migrate(bus::migrations()).await.expect("bus tables");
    db.migrate(park::migrations()).await.expect("park tables");
    (test, db)
}

async fn redis_lines() -> Option<RedisLines> {
    match std::env::var(REDIS_VAR) {
        Ok(url) if !url.is_empty() => {
            let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
            Some(
                RedisLines::connect(&url, &prefix)
                    .await
                    .expect("Redis is reachable"),
            )
        }
        _ => {
            eprintln!("{REDIS_VAR} is not set: the Redis line store is not tested here");
            None
        }
    }
}

/// Every line store in reach: memory always, Redis when configured.
async fn stores() -> Vec<(&'static str, Arc<dyn LineStore>)> {
    let mut all: Vec<(&'static str, Arc<dyn LineStore>)> =
        vec![("memory", Arc::new(MemoryLines::default()))];
    if let Some(redis) = redis_lines().await {
        all.push(("redis", Arc::new(redis)));
    }
    all
}

fn staff() -> Staff {
    Staff::check(principal(&[Role::Operator])).expect("staff")
}

fn principal(roles: &[Role]) -> Principal {
    Principal {
        user_id: UserId::new(),
        session_id: uuid::Uuid::now_v7(),
        roles: Roles::of(roles),
    }
}

fn guest() -> Principal {
    principal(&[Role::User])
}

fn new_ride(capacity: i64, cycle: i64) -> NewAttraction {
    NewAttraction {
        name: "Dragon".into(),
        kind: AttractionKind::Ride,
        description: None,
        hashtags: vec!["thrill".into()],
        capacity_per_cycle: Some(capacity),
        cycle_seconds: Some(cycle),
        status: None,
    }
}

async fn service(
    db: &Db,
    lines: Arc<dyn LineStore>,
    clock: SharedClock,
    settings: ParkSettings,
) -> Arc<ParkService> {
    Arc::new(
        ParkService::start(
            Arc::new(SqlParkStore::new(db.clone())),
            lines,
            clock,
            settings,
        )
        .await
        .expect("the park starts"),
    )
}

fn entry(seq: u64, party_size: u32) -> Waiting {
    Waiting {
        id: LineEntryId::new(),
        seq,
        party_size,
    }
}

#[tokio::test]
async fn every_line_store_keeps_positions_and_totals_alike() {
    for (name, store) in stores().await {
        let line = AttractionId::new();
        let other = AttractionId::new();
        let entries: Vec<Waiting> = (1..=6).map(|seq| entry(seq, 2)).collect();
        for e in &entries {
            store.add(line, *e).await.expect("added");
        }
        // Adding one again changes nothing.
        store.add(line, entries[0]).await.expect("added");
        store.add(other, entry(1, 5)).await.expect("added");
        assert_eq!(
            store.totals(line).await.expect("totals"),
            LineTotals {
                parties: 6,
                guests: 12
            },
            "{name}"
        );
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(
                store.position(line, e.id).await.expect("position"),
                Some(i as u64 + 1),
                "{name}"
            );
        }
        // Leaving from the middle closes the gap; removing twice is harmless.
        store
            .remove(line, &[entries[1], entries[3], entries[3]])
            .await
            .expect("removed");
        assert_eq!(store.position(line, entries[1].id).await.expect("p"), None);
        assert_eq!(
            store.position(line, entries[4].id).await.expect("p"),
            Some(3),
            "{name}"
        );
        assert_eq!(
            store.totals(line).await.expect("totals"),
            LineTotals {
                parties: 4,
                guests: 8
            },
            "{name}"
        );
        // Out-of-order adds (commits land in any order) sort by join number.
        let late = entry(9, 1);
        let early = entry(8, 1);
        store.add(line, late).await.expect("added");
        store.add(line, early).await.expect("added");
        assert_eq!(store.position(line, early.id).await.expect("p"), Some(5));
        assert_eq!(store.position(line, late.id).await.expect("p"), Some(6));
        // A join's add arriving after its own call's removal is ignored.
        let raced = entry(11, 3);
        store.remove(line, &[raced]).await.expect("removed");
        store.add(line, raced).await.expect("added");
        assert_eq!(
            store.position(line, raced.id).await.expect("p"),
            None,
            "{name}"
        );
        assert_eq!(
            store.totals(line).await.expect("totals").parties,
            6,
            "{name}"
        );
        // Loading replaces the line.
        let reloaded = [entry(3, 4), entry(10, 1)];
        store.load(line, &reloaded).await.expect("loaded");
        assert_eq!(store.position(line, entries[0].id).await.expect("p"), None);
        assert_eq!(
            store.position(line, reloaded[1].id).await.expect("p"),
            Some(2)
        );
        assert_eq!(
            store.totals(line).await.expect("totals"),
            LineTotals {
                parties: 2,
                guests: 5
            },
            "{name}"
        );
        assert_eq!(
            store.members(line).await.expect("members"),
            (
                reloaded.to_vec(),
                LineTotals {
                    parties: 2,
                    guests: 5
                }
            ),
            "{name}: members in join order with their totals"
        );
        assert_eq!(
            store.totals(other).await.expect("totals").parties,
            1,
            "{name}: lines are apart"
        );
        assert_eq!(
            store.totals(AttractionId::new()).await.expect("totals"),
            LineTotals::default()
        );
    }
}

#[tokio::test]
async fn a_long_line_answers_positions_from_the_store() {
    for (name, store) in stores().await {
        let line = AttractionId::new();
        let entries: Vec<Waiting> = (1..=20_000).map(|seq| entry(seq, 1)).collect();
        store.load(line, &entries).await.expect("loaded");
        let last = entries[entries.len() - 1];
        assert_eq!(
            store.position(line, last.id).await.expect("p"),
            Some(20_000),
            "{name}"
        );
        store.remove(line, &entries[..100]).await.expect("removed");
        assert_eq!(
            store.position(line, last.id).await.expect("p"),
            Some(19_900),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_thousand_guests_joining_at_once_get_positions_in_join_order() {
    let (_test, db) = database().await;
    for (name, lines) in stores().await {
        let clock: SharedClock = Arc::new(kernel::SystemClock);
        let park = service(&db, lines, clock, ParkSettings::default()).await;
        let ride = park
            .create(&staff(), &new_ride(20, 60))
            .await
            .expect("a ride");
        let joins = (0..1000).map(|_| {
            let park = park.clone();
            let guest = guest();
            tokio::spawn(async move {
                park.join(&guest, ride.id, None, None)
                    .await
                    .map(|e| (guest, e))
            })
        });
        let joined: Vec<_> = join_all(joins)
            .await
            .into_iter()
            .map(|r| r.expect("no panic").expect("joined"))
            .collect();
        // Positions as of now, read back: 1..=1000 in join order.
        let mut positions = Vec::new();
        for (guest, entry) in &joined {
            let me = park.mine(guest, ride.id).await.expect("mine");
            assert_eq!(me.id, entry.id);
            positions.push((me.joined_at, me.position.expect("waiting")));
        }
        let mut sorted: Vec<u64> = positions.iter().map(|(_, p)| *p).collect();
        sorted.sort_unstable();
        assert_eq!(sorted, (1..=1000).collect::<Vec<u64>>(), "{name}");
        // Join order is the database's: the line read back in order has
        // positions 1, 2, 3, …
        let page = park
            .line(
                ride.id,
                kernel::PageQuery {
                    limit: Some(100),
                    cursor: None,
                }
                .parse("line")
                .expect("a page"),
            )
            .await
            .expect("the line");
        let first: Vec<u64> = page.items.iter().filter_map(|e| e.position).collect();
        assert_eq!(first, (1..=100).collect::<Vec<u64>>(), "{name}");
    }
}

#[tokio::test]
async fn one_guest_joining_twice_at_once_gets_one_entry() {
    let (_test, db) = database().await;
    let clock: SharedClock = Arc::new(kernel::SystemClock);
    let park = service(
        &db,
        Arc::new(MemoryLines::default()),
        clock,
        ParkSettings::default(),
    )
    .await;
    let ride = park
        .create(&staff(), &new_ride(20, 60))
        .await
        .expect("a ride");
    let other = park
        .create(&staff(), &new_ride(20, 60))
        .await
        .expect("a ride");
    let guest = guest();
    let tries = (0..20).map(|i| {
        let park = park.clone();
        let target = if i % 2 == 0 { ride.id } else { other.id };
        tokio::spawn(async move { park.join(&guest, target, Some(2), None).await })
    });
    let results: Vec<_> = join_all(tries)
        .await
        .into_iter()
        .map(|r| r.expect("no panic"))
        .collect();
    let joined = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(joined, 2, "one entry per line");
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, ParkError::AlreadyInLine(_))),
        "{results:?}"
    );
    let one = park.mine(&guest, ride.id).await.expect("mine");
    assert_eq!((one.position, one.party_size), (Some(1), 2));
}

#[tokio::test]
async fn the_line_limit_counts_active_lines_at_once() {
    let (_test, db) = database().await;
    let clock: SharedClock = Arc::new(kernel::SystemClock);
    let settings = ParkSettings {
        max_lines_per_user: 2,
        ..ParkSettings::default()
    };
    let park = service(&db, Arc::new(MemoryLines::default()), clock, settings).await;
    let mut rides = Vec::new();
    for _ in 0..6 {
        rides.push(
            park.create(&staff(), &new_ride(20, 60))
                .await
                .expect("a ride"),
        );
    }
    let guest = guest();
    let tries = rides.iter().map(|r| {
        let (park, id) = (park.clone(), r.id);
        tokio::spawn(async move { park.join(&guest, id, None, None).await })
    });
    let results: Vec<_> = join_all(tries)
        .await
        .into_iter()
        .map(|r| r.expect("no panic"))
        .collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 2);
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, ParkError::LineLimitReached(2)))
    );
}

#[tokio::test]
async fn two_staff_calling_at_once_never_call_one_entry_twice() {
    let (_test, db) = database().await;
    for (name, lines) in stores().await {
        let clock: SharedClock = Arc::new(kernel::SystemClock);
        let park = service(&db, lines, clock, ParkSettings::default()).await;
        let ride = park
            .create(&staff(), &new_ride(20, 60))
            .await
            .expect("a ride");
        let mut guests = Vec::new();
        for _ in 0..60 {
            let g = guest();
            park.join(&g, ride.id, None, None).await.expect("joined");
            guests.push(g);
        }
        let calls = (0..10).map(|_| {
            let park = park.clone();
            tokio::spawn(async move { park.call(&staff(), ride.id, 5).await })
        });
        let mut called: Vec<LineEntryId> = join_all(calls)
            .await
            .into_iter()
            .flat_map(|r| r.expect("no panic").expect("called"))
            .map(|e| e.id)
            .collect();
        assert_eq!(called.len(), 50, "{name}: exactly the total asked for");
        called.sort();
        called.dedup();
        assert_eq!(called.len(), 50, "{name}: no entry called twice");
        // The ten left are the last ten to join, now at 1..=10.
        for (i, g) in guests[50..].iter().enumerate() {
            let me = park.mine(g, ride.id).await.expect("mine");
            assert_eq!(me.position, Some(i as u64 + 1), "{name}");
        }
        for g in &guests[..50] {
            let me = park.mine(g, ride.id).await.expect("mine");
            assert_eq!(me.status, EntryStatus::Called, "{name}");
        }
    }
}

#[tokio::test]
async fn leaving_and_expiry_leave_no_gap_and_down_pauses_the_line() {
    let (_test, db) = database().await;
    let clock = Arc::new(ManualClock::new(datetime!(2026-12-03 10:00 UTC)));
    let shared: SharedClock = clock.clone();
    let settings = ParkSettings {
        call_grace_seconds: 60,
        ..ParkSettings::default()
    };
    let park = service(&db, Arc::new(MemoryLines::default()), shared, settings).await;
    let ride = park
        .create(&staff(), &new_ride(10, 60))
        .await
        .expect("a ride");
    let guests: Vec<Principal> = (0..5).map(|_| guest()).collect();
    for g in &guests {
        park.join(g, ride.id, None, None).await.expect("joined");
    }
    park.leave(&guests[1], ride.id).await.expect("left");
    assert_eq!(
        park.mine(&guests[2], ride.id).await.expect("mine").position,
        Some(2)
    );
    let called = park.call(&staff(), ride.id, 1).await.expect("called");
    assert_eq!(called[0].user_id, guests[0].user_id);
    assert_eq!(
        park.mine(&guests[4], ride.id).await.expect("mine").position,
        Some(3)
    );
    clock.advance(Duration::seconds(61));
    assert_eq!(park.expire_due().await.expect("expired"), 1);
    let gone = park.mine(&guests[0], ride.id).await.expect("mine");
    assert_eq!(gone.status, EntryStatus::Expired);
    assert!(matches!(
        park.admit(&staff(), gone.id, None).await,
        Err(ParkError::Expired)
    ));

    // DOWN: positions kept, estimates null, no calls, no joins.
    let down = AttractionPatch {
        status: Some(AttractionStatus::Down),
        ..AttractionPatch::default()
    };
    park.update(&staff(), ride.id, &down).await.expect("down");
    let me = park.mine(&guests[4], ride.id).await.expect("mine");
    assert_eq!((me.position, me.estimated_wait_seconds), (Some(3), None));
    assert!(matches!(
        park.call(&staff(), ride.id, 1).await,
        Err(ParkError::NotOperating)
    ));
    assert!(matches!(
        park.join(&guest(), ride.id, None, None).await,
        Err(ParkError::NotOperating)
    ));
    let board = park.wait(ride.id).await.expect("board");
    assert_eq!((board.line_length, board.estimated_wait_seconds), (3, None));
    let up = AttractionPatch {
        status: Some(AttractionStatus::Operating),
        ..AttractionPatch::default()
    };
    park.update(&staff(), ride.id, &up).await.expect("up");
    assert!(
        park.mine(&guests[4], ride.id)
            .await
            .expect("mine")
            .estimated_wait_seconds
            .is_some()
    );
}

#[tokio::test]
async fn the_estimate_follows_observed_admissions_under_a_controlled_clock() {
    let (_test, db) = database().await;
    let clock = Arc::new(ManualClock::new(datetime!(2026-12-03 10:00 UTC)));
    let shared: SharedClock = clock.clone();
    let park = service(
        &db,
        Arc::new(MemoryLines::default()),
        shared,
        ParkSettings {
            call_grace_seconds: 3600,
            ..ParkSettings::default()
        },
    )
    .await;
    // Design: 10 guests a minute.
    let ride = park
        .create(&staff(), &new_ride(10, 60))
        .await
        .expect("a ride");
    let guests: Vec<Principal> = (0..25).map(|_| guest()).collect();
    for g in &guests {
        park.join(g, ride.id, Some(2), None).await.expect("joined");
    }
    // Before any admission: 5th party = 10 guests ahead = 60 s.
    let fifth = park.mine(&guests[4], ride.id).await.expect("mine");
    assert_eq!(fifth.estimated_wait_seconds, Some(60));
    assert_eq!(
        park.wait(ride.id)
            .await
            .expect("board")
            .estimated_wait_seconds,
        Some(26 * 2 * 6)
    );
    // Observed: 5 parties of 2 admitted over 10 minutes = 1 guest a minute.
    let called = park.call(&staff(), ride.id, 5).await.expect("called");
    for (i, entry) in called.iter().enumerate() {
        if i > 0 {
            clock.advance(Duration::seconds(150));
        }
        park.admit(&staff(), entry.id, Some(ride.id))
            .await
            .expect("admitted");
    }
    clock.advance(Duration::seconds(0));
    // First admission 10 minutes ago; 10 guests since: 1 guest/min.
    let next = park.mine(&guests[5], ride.id).await.expect("mine");
    assert_eq!(next.position, Some(1));
    assert_eq!(next.estimated_wait_seconds, Some(120));
    let board = park.wait(ride.id).await.expect("board");
    assert_eq!(board.admitted_last_hour, 10);
    assert_eq!(board.line_length, 20);
    // Past the window the design rate is back.
    clock.advance(Duration::minutes(16));
    let later = park.mine(&guests[5], ride.id).await.expect("mine");
    assert_eq!(later.estimated_wait_seconds, Some(12));
}

#[tokio::test]
async fn an_admission_shows_on_the_board_at_once_without_a_re_read() {
    let (_test, db) = database().await;
    let clock = Arc::new(ManualClock::new(datetime!(2026-12-03 10:00 UTC)));
    let shared: SharedClock = clock.clone();
    let park = service(
        &db,
        Arc::new(MemoryLines::default()),
        shared,
        ParkSettings::default(),
    )
    .await;
    let ride = park
        .create(&staff(), &new_ride(10, 60))
        .await
        .expect("a ride");
    for size in [3, 2] {
        park.join(&guest(), ride.id, Some(size), None)
            .await
            .expect("joined");
    }
    let before = park.wait(ride.id).await.expect("board");
    assert_eq!(before.admitted_last_hour, 0);
    let called = park.call(&staff(), ride.id, 1).await.expect("called");
    clock.advance(Duration::milliseconds(100));
    park.admit(&staff(), called[0].id, Some(ride.id))
        .await
        .expect("admitted");
    // Within the snapshot's second: the admission is in it, as a fresh
    // read of the table would count it.
    let cached = park.wait(ride.id).await.expect("board");
    assert_eq!(cached.admitted_last_hour, 3);
    clock.advance(Duration::seconds(2));
    let reread = park.wait(ride.id).await.expect("board");
    assert_eq!(reread.admitted_last_hour, 3);
    assert_eq!(reread.line_length, cached.line_length);
}

#[tokio::test]
async fn a_restart_loads_the_lines_from_the_database() {
    let (_test, db) = database().await;
    let clock: SharedClock = Arc::new(kernel::SystemClock);
    let first = service(
        &db,
        Arc::new(MemoryLines::default()),
        clock.clone(),
        ParkSettings::default(),
    )
    .await;
    let ride = first
        .create(&staff(), &new_ride(20, 60))
        .await
        .expect("a ride");
    let guests: Vec<Principal> = (0..4).map(|_| guest()).collect();
    for g in &guests {
        first.join(g, ride.id, None, None).await.expect("joined");
    }
    first.leave(&guests[0], ride.id).await.expect("left");
    let second = service(
        &db,
        Arc::new(MemoryLines::default()),
        clock,
        ParkSettings::default(),
    )
    .await;
    let me = second.mine(&guests[3], ride.id).await.expect("mine");
    assert_eq!(me.position, Some(3));
    assert_eq!(second.wait(ride.id).await.expect("board").line_length, 3);
}

/// A line store that never answers, as Redis down would.
struct Unreachable;

#[async_trait::async_trait]
impl LineStore for Unreachable {
    async fn load(&self, _: AttractionId, _: &[Waiting]) -> Result<(), LineStoreError> {
        Ok(())
    }
    async fn add(&self, _: AttractionId, _: Waiting) -> Result<(), LineStoreError> {
        Err(LineStoreError("unreachable".into()))
    }
    async fn remove(&self, _: AttractionId, _: &[Waiting]) -> Result<(), LineStoreError> {
        Err(LineStoreError("unreachable".into()))
    }
    async fn position(
        &self,
        _: AttractionId,
        _: LineEntryId,
    ) -> Result<Option<u64>, LineStoreError> {
        Err(LineStoreError("unreachable".into()))
    }
    async fn totals(&self, _: AttractionId) -> Result<LineTotals, LineStoreError> {
        Err(LineStoreError("unreachable".into()))
    }
    async fn members(&self, _: AttractionId) -> Result<(Vec<Waiting>, LineTotals), LineStoreError> {
        Err(LineStoreError("unreachable".into()))
    }
}

#[tokio::test]
async fn a_line_store_that_cannot_answer_does_not_fail_a_recorded_join() {
    let (_test, db) = database().await;
    let clock: SharedClock = Arc::new(kernel::SystemClock);
    let park = service(&db, Arc::new(Unreachable), clock, ParkSettings::default()).await;
    let ride = park
        .create(&staff(), &new_ride(20, 60))
        .await
        .expect("a ride");
    let (first, second) = (guest(), guest());
    park.join(&first, ride.id, None, None)
        .await
        .expect("joined");
    let joined = park
        .join(&second, ride.id, None, None)
        .await
        .expect("joined");
    // Counted in the table; no estimate without the line's totals.
    assert_eq!(
        (joined.position, joined.estimated_wait_seconds),
        (Some(2), None)
    );
    park.leave(&first, ride.id).await.expect("left");
    let me = park.mine(&second, ride.id).await.expect("mine");
    assert_eq!(me.position, Some(1));
    // The board needs the totals: 503.
    assert!(matches!(park.wait(ride.id).await, Err(ParkError::Lines(_))));
}

#[tokio::test]
async fn reconciliation_mends_a_line_store_that_missed_changes() {
    for (name, lines) in stores().await {
        let (_test, db) = database().await;
        let clock: SharedClock = Arc::new(kernel::SystemClock);
        let park = service(&db, lines.clone(), clock, ParkSettings::default()).await;
        let ride = park
            .create(&staff(), &new_ride(20, 60))
            .await
            .expect("a ride");
        let guests: Vec<Principal> = (0..6).map(|_| guest()).collect();
        for g in &guests {
            park.join(g, ride.id, Some(2), None).await.expect("joined");
        }
        let held = |lines: Arc<dyn LineStore>| async move {
            lines.members(ride.id).await.expect("members").0
        };
        let recorded = held(lines.clone()).await;
        let clean = park.reconcile_lines(false).await.expect("reconciled");
        assert_eq!((clean.checked, clean.differing), (1, 0), "{name}");

        // The call's removal and one join's add never reached the store
        // (Redis down just after their commits).
        let called = park.call(&staff(), ride.id, 1).await.expect("called");
        assert_eq!(called[0].id, recorded[0].id);
        lines.add(ride.id, recorded[0]).await.expect("a ghost");
        lines.remove(ride.id, &[recorded[3]]).await.expect("a gap");

        let dry = park.reconcile_lines(true).await.expect("reconciled");
        assert_eq!((dry.differing, dry.repaired), (1, 0), "{name}");
        let line = &dry.lines[0];
        assert_eq!((line.recorded, line.held), (5, 5), "{name}");
        assert_eq!((line.missing, line.extra, line.inconsistent), (1, 1, false));
        assert_eq!(held(lines.clone()).await[0].id, recorded[0].id, "{name}");

        let fixed = park.reconcile_lines(false).await.expect("reconciled");
        assert_eq!((fixed.differing, fixed.repaired), (1, 1), "{name}");
        let now = held(lines.clone()).await;
        assert_eq!(now, recorded[1..].to_vec(), "{name}");
        for (position, g) in (1..).zip(&guests[1..]) {
            let me = park.mine(g, ride.id).await.expect("mine");
            assert_eq!(me.position, Some(position), "{name}");
        }

        // A store whose entries no longer add up is reloaded from the table.
        let resized = Waiting {
            party_size: 9,
            ..recorded[1]
        };
        lines.load(ride.id, &[resized]).await.expect("loaded");
        let reloaded = park.reconcile_lines(false).await.expect("reconciled");
        assert!(reloaded.lines[0].inconsistent, "{name}");
        assert_eq!(reloaded.repaired, 1, "{name}");
        assert_eq!(
            lines.members(ride.id).await.expect("members"),
            (
                recorded[1..].to_vec(),
                LineTotals {
                    parties: 5,
                    guests: 10
                }
            ),
            "{name}"
        );
        let again = park.reconcile_lines(false).await.expect("reconciled");
        assert_eq!(again.differing, 0, "{name}");
    }
}

/// A memory line store that, once armed, lets a staff call land between
/// a poll's read of its entry and its position lookup.
#[derive(Default)]
struct CallMidPoll {
    inner: MemoryLines,
    park: std::sync::OnceLock<Arc<ParkService>>,
    armed: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl LineStore for CallMidPoll {
    async fn load(&self, a: AttractionId, w: &[Waiting]) -> Result<(), LineStoreError> {
        self.inner.load(a, w).await
    }
    async fn add(&self, a: AttractionId, w: Waiting) -> Result<(), LineStoreError> {
        self.inner.add(a, w).await
    }
    async fn remove(&self, a: AttractionId, w: &[Waiting]) -> Result<(), LineStoreError> {
        self.inner.remove(a, w).await
    }
    async fn position(
        &self,
        a: AttractionId,
        e: LineEntryId,
    ) -> Result<Option<u64>, LineStoreError> {
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst)
            && let Some(park) = self.park.get()
        {
            park.call(&staff(), a, 1).await.expect("called mid-poll");
        }
        self.inner.position(a, e).await
    }
    async fn totals(&self, a: AttractionId) -> Result<LineTotals, LineStoreError> {
        self.inner.totals(a).await
    }
    async fn members(&self, a: AttractionId) -> Result<(Vec<Waiting>, LineTotals), LineStoreError> {
        self.inner.members(a).await
    }
}

#[tokio::test]
async fn a_call_landing_mid_poll_leaves_no_ghost_in_the_line_store() {
    let (_test, db) = database().await;
    let lines = Arc::new(CallMidPoll::default());
    let clock: SharedClock = Arc::new(kernel::SystemClock);
    let park = service(&db, lines.clone(), clock, ParkSettings::default()).await;
    assert!(lines.park.set(park.clone()).is_ok());
    let ride = park
        .create(&staff(), &new_ride(20, 60))
        .await
        .expect("a ride");
    let (first, second) = (guest(), guest());
    park.join(&first, ride.id, None, None)
        .await
        .expect("joined");
    park.join(&second, ride.id, None, None)
        .await
        .expect("joined");

    // The poll reads the first guest WAITING; the call then takes them
    // out of the store before the poll asks it for the position.
    lines.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let polled = park.mine(&first, ride.id).await.expect("mine");

    assert_eq!(polled.position, Some(1), "answered from the table");
    let (held, totals) = lines.members(ride.id).await.expect("members");
    assert_eq!(
        held.len(),
        1,
        "the called entry was not taken back: {held:?}"
    );
    assert_eq!(totals.parties, 1);
    let me = park.mine(&second, ride.id).await.expect("mine");
    assert_eq!(me.position, Some(1));
    assert_eq!(park.wait(ride.id).await.expect("board").line_length, 1);
    assert_eq!(
        park.mine(&first, ride.id).await.expect("mine").status,
        EntryStatus::Called
    );
}
