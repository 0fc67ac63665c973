//! The bus over a real RabbitMQ, when `STAMPEDE_TEST_AMQP_URL` is set (each
//! test prints that it skipped otherwise): a published message reaches each
//! subscriber's inbox once; a batch published twice is one delivery; a
//! poison message lands in the subscriber's dead-letter queue without
//! blocking the next; competing consumers of one queue write each message
//! once; a cut connection heals by itself and loses nothing committed.
//!
//! Every test declares its own exchanges and queues under a unique prefix
//! and deletes them at the end. The inbox is the configured test database.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bus::rabbitmq::{Topology, connect};
use bus::{
    Dispatcher, Envelope, Handler, HandlerError, Message, RabbitMqConsumer, RabbitMqOptions,
    RabbitMqTransport, Relay, RetryPolicy, Transport,
};
use kernel::db::{Db, DbOptions};
use kernel::testing::TestDatabase;
use kernel::{Clock, Secret, SharedClock, SystemClock};
use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

const AMQP_URL_VAR: &str = "STAMPEDE_TEST_AMQP_URL";
/// The longest a test waits for the bus to settle.
const SETTLE: Duration = Duration::from_secs(15);

#[derive(Debug, Serialize, Deserialize)]
struct PointsEarned {
    user: String,
    points: i64,
}

impl Message for PointsEarned {
    const TOPIC: &'static str = "test.points_earned";
    const VERSION: i32 = 1;
}

/// The broker's URL, or `None` after printing that the test is skipped.
fn amqp_url() -> Option<String> {
    match std::env::var(AMQP_URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let test = std::thread::current()
                .name()
                .unwrap_or("this test")
                .to_owned();
            println!("skipped {test}: {AMQP_URL_VAR} is not set");
            None
        }
    }
}

fn options(url: &str) -> RabbitMqOptions {
    RabbitMqOptions {
        prefix: format!("stampede-test-{}", Uuid::now_v7()),
        prefetch: 10,
        backoff_base: Duration::from_millis(50),
        backoff_cap: Duration::from_millis(500),
        timeout: Duration::from_secs(5),
        ..RabbitMqOptions::new(Secret::new(url.to_owned()))
    }
}

fn subscriptions(names: &[&str]) -> Vec<(String, String)> {
    names
        .iter()
        .map(|n| ((*n).to_owned(), PointsEarned::TOPIC.to_owned()))
        .collect()
}

async fn open_db() -> (TestDatabase, Db) {
    let test = TestDatabase::create().await;
    let db = Db::connect(test.url(), &DbOptions::default())
        .await
        .expect("connect");
    db.migrate(bus::migrations()).await.expect("migrate");
    (test, db)
}

fn envelope(points: i64) -> Envelope {
    Envelope::new(
        &PointsEarned {
            user: "ann".into(),
            points,
        },
        SystemClock.now(),
    )
    .expect("encodes")
}

/// Commits `envelope` to the outbox.
async fn produce(db: &Db, envelope: Envelope) {
    let result: Result<(), sqlx::Error> =
        kernel::write_tx!(db, |conn| bus::enqueue!(conn, &envelope));
    result.expect("committed");
}

/// Deliveries in the inbox per subscriber, each message id with its count.
async fn inbox(db: &Db) -> BTreeMap<String, HashMap<Uuid, usize>> {
    let rows: Vec<(String, Uuid)> = kernel::read!(db, |pool| {
        sqlx::query_as("select subscriber, message_id from inbox_deliveries")
            .fetch_all(pool)
            .await
    })
    .expect("inbox");
    let mut by_subscriber: BTreeMap<String, HashMap<Uuid, usize>> = BTreeMap::new();
    for (subscriber, id) in rows {
        *by_subscriber
            .entry(subscriber)
            .or_default()
            .entry(id)
            .or_default() += 1;
    }
    by_subscriber
}

/// Waits (up to [`SETTLE`]) until every named subscriber has `n` deliveries.
async fn wait_for_inbox(
    db: &Db,
    names: &[&str],
    n: usize,
) -> BTreeMap<String, HashMap<Uuid, usize>> {
    let started = std::time::Instant::now();
    loop {
        let seen = inbox(db).await;
        let done = names
            .iter()
            .all(|name| seen.get(*name).map_or(0, HashMap::len) >= n);
        if done || started.elapsed() > SETTLE {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every named subscriber has exactly `ids`, each once.
fn assert_once_each(seen: &BTreeMap<String, HashMap<Uuid, usize>>, names: &[&str], ids: &[Uuid]) {
    for name in names {
        let got = seen.get(*name).cloned().unwrap_or_default();
        assert_eq!(got.len(), ids.len(), "{name} has every message: {got:?}");
        for id in ids {
            assert_eq!(got.get(id), Some(&1), "{name} has {id} once");
        }
    }
}

/// A consumer running in the background until [`Running::stop`].
struct Running {
    consumer: Arc<RabbitMqConsumer>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

fn start_consumer(
    db: &Db,
    options: &RabbitMqOptions,
    subscriptions: &[(String, String)],
    wake: Arc<tokio::sync::Notify>,
) -> Running {
    let clock: SharedClock = Arc::new(SystemClock);
    let consumer = Arc::new(RabbitMqConsumer::new(
        db.clone(),
        clock,
        options.clone(),
        subscriptions,
        wake,
    ));
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn({
        let consumer = consumer.clone();
        async move {
            consumer
                .run(async move {
                    let _ = stopped.wait_for(|v| *v).await;
                })
                .await;
        }
    });
    Running {
        consumer,
        stop,
        task,
    }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the consumer stops")
            .expect("the consumer task");
    }

    async fn wait_connected(&self) {
        let started = std::time::Instant::now();
        while !self.consumer.is_connected() {
            assert!(started.elapsed() < SETTLE, "the consumer connects");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A channel of its own to the broker, for what the tests do by hand.
async fn side_channel(options: &RabbitMqOptions) -> (lapin::Connection, Channel) {
    let connection = connect(options, "stampede test").await.expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    (connection, channel)
}

/// Messages ready in `queue` (not counting unacknowledged ones).
async fn depth(channel: &Channel, queue: &str) -> u32 {
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("the queue exists")
        .message_count()
}

async fn teardown(options: &RabbitMqOptions, topology: &Topology) {
    let (connection, channel) = side_channel(options).await;
    topology.delete(&channel).await.expect("topology deleted");
    let _ = connection.close(200, "done".into()).await;
}

/// Records what it handled.
struct Recorder {
    name: &'static str,
    seen: Mutex<HashMap<Uuid, u32>>,
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
        *self
            .seen
            .lock()
            .expect("lock")
            .entry(message.id)
            .or_insert(0) += 1;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_message_reaches_each_subscriber_once_and_its_handler() {
    let Some(url) = amqp_url() else { return };
    let (_test, db) = open_db().await;
    let options = options(&url);
    let clock: SharedClock = Arc::new(SystemClock);
    let recorders: Vec<Arc<Recorder>> = ["a", "b"]
        .into_iter()
        .map(|name| {
            Arc::new(Recorder {
                name,
                seen: Mutex::new(HashMap::new()),
            })
        })
        .collect();
    let handlers: Vec<Arc<dyn Handler>> = recorders
        .iter()
        .map(|r| r.clone() as Arc<dyn Handler>)
        .collect();
    let dispatcher = Arc::new(Dispatcher::new(
        db.clone(),
        clock.clone(),
        handlers,
        RetryPolicy::default(),
    ));
    let transport = Arc::new(RabbitMqTransport::new(
        options.clone(),
        &dispatcher.subscriptions(),
    ));
    let relay = Relay::new(db.clone(), transport.clone(), clock);
    let consumer = start_consumer(
        &db,
        &options,
        &dispatcher.subscriptions(),
        dispatcher.wake.clone(),
    );
    let (stop_dispatch, mut dispatch_stopped) = watch::channel(false);
    let dispatching = tokio::spawn({
        let dispatcher = dispatcher.clone();
        async move {
            dispatcher
                .run(Duration::from_secs(5), async move {
                    let _ = dispatch_stopped.wait_for(|v| *v).await;
                })
                .await;
        }
    });

    let messages: Vec<Envelope> = (1..=3).map(envelope).collect();
    for m in &messages {
        produce(&db, m.clone()).await;
    }
    assert_eq!(relay.run_once().await.expect("relayed with confirms"), 3);
    assert!(transport.is_connected());
    let ids: Vec<Uuid> = messages.iter().map(|m| m.id).collect();
    let seen = wait_for_inbox(&db, &["a", "b"], 3).await;
    assert_once_each(&seen, &["a", "b"], &ids);
    // The dispatcher polls every 5 s here: only the consumer's wake-up
    // gets the handlers to run this soon.
    let started = std::time::Instant::now();
    while recorders
        .iter()
        .any(|r| r.seen.lock().expect("lock").len() < 3)
        && started.elapsed() < Duration::from_secs(2)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for r in &recorders {
        let seen = r.seen.lock().expect("lock").clone();
        assert_eq!(seen.len(), 3, "{} handled each message", r.name);
        assert!(seen.values().all(|n| *n == 1), "{} once each", r.name);
    }
    assert_eq!(bus::backlog(&db).await.expect("backlog").unpublished, 0);

    let _ = stop_dispatch.send(true);
    dispatching.await.expect("dispatcher stops");
    consumer.stop().await;
    teardown(&options, transport.topology()).await;
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_published_twice_is_one_delivery_per_subscriber() {
    let Some(url) = amqp_url() else { return };
    let (_test, db) = open_db().await;
    let options = options(&url);
    let names = ["a", "b"];
    let subs = subscriptions(&names);
    let transport = RabbitMqTransport::new(options.clone(), &subs);
    let batch: Vec<Envelope> = (1..=5).map(envelope).collect();
    // The relay crashed after the confirms but before marking: it sends again.
    transport.publish(&batch).await.expect("first publication");
    transport.publish(&batch).await.expect("second publication");
    let consumer = start_consumer(&db, &options, &subs, Arc::default());

    let ids: Vec<Uuid> = batch.iter().map(|m| m.id).collect();
    wait_for_inbox(&db, &names, 5).await;
    let (connection, channel) = side_channel(&options).await;
    let topology = transport.topology();
    let started = std::time::Instant::now();
    while depth(&channel, &topology.queue("a")).await + depth(&channel, &topology.queue("b")).await
        > 0
    {
        assert!(started.elapsed() < SETTLE, "the queues drain");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    consumer.stop().await;
    assert_once_each(&inbox(&db).await, &names, &ids);
    // Stopped, nothing it took comes back: everything was acknowledged.
    for name in names {
        assert_eq!(depth(&channel, &topology.queue(name)).await, 0, "{name}");
    }
    let _ = connection.close(200, "done".into()).await;
    teardown(&options, topology).await;
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_goes_to_the_dead_letter_queue_and_does_not_block() {
    let Some(url) = amqp_url() else { return };
    let (_test, db) = open_db().await;
    let options = options(&url);
    let subs = subscriptions(&["a"]);
    let transport = RabbitMqTransport::new(options.clone(), &subs);
    transport.ping().await.expect("topology declared");
    let consumer = start_consumer(&db, &options, &subs, Arc::default());
    consumer.wait_connected().await;
    let (connection, channel) = side_channel(&options).await;
    let topology = transport.topology();
    let garbage = b"{\"not\": \"an envelope\"".to_vec();
    channel
        .basic_publish(
            topology.exchange().into(),
            PointsEarned::TOPIC.into(),
            BasicPublishOptions::default(),
            &garbage,
            BasicProperties::default(),
        )
        .await
        .expect("published")
        .await
        .expect("confirmed");
    let good = envelope(7);
    transport
        .publish(std::slice::from_ref(&good))
        .await
        .expect("published");

    let seen = wait_for_inbox(&db, &["a"], 1).await;
    assert_once_each(&seen, &["a"], &[good.id]);
    let dead_queue = topology.dead_letter_queue("a");
    let started = std::time::Instant::now();
    let dead = loop {
        if let Some(message) = channel
            .basic_get(dead_queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .expect("basic.get")
        {
            break message;
        }
        assert!(started.elapsed() < SETTLE, "the poison reaches the DLQ");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(dead.delivery.data, garbage);
    consumer.stop().await;
    assert_eq!(
        depth(&channel, &topology.queue("a")).await,
        0,
        "never requeued"
    );
    assert_eq!(
        depth(&channel, &dead_queue).await,
        0,
        "one dead letter only"
    );
    let _ = connection.close(200, "done".into()).await;
    teardown(&options, topology).await;
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn competing_consumers_on_one_queue_write_each_message_once() {
    let Some(url) = amqp_url() else { return };
    let (_test, db) = open_db().await;
    let options = RabbitMqOptions {
        prefetch: 3,
        ..options(&url)
    };
    let subs = subscriptions(&["a"]);
    let transport = RabbitMqTransport::new(options.clone(), &subs);
    transport.ping().await.expect("topology declared");
    let first = start_consumer(&db, &options, &subs, Arc::default());
    let second = start_consumer(&db, &options, &subs, Arc::default());
    first.wait_connected().await;
    second.wait_connected().await;
    let batch: Vec<Envelope> = (1..=200).map(envelope).collect();
    for chunk in batch.chunks(50) {
        transport.publish(chunk).await.expect("published");
    }

    let ids: Vec<Uuid> = batch.iter().map(|m| m.id).collect();
    let seen = wait_for_inbox(&db, &["a"], 200).await;
    first.stop().await;
    second.stop().await;
    assert_once_each(&seen, &["a"], &ids);
    assert_once_each(&inbox(&db).await, &["a"], &ids);
    let (connection, channel) = side_channel(&options).await;
    assert_eq!(depth(&channel, &transport.topology().queue("a")).await, 0);
    let _ = connection.close(200, "done".into()).await;
    teardown(&options, transport.topology()).await;
    db.close().await;
}

/// A TCP proxy in front of the broker whose connections can be cut: while
/// down it drops every connection, open or new, so both sides see the
/// broker go away without stopping the real server.
struct Proxy {
    url: String,
    up: watch::Sender<bool>,
    accepting: JoinHandle<()>,
}

impl Proxy {
    async fn start(url: &str) -> Self {
        let (scheme, rest) = url.split_once("://").expect("an AMQP URL");
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (credentials, host) = match authority.rsplit_once('@') {
            Some((credentials, host)) => (format!("{credentials}@"), host),
            None => (String::new(), authority),
        };
        let upstream = if host.contains(':') {
            host.to_owned()
        } else {
            format!("{host}:5672")
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let port = listener.local_addr().expect("an address").port();
        let (up, watching) = watch::channel(true);
        let accepting = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !*watching.borrow() {
                    continue;
                }
                let (upstream, mut watching) = (upstream.clone(), watching.clone());
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let cut = async {
                        while *watching.borrow_and_update() {
                            if watching.changed().await.is_err() {
                                return;
                            }
                        }
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        () = cut => {}
                    }
                });
            }
        });
        Self {
            url: format!("{scheme}://{credentials}127.0.0.1:{port}/{path}"),
            up,
            accepting,
        }
    }

    fn cut(&self) {
        self.up.send_replace(false);
    }

    fn restore(&self) {
        self.up.send_replace(true);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_connection_heals_and_nothing_committed_is_lost() {
    let Some(url) = amqp_url() else { return };
    let (_test, db) = open_db().await;
    let proxy = Proxy::start(&url).await;
    let direct = options(&url);
    let options = RabbitMqOptions {
        url: Secret::new(proxy.url.clone()),
        ..direct.clone()
    };
    let names = ["a", "b"];
    let subs = subscriptions(&names);
    let transport = Arc::new(RabbitMqTransport::new(options.clone(), &subs));
    let relay = Relay::new(db.clone(), transport.clone(), Arc::new(SystemClock));
    let consumer = start_consumer(&db, &options, &subs, Arc::default());
    consumer.wait_connected().await;

    let mut ids = Vec::new();
    for points in 1..=5 {
        let m = envelope(points);
        ids.push(m.id);
        produce(&db, m).await;
    }
    assert_eq!(relay.run_once().await.expect("relayed"), 5);
    wait_for_inbox(&db, &names, 5).await;

    proxy.cut();
    for points in 6..=10 {
        let m = envelope(points);
        ids.push(m.id);
        produce(&db, m).await;
    }
    assert!(
        relay.run_once().await.is_err(),
        "no confirms without a broker"
    );
    assert!(!transport.is_connected());
    let started = std::time::Instant::now();
    while consumer.consumer.is_connected() {
        assert!(started.elapsed() < SETTLE, "the consumer notices the cut");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        bus::backlog(&db).await.expect("backlog").unpublished,
        5,
        "what was not confirmed stays unpublished"
    );

    proxy.restore();
    let started = std::time::Instant::now();
    while bus::backlog(&db).await.expect("backlog").unpublished > 0 {
        assert!(started.elapsed() < SETTLE, "the relay reconnects");
        let _ = relay.run_once().await;
    }
    assert!(transport.is_connected());
    let seen = wait_for_inbox(&db, &names, 10).await;
    assert_once_each(&seen, &names, &ids);
    consumer.wait_connected().await;
    consumer.stop().await;
    drop(proxy);
    teardown(&direct, transport.topology()).await;
    db.close().await;
}
