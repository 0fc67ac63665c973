//! The bus on the configured backend: committed messages reach every
//! subscriber, rolled-back ones never do; delivery survives a relay crash;
//! repeated publication is one delivery; failures retry, then dead-letter,
//! and a replay delivers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bus::{
    Dispatcher, Envelope, Handler, HandlerError, InProcessTransport, Message, Relay, RetryPolicy,
    Transport,
};
use kernel::clock::ManualClock;
use kernel::db::{Db, DbOptions};
use kernel::testing::TestDatabase;
use kernel::{Clock, PageRequest, SharedClock, SystemClock, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct PointsEarned {
    user: String,
    points: i64,
}

impl Message for PointsEarned {
    const TOPIC: &'static str = "test.points_earned";
    const VERSION: i32 = 1;
}

/// Records what it handled; fails the first `failures` attempts per message.
struct Recorder {
    name: &'static str,
    failures: u32,
    seen: Mutex<HashMap<uuid::Uuid, u32>>,
}

impl Recorder {
    fn new(name: &'static str, failures: u32) -> Arc<Self> {
        Arc::new(Self {
            name,
            failures,
            seen: Mutex::new(HashMap::new()),
        })
    }

    fn attempts(&self) -> Vec<u32> {
        self.seen.lock().expect("lock").values().copied().collect()
    }
}

#[async_trait]
impl Handler for Recorder {
    fn name(&self) -> &'static str {
        self.name
    }
    fn topics(&self) -> &'static [&'static str] {
        &[PointsEarned::TOPIC]
    }
    async fn handle(&self, message: &Envelope) -> Result<(), HandlerError> {
        message
            .decode::<PointsEarned>()
            .map_err(|e| HandlerError(e.to_string()))?;
        let mut seen = self.seen.lock().expect("lock");
        let n = seen.entry(message.id).or_insert(0);
        *n += 1;
        if *n <= self.failures {
            return Err(HandlerError(format!("failure {n}")));
        }
        Ok(())
    }
}

struct Bus {
    relay: Relay,
    dispatcher: Arc<Dispatcher>,
    transport: Arc<dyn Transport>,
}

fn bus(db: &Db, clock: SharedClock, handlers: Vec<Arc<dyn Handler>>, policy: RetryPolicy) -> Bus {
    let dispatcher = Arc::new(Dispatcher::new(db.clone(), clock.clone(), handlers, policy));
    let transport: Arc<dyn Transport> = Arc::new(InProcessTransport::new(
        db.clone(),
        clock.clone(),
        &dispatcher.subscriptions(),
        dispatcher.wake.clone(),
    ));
    Bus {
        relay: Relay::new(db.clone(), transport.clone(), clock),
        dispatcher,
        transport,
    }
}

async fn open() -> (TestDatabase, Db) {
    let test = TestDatabase::create().await;
    let db = Db::connect(test.url(), &DbOptions::default())
        .await
        .expect("connect");
    db.migrate(bus::migrations()).await.expect("migrate");
    (test, db)
}

fn envelope(points: i64, at: Timestamp) -> Envelope {
    Envelope::new(
        &PointsEarned {
            user: "ann".into(),
            points,
        },
        at,
    )
    .expect("encodes")
}

/// Commits `envelope` to the outbox; `keep` false rolls the transaction back.
async fn produce(db: &Db, envelope: Envelope, keep: bool) {
    let result: Result<(), sqlx::Error> = kernel::write_tx!(db, |conn| {
        bus::enqueue!(conn, &envelope)?;
        if keep {
            Ok(())
        } else {
            Err(sqlx::Error::RowNotFound)
        }
    });
    assert_eq!(result.is_ok(), keep);
}

#[tokio::test]
async fn a_committed_message_reaches_every_subscriber_within_a_second() {
    let (_test, db) = open().await;
    let (a, b) = (Recorder::new("a", 0), Recorder::new("b", 0));
    let bus = bus(
        &db,
        Arc::new(SystemClock),
        vec![a.clone(), b.clone()],
        RetryPolicy::default(),
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let relay_stop = {
        let mut s = stopped.clone();
        async move {
            let _ = s.wait_for(|v| *v).await;
        }
    };
    let dispatch_stop = {
        let mut s = stopped.clone();
        async move {
            let _ = s.wait_for(|v| *v).await;
        }
    };
    let dispatcher = bus.dispatcher.clone();
    let loops = tokio::spawn(async move {
        tokio::join!(
            bus.relay.run(Duration::from_millis(50), relay_stop),
            dispatcher.run(Duration::from_millis(50), dispatch_stop)
        );
    });

    produce(&db, envelope(10, SystemClock.now()), true).await;
    let started = std::time::Instant::now();
    while (a.attempts().is_empty() || b.attempts().is_empty())
        && started.elapsed() < Duration::from_secs(1)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    assert_eq!(a.attempts(), [1], "delivered once to a, within a second");
    assert_eq!(b.attempts(), [1], "delivered once to b, within a second");
    let _ = stop.send(true);
    loops.await.expect("loops stop");
    db.close().await;
}

#[tokio::test]
async fn a_rolled_back_message_is_never_delivered() {
    let (_test, db) = open().await;
    let recorder = Recorder::new("r", 0);
    let bus = bus(
        &db,
        Arc::new(SystemClock),
        vec![recorder.clone()],
        RetryPolicy::default(),
    );

    produce(&db, envelope(1, SystemClock.now()), false).await;

    assert_eq!(bus.relay.run_once().await.expect("relay"), 0);
    assert_eq!(bus.dispatcher.run_once().await.expect("dispatch"), 0);
    assert!(recorder.attempts().is_empty());
    db.close().await;
}

#[tokio::test]
async fn a_message_committed_before_a_relay_crash_is_delivered_after_the_restart() {
    let (_test, db) = open().await;
    produce(&db, envelope(5, SystemClock.now()), true).await;
    // The process dies here: nothing relayed. A new one starts on the same database.
    let recorder = Recorder::new("r", 0);
    let restarted = bus(
        &db,
        Arc::new(SystemClock),
        vec![recorder.clone()],
        RetryPolicy::default(),
    );

    assert_eq!(restarted.relay.run_once().await.expect("relay"), 1);
    assert_eq!(restarted.dispatcher.run_once().await.expect("dispatch"), 1);

    assert_eq!(recorder.attempts(), [1]);
    assert_eq!(
        restarted.relay.run_once().await.expect("relay"),
        0,
        "published once"
    );
    db.close().await;
}

#[tokio::test]
async fn the_backlog_counts_unpublished_messages_then_pending_deliveries() {
    let (_test, db) = open().await;
    let (first, second) = (Recorder::new("first", 0), Recorder::new("second", 0));
    let bus = bus(
        &db,
        Arc::new(SystemClock),
        vec![first.clone(), second.clone()],
        RetryPolicy::default(),
    );
    let backlog = || bus::backlog(&db);
    assert_eq!(
        backlog().await.expect("read"),
        bus::Backlog {
            unpublished: 0,
            pending: 0
        }
    );

    produce(&db, envelope(1, SystemClock.now()), true).await;
    produce(&db, envelope(2, SystemClock.now()), true).await;
    assert_eq!(
        backlog().await.expect("read"),
        bus::Backlog {
            unpublished: 2,
            pending: 0
        }
    );

    bus.relay.run_once().await.expect("relay");
    assert_eq!(
        backlog().await.expect("read"),
        bus::Backlog {
            unpublished: 0,
            pending: 4
        },
        "one delivery per message and subscriber"
    );

    while bus.dispatcher.run_once().await.expect("dispatch") > 0 {}
    assert_eq!(
        backlog().await.expect("read"),
        bus::Backlog {
            unpublished: 0,
            pending: 0
        }
    );
    db.close().await;
}

#[tokio::test]
async fn a_message_published_twice_is_delivered_once() {
    let (_test, db) = open().await;
    let recorder = Recorder::new("r", 0);
    let bus = bus(
        &db,
        Arc::new(SystemClock),
        vec![recorder.clone()],
        RetryPolicy::default(),
    );
    let message = envelope(3, SystemClock.now());

    // A crash between publishing and marking published publishes again.
    bus.transport
        .publish(std::slice::from_ref(&message))
        .await
        .expect("publish");
    bus.transport
        .publish(std::slice::from_ref(&message))
        .await
        .expect("publish again");
    while bus.dispatcher.run_once().await.expect("dispatch") > 0 {}

    assert_eq!(recorder.attempts(), [1]);
    db.close().await;
}

#[tokio::test]
async fn a_failing_delivery_is_retried_after_a_growing_wait() {
    let (_test, db) = open().await;
    let clock = Arc::new(ManualClock::new(
        time::macros::datetime!(2026-11-22 10:00 UTC),
    ));
    let recorder = Recorder::new("flaky", 2);
    let policy = RetryPolicy {
        base: Duration::from_secs(1),
        ..RetryPolicy::default()
    };
    let bus = bus(&db, clock.clone(), vec![recorder.clone()], policy);
    produce(&db, envelope(7, clock.now()), true).await;
    bus.relay.run_once().await.expect("relay");

    assert_eq!(bus.dispatcher.run_once().await.expect("first attempt"), 1);
    assert_eq!(bus.dispatcher.run_once().await.expect("too early"), 0);
    clock.advance(time::Duration::seconds(1));
    assert_eq!(bus.dispatcher.run_once().await.expect("second attempt"), 1);
    clock.advance(time::Duration::seconds(1));
    assert_eq!(
        bus.dispatcher.run_once().await.expect("still too early"),
        0,
        "the wait doubled"
    );
    clock.advance(time::Duration::seconds(1));
    assert_eq!(bus.dispatcher.run_once().await.expect("third attempt"), 1);
    clock.advance(time::Duration::seconds(60));
    assert_eq!(bus.dispatcher.run_once().await.expect("done"), 0);

    assert_eq!(recorder.attempts(), [3]);
    db.close().await;
}

#[tokio::test]
async fn a_delivery_that_keeps_failing_becomes_a_dead_letter_and_a_replay_delivers_it() {
    let (_test, db) = open().await;
    let clock = Arc::new(ManualClock::new(
        time::macros::datetime!(2026-11-22 10:00 UTC),
    ));
    let recorder = Recorder::new("stubborn", 3);
    let policy = RetryPolicy {
        max_attempts: 3,
        base: Duration::from_secs(1),
        ..RetryPolicy::default()
    };
    let bus = bus(&db, clock.clone(), vec![recorder.clone()], policy);
    produce(&db, envelope(9, clock.now()), true).await;
    bus.relay.run_once().await.expect("relay");
    for _ in 0..3 {
        bus.dispatcher.run_once().await.expect("attempt");
        clock.advance(time::Duration::seconds(10));
    }
    let page = PageRequest {
        limit: 20,
        after: None,
    };

    let dead = bus.dispatcher.dead_letters(page).await.expect("list");

    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].subscriber, "stubborn");
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(dead[0].last_error.as_deref(), Some("failure 3"));
    assert_eq!(bus.dispatcher.run_once().await.expect("nothing due"), 0);

    assert!(bus.dispatcher.replay(dead[0].id).await.expect("replay"));
    assert!(
        !bus.dispatcher
            .replay(dead[0].id)
            .await
            .expect("not dead any more")
    );
    assert_eq!(bus.dispatcher.run_once().await.expect("redelivered"), 1);
    assert_eq!(recorder.attempts(), [4]);
    assert!(
        bus.dispatcher
            .dead_letters(page)
            .await
            .expect("list")
            .is_empty()
    );
    db.close().await;
}

#[tokio::test]
async fn a_discarded_dead_letter_leaves_the_list_and_the_counts_for_good() {
    let (_test, db) = open().await;
    let clock = Arc::new(ManualClock::new(
        time::macros::datetime!(2026-11-22 10:00 UTC),
    ));
    let (stubborn, fine) = (Recorder::new("stubborn", 99), Recorder::new("fine", 0));
    let policy = RetryPolicy {
        max_attempts: 2,
        base: Duration::from_secs(1),
        ..RetryPolicy::default()
    };
    let bus = bus(
        &db,
        clock.clone(),
        vec![stubborn.clone(), fine.clone()],
        policy,
    );
    produce(&db, envelope(1, clock.now()), true).await;
    produce(&db, envelope(2, clock.now()), true).await;
    bus.relay.run_once().await.expect("relay");
    for _ in 0..2 {
        bus.dispatcher.run_once().await.expect("attempt");
        clock.advance(time::Duration::seconds(10));
    }
    let page = PageRequest {
        limit: 20,
        after: None,
    };
    let dead = bus.dispatcher.dead_letters(page).await.expect("list");
    assert_eq!(dead.len(), 2);
    assert_eq!(
        bus::dead_letter_counts(&db).await.expect("counts"),
        [("stubborn".to_owned(), 2)]
    );

    assert!(bus.dispatcher.discard(dead[0].id).await.expect("discard"));

    assert!(!bus.dispatcher.discard(dead[0].id).await.expect("gone"));
    assert!(!bus.dispatcher.replay(dead[0].id).await.expect("not dead"));
    let left = bus.dispatcher.dead_letters(page).await.expect("list");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, dead[1].id);
    assert_eq!(
        bus::dead_letter_counts(&db).await.expect("counts"),
        [("stubborn".to_owned(), 1)]
    );
    assert_eq!(bus.dispatcher.run_once().await.expect("nothing due"), 0);
    assert_eq!(stubborn.attempts(), [2, 2], "never run again");
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dispatchers_on_one_inbox_run_each_delivery_once() {
    let (_test, db) = open().await;
    let recorder = Recorder::new("shared", 0);
    let first = bus(
        &db,
        Arc::new(SystemClock),
        vec![recorder.clone()],
        RetryPolicy::default(),
    );
    let second = bus(
        &db,
        Arc::new(SystemClock),
        vec![recorder.clone()],
        RetryPolicy::default(),
    );
    for i in 0..50 {
        produce(&db, envelope(i, SystemClock.now()), true).await;
    }
    first.relay.run_once().await.expect("relay");

    let (a, b) = tokio::join!(first.dispatcher.run_once(), second.dispatcher.run_once());

    assert_eq!(a.expect("first") + b.expect("second"), 50);
    let attempts = recorder.attempts();
    assert_eq!(attempts.len(), 50);
    assert!(attempts.iter().all(|n| *n == 1), "{attempts:?}");
    db.close().await;
}
