//! The outbox and its relay.

use std::sync::Arc;
use std::time::Duration;

use kernel::db::Db;
use kernel::{SharedClock, Timestamp};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::BusError;
use crate::message::Envelope;
use crate::transport::Transport;

/// Writes `$envelope` (an `&Envelope`) to the outbox on `$conn`, inside the
/// caller's `kernel::write_tx!` body, so the message commits with the change
/// it announces. Evaluates to `Result<(), sqlx::Error>`.
#[macro_export]
macro_rules! enqueue {
    ($conn:expr, $envelope:expr) => {{
        let envelope: &$crate::Envelope = $envelope;
        ::sqlx::query(
            "insert into outbox_messages (id, topic, version, payload, created_at) \
             values ($1, $2, $3, $4, $5)",
        )
        .bind(envelope.id)
        .bind(&envelope.topic)
        .bind(envelope.version)
        .bind(envelope.payload.to_string())
        .bind(envelope.occurred_at)
        .execute(&mut *$conn)
        .await
        .map(drop)
    }};
}

#[derive(sqlx::FromRow)]
struct OutboxRow {
    id: Uuid,
    topic: String,
    version: i32,
    payload: String,
    created_at: Timestamp,
}

/// Moves committed outbox messages to the transport.
pub struct Relay {
    db: Db,
    transport: Arc<dyn Transport>,
    clock: SharedClock,
    /// Woken by producers for low latency; the relay also polls.
    pub wake: Arc<Notify>,
    batch: i64,
}

impl Relay {
    #[must_use]
    pub fn new(db: Db, transport: Arc<dyn Transport>, clock: SharedClock) -> Self {
        Self {
            db,
            transport,
            clock,
            wake: Arc::new(Notify::new()),
            batch: 200,
        }
    }

    /// Publishes one batch of unpublished messages, oldest first; returns how
    /// many. Publishing happens outside any write transaction (the transport
    /// may write), then the batch is marked published. A crash in between
    /// publishes the batch again, which the inbox dedupes.
    pub async fn run_once(&self) -> Result<usize, BusError> {
        let rows: Vec<OutboxRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(
                "select id, topic, version, payload, created_at from outbox_messages \
                 where published_at is null order by id limit $1",
            )
            .bind(self.batch)
            .fetch_all(pool)
            .await
        })?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut envelopes = Vec::with_capacity(rows.len());
        for row in rows {
            envelopes.push(Envelope {
                id: row.id,
                topic: row.topic,
                version: row.version,
                payload: serde_json::from_str(&row.payload)?,
                occurred_at: row.created_at,
            });
        }
        self.transport.publish(&envelopes).await?;
        let ids: Vec<Uuid> = envelopes.iter().map(|e| e.id).collect();
        let now = self.clock.now();
        let count = ids.len();
        kernel::write_tx!(&self.db, |conn| {
            for id in &ids {
                sqlx::query("update outbox_messages set published_at = $2 where id = $1")
                    .bind(id)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok::<(), sqlx::Error>(())
        })?;
        Ok(count)
    }

    /// Relays until `stop` resolves: at once when woken, else every `poll`.
    pub async fn run(&self, poll: Duration, stop: impl std::future::Future<Output = ()>) {
        crate::work_loop("outbox relay", poll, &self.wake, stop, || self.run_once()).await;
    }
}
