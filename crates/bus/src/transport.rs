//! Transports carry published messages from outboxes to inboxes. The
//! in-process one writes the deliveries straight into the inbox of the same
//! database; the RabbitMQ one ([`crate::rabbitmq`]) carries them between
//! processes.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use kernel::SharedClock;
use kernel::db::Db;
use tokio::sync::Notify;

use crate::BusError;
use crate::message::Envelope;

#[async_trait]
pub trait Transport: Send + Sync {
    /// Hands messages on; `Ok` means they will reach every subscriber.
    async fn publish(&self, messages: &[Envelope]) -> Result<(), BusError>;
}

/// Subscribers in this process, by topic; deliveries go into this database's inbox.
pub struct InProcessTransport {
    db: Db,
    clock: SharedClock,
    subscribers: BTreeMap<String, Vec<String>>,
    /// Woken after deliveries are written, so the dispatcher runs at once.
    wake: Arc<Notify>,
}

impl InProcessTransport {
    /// `subscriptions` lists (subscriber name, topic) pairs.
    #[must_use]
    pub fn new(
        db: Db,
        clock: SharedClock,
        subscriptions: &[(String, String)],
        wake: Arc<Notify>,
    ) -> Self {
        let mut subscribers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (subscriber, topic) in subscriptions {
            subscribers
                .entry(topic.clone())
                .or_default()
                .push(subscriber.clone());
        }
        Self {
            db,
            clock,
            subscribers,
            wake,
        }
    }
}

#[async_trait]
impl Transport for InProcessTransport {
    async fn publish(&self, messages: &[Envelope]) -> Result<(), BusError> {
        let now = self.clock.now();
        let deliveries: Vec<(Envelope, String)> = messages
            .iter()
            .flat_map(|m| {
                self.subscribers
                    .get(&m.topic)
                    .into_iter()
                    .flatten()
                    .map(move |s| (m.clone(), s.clone()))
            })
            .collect();
        if deliveries.is_empty() {
            return Ok(());
        }
        crate::inbox::store_deliveries(&self.db, now, deliveries).await?;
        self.wake.notify_one();
        Ok(())
    }
}
