//! The message bus. A module announces a change by writing a message to its
//! outbox in the same transaction as the change ([`enqueue!`]); the
//! [`Relay`] hands unpublished messages to a [`Transport`]; the transport
//! puts one delivery per subscriber into the consumer's inbox; the
//! [`Dispatcher`] runs each subscriber's [`Handler`] with retries and
//! exponential backoff, and moves a delivery that keeps failing to the dead
//! letters, from where staff can replay it.
//!
//! Delivery is at least once: a message can be published twice (a crash
//! between publishing and marking it published), and the inbox's unique key
//! turns that into one delivery. A handler can still run twice for one
//! delivery (a crash after its work but before the delivery is marked done),
//! so handlers are idempotent by their own business keys. Messages are
//! versioned JSON, listed in `docs/messages.md`.
#![forbid(unsafe_code)]

pub mod http;
pub mod inbox;
pub mod message;
pub mod outbox;
pub mod rabbitmq;
pub mod transport;

pub use inbox::{DeadLetter, Dispatcher, Handler, HandlerError, RetryPolicy, dead_letter_counts};
pub use message::{Envelope, Message};
pub use outbox::Relay;
pub use rabbitmq::{RabbitMqConsumer, RabbitMqOptions, RabbitMqTransport};
pub use transport::{InProcessTransport, Transport};

/// The bus tables (outbox and inbox); every database with producers or
/// consumers gets them.
#[must_use]
pub fn migrations() -> kernel::db::Migrations {
    kernel::db::Migrations {
        sqlite: sqlx::migrate!("./migrations/sqlite"),
        postgres: sqlx::migrate!("./migrations/postgres"),
    }
}

/// What the bus has yet to do: messages the relay has not published, and
/// deliveries no subscriber has finished (retries waiting included, dead
/// letters not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    pub unpublished: u64,
    pub pending: u64,
}

/// Reads the bus's backlog (for `/metrics`, and for a load test waiting for
/// a quiet server).
pub async fn backlog(db: &kernel::Db) -> Result<Backlog, sqlx::Error> {
    let (unpublished, pending): (i64, i64) = kernel::read!(db, |pool| {
        sqlx::query_as(
            "select (select count(*) from outbox_messages where published_at is null), \
                    (select count(*) from inbox_deliveries where state = 'PENDING')",
        )
        .fetch_one(pool)
        .await
    })?;
    Ok(Backlog {
        unpublished: kernel::db::stored_count("unpublished messages", unpublished)?.into(),
        pending: kernel::db::stored_count("pending deliveries", pending)?.into(),
    })
}

/// When the oldest message the relay has not yet published was committed:
/// the relay's lag, for `/metrics`.
pub async fn oldest_unpublished(db: &kernel::Db) -> Result<Option<kernel::Timestamp>, sqlx::Error> {
    let oldest: Option<(kernel::Timestamp,)> = kernel::read!(db, |pool| {
        sqlx::query_as(
            "select created_at from outbox_messages where published_at is null \
             order by id limit 1",
        )
        .fetch_optional(pool)
        .await
    })?;
    Ok(oldest.map(|(at,)| at))
}

/// Runs `work` until `stop` resolves: again at once while it finds work,
/// else when woken or after `poll`. A failure is logged and retried.
async fn work_loop<F, Fut>(
    name: &'static str,
    poll: std::time::Duration,
    wake: &tokio::sync::Notify,
    stop: impl std::future::Future<Output = ()>,
    work: F,
) where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<usize, BusError>>,
{
    tokio::pin!(stop);
    loop {
        let found_work = match work().await {
            Ok(n) => n > 0,
            Err(e) => {
                tracing::warn!(error = %e, "{name} failed; retrying");
                false
            }
        };
        // Stop wins even while work keeps coming.
        tokio::select! {
            biased;
            () = &mut stop => return,
            () = std::future::ready(()), if found_work => {}
            () = wake.notified(), if !found_work => {}
            () = tokio::time::sleep(poll), if !found_work => {}
        }
    }
}

/// Why the bus could not do something.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("message payload: {0}")]
    Payload(#[from] serde_json::Error),
    #[error("transport: {0}")]
    Transport(String),
}
