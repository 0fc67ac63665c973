//! The bus over RabbitMQ (ADR 0016). The relay publishes through
//! [`RabbitMqTransport`] to one durable topic exchange with publisher
//! confirms; every subscriber has a durable queue of its own, which
//! [`RabbitMqConsumer`] drains into the local inbox, acknowledging a
//! delivery only once it is written there. The inbox key makes a message
//! published twice, or taken by two instances sharing a queue, one
//! delivery; the dispatcher's retries and dead letters work unchanged.
//!
//! Topology, all under one prefix (`stampede` in production):
//! - `<prefix>.events`: topic exchange, durable; routing key = topic.
//! - `<prefix>.dead-letters`: direct exchange, durable; the queues' DLX.
//! - `<prefix>.<subscriber>`: durable queue, bound to each of its topics,
//!   dead-lettering to `<prefix>.dead-letters` with its own name as key.
//! - `<prefix>.<subscriber>.dead`: durable queue bound to the DLX with the
//!   subscriber queue's name: messages its consumer could not decode.
//!
//! Both sides declare the whole topology when they connect (declaring is
//! idempotent), so a message published before any consumer ran still waits
//! in its subscriber's queue.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use kernel::db::Db;
use kernel::{Secret, SharedClock};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    BasicRejectOptions, ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::{Mutex, Notify};

use crate::BusError;
use crate::message::Envelope;
use crate::transport::Transport;

/// AMQP delivery mode 2: the broker writes the message to disk.
const PERSISTENT: u8 = 2;
/// The longest a publish waits out the reconnect backoff before it gives the
/// relay an error: keeps the relay's log to about a line a second and its
/// stop prompt while the broker is away.
const MAX_PUBLISH_WAIT: Duration = Duration::from_secs(1);
/// How long a consumer waits before handing back deliveries the inbox could
/// not take (the database is down), so they do not spin through the broker.
const INBOX_RETRY_WAIT: Duration = Duration::from_secs(1);
/// How often a consumer samples its queues' depth for `/metrics`.
const DEPTH_SAMPLE_PERIOD: Duration = Duration::from_secs(5);

/// Where the broker is and how to talk to it.
#[derive(Clone)]
pub struct RabbitMqOptions {
    /// `amqp://user:password@host:port/vhost`; never logged.
    pub url: Secret<String>,
    /// Prefix of every exchange and queue name (tests use a unique one).
    pub prefix: String,
    /// Unacknowledged deliveries the broker sends each subscriber's consumer.
    pub prefetch: u16,
    /// First reconnect wait; doubled after each failed attempt up to `backoff_cap`.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Bound on connecting, and on a batch's publication and confirms.
    pub timeout: Duration,
}

impl RabbitMqOptions {
    #[must_use]
    pub fn new(url: Secret<String>) -> Self {
        Self {
            url,
            prefix: "stampede".into(),
            prefetch: 100,
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(10),
            timeout: Duration::from_secs(10),
        }
    }

    /// The wait before reconnect attempt `failures + 1`.
    fn backoff(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.min(16));
        self.backoff_base
            .saturating_mul(factor)
            .min(self.backoff_cap)
    }
}

impl std::fmt::Debug for RabbitMqOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitMqOptions")
            .field("url", &self.url)
            .field("prefix", &self.prefix)
            .field("prefetch", &self.prefetch)
            .finish_non_exhaustive()
    }
}

/// The names of the exchanges and queues, and which topics each
/// subscriber's queue is bound to.
#[derive(Debug, Clone)]
pub struct Topology {
    prefix: String,
    subscribers: BTreeMap<String, Vec<String>>,
}

impl Topology {
    /// `subscriptions` lists (subscriber name, topic) pairs.
    #[must_use]
    pub fn new(prefix: &str, subscriptions: &[(String, String)]) -> Self {
        let mut subscribers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (subscriber, topic) in subscriptions {
            subscribers
                .entry(subscriber.clone())
                .or_default()
                .push(topic.clone());
        }
        Self {
            prefix: prefix.to_owned(),
            subscribers,
        }
    }

    #[must_use]
    pub fn exchange(&self) -> String {
        format!("{}.events", self.prefix)
    }

    #[must_use]
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dead-letters", self.prefix)
    }

    #[must_use]
    pub fn queue(&self, subscriber: &str) -> String {
        format!("{}.{subscriber}", self.prefix)
    }

    #[must_use]
    pub fn dead_letter_queue(&self, subscriber: &str) -> String {
        format!("{}.dead", self.queue(subscriber))
    }

    /// Declares everything; repeating it with the same names changes nothing.
    pub async fn declare(&self, channel: &Channel) -> Result<(), BusError> {
        let durable_exchange = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        let durable_queue = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        channel
            .exchange_declare(
                self.exchange().into(),
                ExchangeKind::Topic,
                durable_exchange,
                FieldTable::default(),
            )
            .await
            .map_err(broker)?;
        let dlx = self.dead_letter_exchange();
        channel
            .exchange_declare(
                dlx.as_str().into(),
                ExchangeKind::Direct,
                durable_exchange,
                FieldTable::default(),
            )
            .await
            .map_err(broker)?;
        for (subscriber, topics) in &self.subscribers {
            let (queue, dead) = (self.queue(subscriber), self.dead_letter_queue(subscriber));
            channel
                .queue_declare(dead.as_str().into(), durable_queue, FieldTable::default())
                .await
                .map_err(broker)?;
            channel
                .queue_bind(
                    dead.as_str().into(),
                    dlx.as_str().into(),
                    queue.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(broker)?;
            let mut arguments = FieldTable::default();
            arguments.insert(
                "x-dead-letter-exchange".into(),
                AMQPValue::LongString(dlx.as_str().into()),
            );
            arguments.insert(
                "x-dead-letter-routing-key".into(),
                AMQPValue::LongString(queue.as_str().into()),
            );
            channel
                .queue_declare(queue.as_str().into(), durable_queue, arguments)
                .await
                .map_err(broker)?;
            for topic in topics {
                channel
                    .queue_bind(
                        queue.as_str().into(),
                        self.exchange().into(),
                        topic.as_str().into(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .map_err(broker)?;
            }
        }
        Ok(())
    }

    /// Deletes everything [`Topology::declare`] made, queued messages
    /// included: for tests and for taking a deployment down, never at start.
    pub async fn delete(&self, channel: &Channel) -> Result<(), BusError> {
        for subscriber in self.subscribers.keys() {
            for queue in [self.queue(subscriber), self.dead_letter_queue(subscriber)] {
                channel
                    .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                    .await
                    .map_err(broker)?;
            }
        }
        for exchange in [self.exchange(), self.dead_letter_exchange()] {
            channel
                .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                .await
                .map_err(broker)?;
        }
        Ok(())
    }

    fn subscribers(&self) -> impl Iterator<Item = &str> {
        self.subscribers.keys().map(String::as_str)
    }
}

fn broker(e: impl std::fmt::Display) -> BusError {
    BusError::Transport(format!("broker: {e}"))
}

/// Opens a connection within the options' timeout. The URL (and its
/// password) stays out of every error.
pub async fn connect(options: &RabbitMqOptions, name: &str) -> Result<Connection, BusError> {
    let properties = ConnectionProperties::default().with_connection_name(name.into());
    match tokio::time::timeout(
        options.timeout,
        Connection::connect(options.url.expose(), properties),
    )
    .await
    {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(e)) => Err(BusError::Transport(format!("broker: cannot connect: {e}"))),
        Err(_) => Err(BusError::Transport(format!(
            "broker: no connection within {:?}",
            options.timeout
        ))),
    }
}

/// The message as it travels: the whole envelope as JSON, the topic as
/// routing key and type, the envelope id as message id.
fn properties(message: &Envelope) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert("version".into(), AMQPValue::LongInt(message.version));
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(PERSISTENT)
        .with_message_id(message.id.to_string().into())
        .with_type(message.topic.as_str().into())
        .with_headers(headers)
}

/// Publishes to the exchange with publisher confirms: `publish` is `Ok` only
/// when the broker confirmed every message of the batch, so the relay marks
/// nothing published that the broker does not hold.
pub struct RabbitMqTransport {
    options: RabbitMqOptions,
    topology: Topology,
    link: Mutex<Link>,
    connected: AtomicBool,
}

/// The publishing connection, or when to try for one again.
#[derive(Default)]
struct Link {
    open: Option<(Connection, Channel)>,
    failures: u32,
    retry_at: Option<Instant>,
}

impl RabbitMqTransport {
    /// Connects lazily, on the first publish or [`RabbitMqTransport::ping`].
    /// `subscriptions` are declared with the topology, so their queues
    /// exist before the first message is published.
    #[must_use]
    pub fn new(options: RabbitMqOptions, subscriptions: &[(String, String)]) -> Self {
        let topology = Topology::new(&options.prefix, subscriptions);
        Self {
            options,
            topology,
            link: Mutex::new(Link::default()),
            connected: AtomicBool::new(false),
        }
    }

    #[must_use]
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Whether the last use of the broker worked; cheap, for `/readyz`.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Connects if not connected (respecting the backoff): `Ok` when the
    /// broker is reachable now.
    pub async fn ping(&self) -> Result<(), BusError> {
        let mut link = self.link.lock().await;
        self.channel(&mut link).await.map(drop)
    }

    /// The open channel, reconnecting (and redeclaring the topology) when
    /// the last one broke, no sooner than the backoff allows.
    async fn channel(&self, link: &mut Link) -> Result<Channel, BusError> {
        if let Some((connection, channel)) = &link.open {
            if connection.status().connected() && channel.status().connected() {
                return Ok(channel.clone());
            }
            link.open = None;
            self.connected.store(false, Ordering::Relaxed);
        }
        if let Some(at) = link.retry_at {
            let wait = at.saturating_duration_since(Instant::now());
            tokio::time::sleep(wait.min(MAX_PUBLISH_WAIT)).await;
            if Instant::now() < at {
                return Err(BusError::Transport(
                    "broker: unreachable; waiting to reconnect".into(),
                ));
            }
        }
        match self.open().await {
            Ok((connection, channel)) => {
                if link.failures > 0 {
                    tracing::info!("publishing to the broker again");
                }
                link.failures = 0;
                link.retry_at = None;
                link.open = Some((connection, channel.clone()));
                self.connected.store(true, Ordering::Relaxed);
                Ok(channel)
            }
            Err(e) => {
                link.retry_at = Some(Instant::now() + self.options.backoff(link.failures));
                link.failures = link.failures.saturating_add(1);
                self.connected.store(false, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    async fn open(&self) -> Result<(Connection, Channel), BusError> {
        let connection = connect(&self.options, "stampede relay").await?;
        let channel = connection.create_channel().await.map_err(broker)?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(broker)?;
        self.topology.declare(&channel).await?;
        Ok((connection, channel))
    }

    /// Sends the batch, then waits for every confirm; counts the nacks.
    async fn send(
        &self,
        channel: &Channel,
        messages: &[(ShortString, Vec<u8>, BasicProperties)],
    ) -> Result<usize, lapin::Error> {
        let exchange: ShortString = self.topology.exchange().into();
        let mut confirms = Vec::with_capacity(messages.len());
        for (topic, body, properties) in messages {
            confirms.push(
                channel
                    .basic_publish(
                        exchange.clone(),
                        topic.clone(),
                        BasicPublishOptions::default(),
                        body,
                        properties.clone(),
                    )
                    .await?,
            );
        }
        let mut nacked = 0;
        for confirm in confirms {
            if !confirm.await?.is_ack() {
                nacked += 1;
            }
        }
        Ok(nacked)
    }
}

#[async_trait]
impl Transport for RabbitMqTransport {
    async fn publish(&self, messages: &[Envelope]) -> Result<(), BusError> {
        if messages.is_empty() {
            return Ok(());
        }
        let mut encoded = Vec::with_capacity(messages.len());
        for message in messages {
            encoded.push((
                ShortString::from(message.topic.as_str()),
                serde_json::to_vec(message)?,
                properties(message),
            ));
        }
        let mut link = self.link.lock().await;
        let channel = self.channel(&mut link).await?;
        let started = Instant::now();
        let outcome =
            tokio::time::timeout(self.options.timeout, self.send(&channel, &encoded)).await;
        let failure = match outcome {
            Ok(Ok(0)) => {
                metrics::histogram!("bus_publish_confirm_seconds")
                    .record(started.elapsed().as_secs_f64());
                return Ok(());
            }
            // The broker is there but refused some: keep the connection, send again.
            Ok(Ok(nacked)) => {
                return Err(BusError::Transport(format!(
                    "broker: {nacked} of {} messages nacked",
                    messages.len()
                )));
            }
            Ok(Err(e)) => broker(e),
            Err(_) => BusError::Transport(format!(
                "broker: no confirms within {:?}",
                self.options.timeout
            )),
        };
        // Confirms on this channel are in doubt: start again on a new one.
        if let Some((connection, _)) = link.open.take() {
            let _ = connection
                .close(320, "stampede relay reconnects".into())
                .await;
        }
        self.connected.store(false, Ordering::Relaxed);
        Err(failure)
    }
}

/// Takes each subscriber's deliveries from its queue into this database's
/// inbox. Several instances may share the queues (competing consumers).
pub struct RabbitMqConsumer {
    db: Db,
    clock: SharedClock,
    options: RabbitMqOptions,
    topology: Topology,
    /// Woken after deliveries are written, so the dispatcher runs at once.
    wake: Arc<Notify>,
    connected: AtomicBool,
}

impl RabbitMqConsumer {
    /// `subscriptions` lists (subscriber name, topic) pairs, as for
    /// [`crate::InProcessTransport::new`].
    #[must_use]
    pub fn new(
        db: Db,
        clock: SharedClock,
        options: RabbitMqOptions,
        subscriptions: &[(String, String)],
        wake: Arc<Notify>,
    ) -> Self {
        let topology = Topology::new(&options.prefix, subscriptions);
        Self {
            db,
            clock,
            options,
            topology,
            wake,
            connected: AtomicBool::new(false),
        }
    }

    /// Whether it is consuming now; cheap, for `/readyz`.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Consumes until `stop` resolves, reconnecting with capped exponential
    /// backoff whenever the broker goes away.
    pub async fn run(&self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        if self.topology.subscribers.is_empty() {
            return stop.await;
        }
        let mut failures = 0u32;
        loop {
            let outcome = tokio::select! {
                biased;
                () = &mut stop => break,
                outcome = self.session(&mut failures) => outcome,
            };
            self.connected.store(false, Ordering::Relaxed);
            if let Err(e) = outcome {
                tracing::warn!(error = %e, failures, "bus consumer lost the broker; reconnecting");
            }
            let wait = self.options.backoff(failures);
            failures = failures.saturating_add(1);
            tokio::select! {
                biased;
                () = &mut stop => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
        self.connected.store(false, Ordering::Relaxed);
    }

    /// One connection's life: declare, consume every subscriber's queue,
    /// and return when the connection breaks.
    async fn session(&self, failures: &mut u32) -> Result<(), BusError> {
        let connection = connect(&self.options, "stampede consumer").await?;
        let setup = connection.create_channel().await.map_err(broker)?;
        self.topology.declare(&setup).await?;
        let mut streams = Vec::new();
        for subscriber in self.topology.subscribers() {
            let channel = connection.create_channel().await.map_err(broker)?;
            channel
                .basic_qos(self.options.prefetch, BasicQosOptions::default())
                .await
                .map_err(broker)?;
            let consumer = channel
                .basic_consume(
                    self.topology.queue(subscriber).into(),
                    "".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(broker)?;
            let name = subscriber.to_owned();
            streams.push(consumer.map(move |delivery| (name.clone(), delivery)));
        }
        self.connected.store(true, Ordering::Relaxed);
        if *failures > 0 {
            tracing::info!("bus consumer connected to the broker again");
        }
        *failures = 0;
        let mut deliveries = futures::stream::select_all(streams)
            .ready_chunks(usize::from(self.options.prefetch.max(1)));
        let mut sample = tokio::time::interval(DEPTH_SAMPLE_PERIOD);
        loop {
            let batch = tokio::select! {
                batch = deliveries.next() => batch,
                _ = sample.tick() => {
                    self.sample_depths(&setup).await?;
                    continue;
                }
            };
            let Some(batch) = batch else { break };
            let mut taken = Vec::with_capacity(batch.len());
            for (subscriber, delivery) in batch {
                taken.push((subscriber, delivery.map_err(broker)?));
            }
            self.take(taken).await?;
        }
        Err(BusError::Transport("broker: the consumers ended".into()))
    }

    /// Sets `bus_queue_depth` (messages ready, per subscriber) from the broker.
    async fn sample_depths(&self, channel: &Channel) -> Result<(), BusError> {
        for subscriber in self.topology.subscribers() {
            let queue = channel
                .queue_declare(
                    self.topology.queue(subscriber).into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .map_err(broker)?;
            metrics::gauge!("bus_queue_depth", "subscriber" => subscriber.to_owned())
                .set(f64::from(queue.message_count()));
        }
        Ok(())
    }

    /// Writes a batch of deliveries into the inbox, then acknowledges them;
    /// an undecodable one is rejected to its dead-letter queue.
    async fn take(&self, batch: Vec<(String, Delivery)>) -> Result<(), BusError> {
        let mut decoded = Vec::with_capacity(batch.len());
        for (subscriber, delivery) in batch {
            match serde_json::from_slice::<Envelope>(&delivery.data) {
                Ok(envelope) => decoded.push((subscriber, envelope, delivery)),
                Err(e) => {
                    tracing::warn!(subscriber, error = %e,
                        "undecodable message; rejected to the dead-letter queue");
                    delivery
                        .reject(BasicRejectOptions { requeue: false })
                        .await
                        .map_err(broker)?;
                }
            }
        }
        if decoded.is_empty() {
            return Ok(());
        }
        let rows = decoded
            .iter()
            .map(|(subscriber, envelope, _)| (envelope.clone(), subscriber.clone()))
            .collect();
        let now = self.clock.now();
        match crate::inbox::store_deliveries(&self.db, now, rows).await {
            Ok(()) => {
                self.wake.notify_one();
                for (subscriber, envelope, _) in &decoded {
                    let lag = (now - envelope.occurred_at).as_seconds_f64().max(0.0);
                    metrics::histogram!("bus_consumer_lag_seconds", "subscriber" => subscriber.clone())
                        .record(lag);
                }
                for (_, _, delivery) in decoded {
                    delivery
                        .ack(BasicAckOptions::default())
                        .await
                        .map_err(broker)?;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "the inbox refused deliveries; handing them back");
                tokio::time::sleep(INBOX_RETRY_WAIT).await;
                for (_, _, delivery) in decoded {
                    delivery
                        .nack(BasicNackOptions {
                            multiple: false,
                            requeue: true,
                        })
                        .await
                        .map_err(broker)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_share_the_prefix_and_the_backoff_is_capped() {
        let topology = Topology::new(
            "p",
            &[("rewards.facts".into(), "identity.user_logged_in".into())],
        );
        assert_eq!(topology.exchange(), "p.events");
        assert_eq!(topology.dead_letter_exchange(), "p.dead-letters");
        assert_eq!(topology.queue("rewards.facts"), "p.rewards.facts");
        assert_eq!(
            topology.dead_letter_queue("rewards.facts"),
            "p.rewards.facts.dead"
        );
        let options = RabbitMqOptions::new(Secret::new("amqp://u:hunter2@h/%2f".into()));
        let waits: Vec<u128> = (0..9).map(|f| options.backoff(f).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000]);
        assert_eq!(options.backoff(u32::MAX), Duration::from_secs(10));
        assert!(!format!("{options:?}").contains("hunter2"));
    }
}
