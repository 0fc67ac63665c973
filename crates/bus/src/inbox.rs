//! The inbox: deliveries per subscriber, run with retries, exponential
//! backoff and a dead-letter state that staff can list and replay.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kernel::db::Db;
use kernel::{PageRequest, SharedClock, Timestamp};
use serde::Serialize;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::BusError;
use crate::message::Envelope;

/// A subscriber. Handlers must be idempotent by their own business keys: a
/// crash after the work but before the delivery is marked done runs it again.
#[async_trait]
pub trait Handler: Send + Sync {
    /// A stable name; part of the inbox key, so never rename a live one.
    fn name(&self) -> &'static str;
    fn topics(&self) -> &'static [&'static str];
    async fn handle(&self, message: &Envelope) -> Result<(), HandlerError>;
}

/// A handler's failure; the delivery is retried.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct HandlerError(pub String);

/// How failed deliveries are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts before a delivery becomes a dead letter.
    pub max_attempts: u32,
    /// Wait after the first failure; doubled after each further one.
    pub base: Duration,
    /// Longest wait between attempts.
    pub cap: Duration,
    /// How long one attempt may run before another process may take it over.
    pub lease: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(60),
            lease: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait after `attempts` failed attempts.
    #[must_use]
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1));
        self.base.saturating_mul(factor).min(self.cap)
    }
}

/// A delivery that exhausted its attempts.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct DeadLetter {
    pub id: Uuid,
    pub message_id: Uuid,
    pub subscriber: String,
    pub topic: String,
    pub version: i32,
    pub payload: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub occurred_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(sqlx::FromRow)]
struct Due {
    id: Uuid,
    message_id: Uuid,
    subscriber: String,
    topic: String,
    version: i32,
    payload: String,
    occurred_at: Timestamp,
    attempts: i32,
    next_attempt_at: Timestamp,
}

/// Writes one pending delivery per (message, subscriber) into the inbox of
/// `db`. A pair already there is left as it is (the inbox key): that is what
/// makes a message published twice, or taken by two consumers of one queue,
/// one delivery. Every transport writes through here.
pub(crate) async fn store_deliveries(
    db: &Db,
    now: Timestamp,
    deliveries: Vec<(Envelope, String)>,
) -> Result<(), BusError> {
    if deliveries.is_empty() {
        return Ok(());
    }
    kernel::write_tx!(db, |conn| {
        for (message, subscriber) in &deliveries {
            sqlx::query(
                "insert into inbox_deliveries (id, message_id, subscriber, topic, version, \
                 payload, occurred_at, state, attempts, next_attempt_at, updated_at) \
                 values ($1, $2, $3, $4, $5, $6, $7, 'PENDING', 0, $8, $8) \
                 on conflict (message_id, subscriber) do nothing",
            )
            .bind(Uuid::now_v7())
            .bind(message.id)
            .bind(subscriber)
            .bind(&message.topic)
            .bind(message.version)
            .bind(message.payload.to_string())
            .bind(message.occurred_at)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        }
        Ok::<(), sqlx::Error>(())
    })?;
    Ok(())
}

/// Runs due deliveries through their handlers.
pub struct Dispatcher {
    db: Db,
    clock: SharedClock,
    handlers: BTreeMap<&'static str, Arc<dyn Handler>>,
    policy: RetryPolicy,
    /// Woken when deliveries arrive.
    pub wake: Arc<Notify>,
}

impl Dispatcher {
    #[must_use]
    pub fn new(
        db: Db,
        clock: SharedClock,
        handlers: Vec<Arc<dyn Handler>>,
        policy: RetryPolicy,
    ) -> Self {
        Self {
            db,
            clock,
            handlers: handlers.into_iter().map(|h| (h.name(), h)).collect(),
            policy,
            wake: Arc::new(Notify::new()),
        }
    }

    /// (subscriber, topic) pairs, for a transport.
    #[must_use]
    pub fn subscriptions(&self) -> Vec<(String, String)> {
        self.handlers
            .values()
            .flat_map(|h| {
                h.topics()
                    .iter()
                    .map(|t| (h.name().to_owned(), (*t).to_owned()))
            })
            .collect()
    }

    /// Runs the deliveries that are due; returns how many were attempted.
    pub async fn run_once(&self) -> Result<usize, BusError> {
        let now = self.clock.now();
        let due: Vec<Due> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(
                "select id, message_id, subscriber, topic, version, payload, occurred_at, \
                 attempts, next_attempt_at from inbox_deliveries \
                 where state = 'PENDING' and next_attempt_at <= $1 \
                 order by next_attempt_at limit 100",
            )
            .bind(now)
            .fetch_all(pool)
            .await
        })?;
        let mut attempted = 0;
        for delivery in due {
            if self.claim(&delivery).await? {
                attempted += 1;
                self.attempt(delivery).await?;
            }
        }
        Ok(attempted)
    }

    /// Takes a lease on a delivery, so one process runs it at a time.
    async fn claim(&self, delivery: &Due) -> Result<bool, BusError> {
        let now = self.clock.now();
        let lease_until = now + self.policy.lease;
        let (id, seen) = (delivery.id, delivery.next_attempt_at);
        let claimed = kernel::write_tx!(&self.db, |conn| {
            sqlx::query(
                "update inbox_deliveries set next_attempt_at = $3, updated_at = $4 \
                 where id = $1 and state = 'PENDING' and next_attempt_at = $2",
            )
            .bind(id)
            .bind(seen)
            .bind(lease_until)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected() == 1)
        })?;
        Ok(claimed)
    }

    async fn attempt(&self, delivery: Due) -> Result<(), BusError> {
        let attempts = u32::try_from(delivery.attempts).unwrap_or(0) + 1;
        let outcome = match self.handlers.get(delivery.subscriber.as_str()) {
            None => Err(HandlerError(format!(
                "no handler named {}",
                delivery.subscriber
            ))),
            Some(handler) => {
                let envelope = Envelope {
                    id: delivery.message_id,
                    topic: delivery.topic.clone(),
                    version: delivery.version,
                    payload: serde_json::from_str(&delivery.payload)?,
                    occurred_at: delivery.occurred_at,
                };
                match tokio::time::timeout(self.policy.lease, handler.handle(&envelope)).await {
                    Ok(result) => result,
                    Err(_) => Err(HandlerError("the handler timed out".into())),
                }
            }
        };
        let now = self.clock.now();
        let id = delivery.id;
        let (state, next, error) = match outcome {
            Ok(()) => ("DONE", now, None),
            Err(e) if attempts >= self.policy.max_attempts => {
                tracing::error!(subscriber = %delivery.subscriber, topic = %delivery.topic,
                    message_id = %delivery.message_id, error = %e, "delivery failed for good; dead letter");
                ("DEAD", now, Some(e.0))
            }
            Err(e) => {
                tracing::warn!(subscriber = %delivery.subscriber, topic = %delivery.topic,
                    attempts, error = %e, "delivery failed; will retry");
                ("PENDING", now + self.policy.backoff(attempts), Some(e.0))
            }
        };
        let attempts = i32::try_from(attempts).unwrap_or(i32::MAX);
        kernel::write_tx!(&self.db, |conn| {
            sqlx::query(
                "update inbox_deliveries set state = $2, attempts = $3, next_attempt_at = $4, \
                 last_error = $5, updated_at = $6 where id = $1",
            )
            .bind(id)
            .bind(state)
            .bind(attempts)
            .bind(next)
            .bind(error)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map(drop)
        })?;
        Ok(())
    }

    /// Dispatches until `stop` resolves: at once when woken, else every `poll`.
    pub async fn run(&self, poll: Duration, stop: impl std::future::Future<Output = ()>) {
        crate::work_loop("dispatcher", poll, &self.wake, stop, || self.run_once()).await;
    }

    /// Dead letters, oldest first, keyset-paged by id.
    pub async fn dead_letters(&self, page: PageRequest) -> Result<Vec<DeadLetter>, BusError> {
        Ok(kernel::read!(&self.db, |pool| {
            sqlx::query_as(
                "select id, message_id, subscriber, topic, version, payload, attempts, last_error, \
                 occurred_at, updated_at from inbox_deliveries \
                 where state = 'DEAD' and ($1 is null or id > $1) order by id limit $2",
            )
            .bind(page.after)
            .bind(page.fetch_limit())
            .fetch_all(pool)
            .await
        })?)
    }

    /// Puts a dead letter back in line with fresh attempts; false if there
    /// is no dead letter with that id.
    pub async fn replay(&self, id: Uuid) -> Result<bool, BusError> {
        let now = self.clock.now();
        let replayed = kernel::write_tx!(&self.db, |conn| {
            sqlx::query(
                "update inbox_deliveries set state = 'PENDING', attempts = 0, \
                 next_attempt_at = $2, updated_at = $2 where id = $1 and state = 'DEAD'",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected() == 1)
        })?;
        if replayed {
            self.wake.notify_one();
        }
        Ok(replayed)
    }

    /// Gives up on a dead letter for good: it stays in the inbox as done
    /// (so the message, if it arrives again, is still a duplicate), with
    /// `discarded` before its last error. False if there is no dead letter
    /// with that id.
    pub async fn discard(&self, id: Uuid) -> Result<bool, BusError> {
        let now = self.clock.now();
        let discarded = kernel::write_tx!(&self.db, |conn| {
            sqlx::query(
                "update inbox_deliveries set state = 'DONE', \
                 last_error = 'discarded; last error: ' || coalesce(last_error, 'none'), \
                 updated_at = $2 where id = $1 and state = 'DEAD'",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected() == 1)
        })?;
        Ok(discarded)
    }
}

/// Dead letters per subscriber (subscribers without any are absent), for
/// `/metrics` and the operator alert.
pub async fn dead_letter_counts(db: &Db) -> Result<Vec<(String, u64)>, sqlx::Error> {
    let rows: Vec<(String, i64)> = kernel::read!(db, |pool| {
        sqlx::query_as(
            "select subscriber, count(*) from inbox_deliveries where state = 'DEAD' \
             group by subscriber order by subscriber",
        )
        .fetch_all(pool)
        .await
    })?;
    rows.into_iter()
        .map(|(subscriber, n)| {
            Ok((
                subscriber,
                kernel::db::stored_count("dead letters", n)?.into(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_cap() {
        let policy = RetryPolicy {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
            ..RetryPolicy::default()
        };
        let waits: Vec<u128> = (1..=6).map(|a| policy.backoff(a).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(policy.backoff(u32::MAX), Duration::from_secs(1));
    }
}
