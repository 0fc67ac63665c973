//! Relay throughput and commit → handler latency, over the in-process
//! transport and over RabbitMQ with publisher confirms, in one run (issue 18).
//!
//! Everything on the path is the bus's own: messages are committed to the
//! outbox with `bus::enqueue!` in transactions of `--batch` messages by
//! `--producers` concurrent producers; the real [`Relay`] publishes them
//! (batches of 200, each batch's confirms awaited together); over RabbitMQ
//! the real [`RabbitMqConsumer`] writes them into the inbox; the real
//! [`Dispatcher`] runs a handler that records when it ran. Each transport is
//! measured twice, on a fresh database each time:
//!
//! - **drain**: the outbox is filled first, then relay, consumer and
//!   dispatcher start; messages/s relayed (published and confirmed) and
//!   handled is the bus's capacity.
//! - **paced**: producers commit at `--rate` messages/s while everything
//!   runs; commit → handler latency (the instant the producer's commit
//!   returned to the instant the handler ran) p50/p99 at that rate.
//!
//! The database is a temporary SQLite file unless `--database-url` names a
//! PostgreSQL server (a fresh schema per run, dropped after). RabbitMQ names
//! are under a unique `stampede-bench-<uuid>` prefix, deleted after each run.
//!
//! ```sh
//! cargo run --release -p bus --example relay_throughput -- \
//!     --messages 20000 --batch 50 --producers 4 --rate 10000 \
//!     [--database-url postgres://postgres@127.0.0.1:5432/test] \
//!     [--amqp-url amqp://guest:guest@127.0.0.1:5672/%2f] [--timeout 60]
//! ```

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bus::rabbitmq::connect;
use bus::{
    Dispatcher, Envelope, Handler, HandlerError, InProcessTransport, Message, RabbitMqConsumer,
    RabbitMqOptions, RabbitMqTransport, Relay, RetryPolicy, Transport,
};
use hdrhistogram::Histogram;
use kernel::db::{Db, DbOptions};
use kernel::{Clock, Secret, SharedClock, SystemClock};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnectOptions;
// The schema name is made here from a UUID, never from input.
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Executor};
use tokio::sync::{Notify, watch};
use uuid::Uuid;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const SUBSCRIBER: &str = "bench.recorder";

#[derive(Debug, Serialize, Deserialize)]
struct Tick {
    seq: usize,
}

impl Message for Tick {
    const TOPIC: &'static str = "bench.relay_tick";
    const VERSION: i32 = 1;
}

struct Args {
    messages: usize,
    batch: usize,
    producers: usize,
    rate: u64,
    database_url: Option<String>,
    amqp_url: String,
    timeout: Duration,
}

impl Args {
    fn parse() -> Result<Self, BoxError> {
        let mut args = Self {
            messages: 20_000,
            batch: 50,
            producers: 4,
            rate: 10_000,
            database_url: None,
            amqp_url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            timeout: Duration::from_secs(60),
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--messages" => args.messages = value()?.parse()?,
                "--batch" => args.batch = value()?.parse()?,
                "--producers" => args.producers = value()?.parse()?,
                "--rate" => args.rate = value()?.parse()?,
                "--database-url" => args.database_url = Some(value()?),
                "--amqp-url" => args.amqp_url = value()?,
                "--timeout" => args.timeout = Duration::from_secs(value()?.parse()?),
                other => return Err(format!("unknown argument {other}").into()),
            }
        }
        if args.messages == 0 || args.batch == 0 || args.producers == 0 || args.rate == 0 {
            return Err("--messages, --batch, --producers and --rate must be positive".into());
        }
        if !args.amqp_url.contains("@127.0.0.1") && !args.amqp_url.contains("//127.0.0.1") {
            return Err("the benchmark talks to a broker on 127.0.0.1 only".into());
        }
        Ok(args)
    }
}

/// When each message was committed and first handled, in nanoseconds since
/// the run's start plus one (0: not yet).
struct Marks {
    start: Instant,
    committed: Vec<AtomicU64>,
    relayed: Vec<AtomicU64>,
    handled: Vec<AtomicU64>,
    handled_count: AtomicUsize,
    /// Handler runs of a message already handled (at-least-once repeats).
    repeats: AtomicUsize,
    all_handled: Notify,
}

impl Marks {
    fn new(n: usize) -> Self {
        Self {
            start: Instant::now(),
            committed: (0..n).map(|_| AtomicU64::new(0)).collect(),
            relayed: (0..n).map(|_| AtomicU64::new(0)).collect(),
            handled: (0..n).map(|_| AtomicU64::new(0)).collect(),
            handled_count: AtomicUsize::new(0),
            repeats: AtomicUsize::new(0),
            all_handled: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .saturating_add(1)
    }
}

/// The subscriber: records the instant it ran for each message.
struct Recorder {
    marks: Arc<Marks>,
}

#[async_trait]
impl Handler for Recorder {
    fn name(&self) -> &'static str {
        SUBSCRIBER
    }
    fn topics(&self) -> &'static [&'static str] {
        &[Tick::TOPIC]
    }
    async fn handle(&self, message: &Envelope) -> Result<(), HandlerError> {
        let tick = message
            .decode::<Tick>()
            .map_err(|e| HandlerError(e.to_string()))?;
        let slot = self
            .marks
            .handled
            .get(tick.seq)
            .ok_or_else(|| HandlerError(format!("unknown seq {}", tick.seq)))?;
        let now = self.marks.now();
        if slot
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            let n = self.marks.handled_count.fetch_add(1, Ordering::Relaxed) + 1;
            if n == self.marks.handled.len() {
                self.marks.all_handled.notify_one();
            }
        } else {
            self.marks.repeats.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// The real transport, timed: how many messages it took, when the last
/// batch was accepted (confirmed, over RabbitMQ), and each batch's duration.
struct Timed {
    inner: Arc<dyn Transport>,
    marks: Arc<Marks>,
    published: AtomicUsize,
    last_published: AtomicU64,
    batches: std::sync::Mutex<Histogram<u64>>,
}

#[async_trait]
impl Transport for Timed {
    async fn publish(&self, messages: &[Envelope]) -> Result<(), bus::BusError> {
        let started = Instant::now();
        self.inner.publish(messages).await?;
        let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        if let Ok(mut batches) = self.batches.lock() {
            batches.saturating_record(took.max(1));
        }
        self.published.fetch_add(messages.len(), Ordering::Relaxed);
        let now = self.marks.now();
        for message in messages {
            let seq = message
                .payload
                .get("seq")
                .and_then(serde_json::Value::as_u64);
            if let Some(slot) = seq
                .and_then(|s| usize::try_from(s).ok())
                .and_then(|s| self.marks.relayed.get(s))
            {
                let _ = slot.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
            }
        }
        self.last_published.store(now, Ordering::Relaxed);
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    InProcess,
    RabbitMq,
}

impl Kind {
    const fn label(self) -> &'static str {
        match self {
            Self::InProcess => "in-process",
            Self::RabbitMq => "RabbitMQ, confirms",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Drain,
    Paced,
}

/// A fresh database for one run, removed afterwards.
enum Fresh {
    /// Kept until the run ends: dropping it removes the file.
    Sqlite {
        _dir: tempfile::TempDir,
    },
    Postgres {
        admin_url: String,
        schema: String,
    },
}

impl Fresh {
    async fn create(database_url: Option<&str>) -> Result<(Self, String), BoxError> {
        let Some(admin_url) = database_url else {
            let dir = tempfile::tempdir()?;
            let url = format!("sqlite://{}", dir.path().join("bench.db").display());
            return Ok((Self::Sqlite { _dir: dir }, url));
        };
        let schema = format!("relay_bench_{}", Uuid::new_v4().simple());
        let mut conn = PgConnectOptions::from_str(admin_url)?.connect().await?;
        conn.execute(AssertSqlSafe(format!("create schema {schema}")))
            .await?;
        conn.close().await?;
        let separator = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{separator}options=-c%20search_path%3D{schema}");
        Ok((
            Self::Postgres {
                admin_url: admin_url.to_owned(),
                schema,
            },
            url,
        ))
    }

    async fn remove(self) {
        if let Self::Postgres { admin_url, schema } = self {
            let Ok(options) = PgConnectOptions::from_str(&admin_url) else {
                return;
            };
            if let Ok(mut conn) = options.connect().await {
                let _ = conn
                    .execute(AssertSqlSafe(format!(
                        "drop schema if exists {schema} cascade"
                    )))
                    .await;
                let _ = conn.close().await;
            }
        }
    }
}

struct Outcome {
    kind: Kind,
    mode: Mode,
    committed_per_s: f64,
    relayed: usize,
    relayed_per_s: f64,
    handled: usize,
    handled_per_s: f64,
    repeats: usize,
    /// Commit → relayed (accepted by the transport), commit → handler.
    latency: Option<(Histogram<u64>, Histogram<u64>)>,
    batch_p50_ms: f64,
    batch_p99_ms: f64,
    batches: u64,
}

/// Commits every message of `seqs` through the outbox, `batch` per
/// transaction, `producers` at a time, paced to `rate` messages/s when given.
async fn produce(
    db: &Db,
    marks: &Arc<Marks>,
    wake: &Arc<Notify>,
    args: &Args,
    rate: Option<u64>,
) -> Result<(), BoxError> {
    let n = args.messages;
    let chunks: Vec<std::ops::Range<usize>> = (0..n)
        .step_by(args.batch)
        .map(|s| s..(s + args.batch).min(n))
        .collect();
    let mut tasks = Vec::new();
    for p in 0..args.producers {
        let mine: Vec<_> = chunks
            .iter()
            .skip(p)
            .step_by(args.producers)
            .cloned()
            .collect();
        let (db, marks, wake) = (db.clone(), marks.clone(), wake.clone());
        // Each producer commits one transaction per tick.
        let period = rate.map(|r| {
            let batches_per_s = r as f64 / (args.batch * args.producers) as f64;
            Duration::from_secs_f64(1.0 / batches_per_s)
        });
        tasks.push(tokio::spawn(async move {
            let mut ticker = period.map(|p| {
                let mut t = tokio::time::interval(p);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                t
            });
            for range in mine {
                if let Some(t) = ticker.as_mut() {
                    t.tick().await;
                }
                let now = SystemClock.now();
                let envelopes: Vec<Envelope> = range
                    .clone()
                    .map(|seq| Envelope::new(&Tick { seq }, now))
                    .collect::<Result<_, _>>()?;
                let result: Result<(), sqlx::Error> = kernel::write_tx!(&db, |conn| {
                    for envelope in &envelopes {
                        bus::enqueue!(conn, envelope)?;
                    }
                    Ok(())
                });
                result?;
                let at = marks.now();
                for seq in range {
                    marks.committed[seq].store(at, Ordering::Relaxed);
                }
                wake.notify_one();
            }
            Ok::<(), BoxError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// Seconds from `started` to the last commit.
fn produce_elapsed(marks: &Marks, started: u64) -> f64 {
    let last = marks
        .committed
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .max()
        .unwrap_or(0);
    (last.saturating_sub(started) as f64 / 1e9).max(1e-9)
}

async fn run(args: &Args, kind: Kind, mode: Mode) -> Result<Outcome, BoxError> {
    let (fresh, url) = Fresh::create(args.database_url.as_deref()).await?;
    let db = Db::connect(&url, &DbOptions::default()).await?;
    db.migrate(bus::migrations()).await?;
    let options = RabbitMqOptions {
        prefix: format!("stampede-bench-{}", Uuid::now_v7()),
        ..RabbitMqOptions::new(Secret::new(args.amqp_url.clone()))
    };
    let outcome = measure(args, kind, mode, &db, &options).await;
    if kind == Kind::RabbitMq {
        // Delete what the run declared, even when it failed.
        let subs = [(SUBSCRIBER.to_owned(), Tick::TOPIC.to_owned())];
        let topology = bus::rabbitmq::Topology::new(&options.prefix, &subs);
        match connect(&options, "stampede bench cleanup").await {
            Ok(connection) => {
                if let Ok(channel) = connection.create_channel().await
                    && let Err(e) = topology.delete(&channel).await
                {
                    eprintln!("could not delete {}.*: {e}", options.prefix);
                }
                let _ = connection.close(200, "done".into()).await;
            }
            Err(e) => eprintln!("could not delete {}.*: {e}", options.prefix),
        }
    }
    db.close().await;
    fresh.remove().await;
    outcome
}

async fn measure(
    args: &Args,
    kind: Kind,
    mode: Mode,
    db: &Db,
    options: &RabbitMqOptions,
) -> Result<Outcome, BoxError> {
    let n = args.messages;
    let clock: SharedClock = Arc::new(SystemClock);
    let marks = Arc::new(Marks::new(n));
    let handler: Arc<dyn Handler> = Arc::new(Recorder {
        marks: marks.clone(),
    });
    let dispatcher = Arc::new(Dispatcher::new(
        db.clone(),
        clock.clone(),
        vec![handler],
        RetryPolicy::default(),
    ));
    let subs = dispatcher.subscriptions();
    let (inner, consumer): (Arc<dyn Transport>, Option<Arc<RabbitMqConsumer>>) = match kind {
        Kind::InProcess => (
            Arc::new(InProcessTransport::new(
                db.clone(),
                clock.clone(),
                &subs,
                dispatcher.wake.clone(),
            )),
            None,
        ),
        Kind::RabbitMq => {
            let transport = RabbitMqTransport::new(options.clone(), &subs);
            // Declare the topology (the subscriber's queue) before any publish.
            transport.ping().await?;
            let consumer = RabbitMqConsumer::new(
                db.clone(),
                clock.clone(),
                options.clone(),
                &subs,
                dispatcher.wake.clone(),
            );
            (Arc::new(transport), Some(Arc::new(consumer)))
        }
    };
    let timed = Arc::new(Timed {
        inner,
        marks: marks.clone(),
        published: AtomicUsize::new(0),
        last_published: AtomicU64::new(0),
        batches: std::sync::Mutex::new(Histogram::new_with_bounds(1, 600_000_000, 3)?),
    });
    let relay = Arc::new(Relay::new(db.clone(), timed.clone(), clock.clone()));

    let produce_started = marks.now();
    if mode == Mode::Drain {
        produce(db, &marks, &relay.wake, args, None).await?;
    }
    let (stop, stopped) = watch::channel(false);
    let until_stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|v| *v).await;
        }
    };
    let background_started = marks.now();
    let mut tasks = Vec::new();
    if let Some(consumer) = &consumer {
        let (running, stop) = (consumer.clone(), until_stopped());
        tasks.push(tokio::spawn(async move { running.run(stop).await }));
        let started = Instant::now();
        while !consumer.is_connected() {
            if started.elapsed() > Duration::from_secs(10) {
                return Err("the consumer did not connect within 10 s".into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    {
        let (dispatcher, stop) = (dispatcher.clone(), until_stopped());
        tasks.push(tokio::spawn(async move {
            dispatcher.run(Duration::from_millis(500), stop).await;
        }));
        let (relay, stop) = (relay.clone(), until_stopped());
        tasks.push(tokio::spawn(async move {
            relay.run(Duration::from_millis(500), stop).await;
        }));
    }
    if mode == Mode::Paced {
        produce(db, &marks, &relay.wake, args, Some(args.rate)).await?;
    }
    let committed_per_s = n as f64 / produce_elapsed(&marks, produce_started);
    let _ = tokio::time::timeout(args.timeout, async {
        while marks.handled_count.load(Ordering::Relaxed) < n {
            let _ = tokio::time::timeout(Duration::from_millis(100), marks.all_handled.notified())
                .await;
        }
    })
    .await;
    let _ = stop.send(true);
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    }

    // Rates over the span from the start (first commit, or the relay's
    // start when draining) to the last message relayed / handled.
    let first = match mode {
        Mode::Drain => background_started,
        Mode::Paced => marks
            .committed
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .filter(|c| *c > 0)
            .min()
            .unwrap_or(1),
    };
    let handled_marks: Vec<u64> = marks
        .handled
        .iter()
        .map(|h| h.load(Ordering::Relaxed))
        .collect();
    let last_handled = handled_marks.iter().copied().max().unwrap_or(0);
    let per_s = |count: usize, last: u64| {
        let span = last.saturating_sub(first) as f64 / 1e9;
        if span > 0.0 { count as f64 / span } else { 0.0 }
    };
    let relayed = timed.published.load(Ordering::Relaxed);
    let handled = marks.handled_count.load(Ordering::Relaxed);
    let latency = if mode == Mode::Paced {
        let mut to_handler = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
        let mut to_relay = to_handler.clone();
        for ((c, r), h_at) in marks
            .committed
            .iter()
            .zip(&marks.relayed)
            .zip(&handled_marks)
        {
            let (c, r) = (c.load(Ordering::Relaxed), r.load(Ordering::Relaxed));
            // Microseconds; the relay can take a message before its producer
            // records the commit instant.
            if c > 0 && r > 0 {
                to_relay.saturating_record((r.saturating_sub(c) / 1_000).max(1));
            }
            if c > 0 && *h_at > 0 {
                to_handler.saturating_record((h_at.saturating_sub(c) / 1_000).max(1));
            }
        }
        Some((to_relay, to_handler))
    } else {
        None
    };
    let batches = timed
        .batches
        .lock()
        .map_err(|_| "batch histogram poisoned")?
        .clone();
    Ok(Outcome {
        kind,
        mode,
        committed_per_s,
        relayed,
        relayed_per_s: per_s(relayed, timed.last_published.load(Ordering::Relaxed)),
        handled,
        handled_per_s: per_s(handled, last_handled),
        repeats: marks.repeats.load(Ordering::Relaxed),
        latency,
        batch_p50_ms: batches.value_at_quantile(0.5) as f64 / 1e3,
        batch_p99_ms: batches.value_at_quantile(0.99) as f64 / 1e3,
        batches: batches.len(),
    })
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse()?;
    let database = if args.database_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite (temporary file)"
    };
    println!(
        "relay_throughput: {} messages, {} per outbox transaction, {} producers, \
         paced at {} msg/s; database {database}",
        args.messages, args.batch, args.producers, args.rate
    );
    let mut outcomes = Vec::new();
    for kind in [Kind::InProcess, Kind::RabbitMq] {
        for mode in [Mode::Drain, Mode::Paced] {
            let outcome = run(&args, kind, mode).await?;
            outcomes.push(outcome);
        }
    }
    println!(
        "| transport | run | committed msg/s | relayed | relayed msg/s | handled | handled msg/s \
         | commit → relayed p50 / p99 | commit → handler p50 / p99 / max \
         | publish batch p50 / p99 (batches) |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for o in &outcomes {
        let ms = |us: u64| us as f64 / 1e3;
        let (relay_latency, latency) = o.latency.as_ref().map_or_else(
            || ("—".to_owned(), "—".to_owned()),
            |(r, h)| {
                (
                    format!(
                        "{:.1} / {:.1} ms",
                        ms(r.value_at_quantile(0.5)),
                        ms(r.value_at_quantile(0.99))
                    ),
                    format!(
                        "{:.1} / {:.1} / {:.1} ms",
                        ms(h.value_at_quantile(0.5)),
                        ms(h.value_at_quantile(0.99)),
                        ms(h.max())
                    ),
                )
            },
        );
        let mode = match o.mode {
            Mode::Drain => "drain (outbox filled first)".to_owned(),
            Mode::Paced => format!("paced at {} msg/s", args.rate),
        };
        println!(
            "| {} | {mode} | {:.0} | {} | {:.0} | {}{} | {:.0} | {relay_latency} | {latency} \
             | {:.1} / {:.1} ms ({}) |",
            o.kind.label(),
            o.committed_per_s,
            o.relayed,
            o.relayed_per_s,
            o.handled,
            if o.repeats > 0 {
                format!(" (+{} repeats)", o.repeats)
            } else {
                String::new()
            },
            o.handled_per_s,
            o.batch_p50_ms,
            o.batch_p99_ms,
            o.batches,
        );
    }
    if outcomes.iter().any(|o| o.handled < args.messages) {
        println!(
            "note: some runs did not handle every message within --timeout {:?}",
            args.timeout
        );
    }
    Ok(())
}
