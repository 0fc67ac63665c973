//! The webhook tables behind a trait shaped like the use cases; one SQL
//! implementation for SQLite and PostgreSQL (`kernel::write_tx!`,
//! `kernel::read!`), every value a bound parameter.

use async_trait::async_trait;
use kernel::db::{Db, bad_row, stored_count};
use kernel::{PageRequest, Timestamp};

use crate::model::{
    Attempt, AttemptId, DueMessage, Endpoint, EndpointId, MessageId, MessageState, NewMessage,
    SigningSecret, webhook_id,
};

/// What became of an attempt, for the message and its endpoint.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub attempt: Attempt,
    pub state: MessageState,
    /// Required when `state` is `Pending`.
    pub next_attempt_at: Option<Timestamp>,
    /// A `410 Gone`: the endpoint receives nothing more.
    pub disable_endpoint: bool,
}

#[async_trait]
pub trait WebhookStore: Send + Sync {
    async fn insert_endpoint(&self, endpoint: &Endpoint) -> Result<(), sqlx::Error>;
    async fn endpoint(&self, id: EndpointId) -> Result<Option<Endpoint>, sqlx::Error>;
    /// Endpoints in id order.
    async fn list_endpoints(&self, page: PageRequest) -> Result<Vec<Endpoint>, sqlx::Error>;
    /// Every endpoint not disabled.
    async fn enabled_endpoints(&self) -> Result<Vec<Endpoint>, sqlx::Error>;
    /// Writes the endpoint's fields; `false` if it does not exist.
    async fn update_endpoint(&self, endpoint: &Endpoint) -> Result<bool, sqlx::Error>;
    /// Removes the endpoint with its messages and their log; `false` if it
    /// does not exist.
    async fn delete_endpoint(&self, id: EndpointId) -> Result<bool, sqlx::Error>;
    /// Queues messages, due at once; one already queued for the same
    /// endpoint and source is left alone. Returns how many were new.
    async fn enqueue(&self, messages: Vec<NewMessage>) -> Result<u64, sqlx::Error>;
    /// Pending messages due by `now` of enabled endpoints, oldest due first.
    async fn due(&self, now: Timestamp, limit: i64) -> Result<Vec<DueMessage>, sqlx::Error>;
    /// Takes a due message for one attempt by moving its next attempt to
    /// `until` (a lease: a process that dies mid-attempt leaves it to be
    /// tried again then). `false` if another worker took it first.
    async fn claim(
        &self,
        id: MessageId,
        seen: Timestamp,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, sqlx::Error>;
    /// Logs an attempt and moves its message (and endpoint) on, together.
    async fn record(&self, result: AttemptResult, now: Timestamp) -> Result<(), sqlx::Error>;
    /// An endpoint's attempts in id order.
    async fn attempts(
        &self,
        endpoint: EndpointId,
        page: PageRequest,
    ) -> Result<Vec<Attempt>, sqlx::Error>;
    async fn attempt(&self, id: AttemptId) -> Result<Option<Attempt>, sqlx::Error>;
    /// Queues a message again, due now with a fresh retry window and the
    /// same `webhook-id`; `false` if it does not exist.
    async fn replay(&self, id: MessageId, now: Timestamp) -> Result<bool, sqlx::Error>;
}

#[derive(Debug, Clone)]
pub struct SqlWebhookStore {
    db: Db,
}

impl SqlWebhookStore {
    #[must_use]
    pub const fn new(db: Db) -> Self {
        Self { db }
    }
}

macro_rules! endpoint_columns {
    () => {
        "e.id, e.url, e.event_types, e.description, e.disabled, e.secret, e.previous_secret, \
         e.previous_secret_expires_at, e.created_at, e.updated_at"
    };
}

macro_rules! attempt_columns {
    () => {
        "a.id, a.message_id, a.endpoint_id, a.event_type, a.attempt, a.status_code, \
         a.duration_ms, a.error, a.response_excerpt, a.attempted_at, a.next_retry_at, a.gave_up"
    };
}

#[derive(sqlx::FromRow)]
struct EndpointRow {
    id: EndpointId,
    url: String,
    event_types: String,
    description: Option<String>,
    disabled: bool,
    secret: String,
    previous_secret: Option<String>,
    previous_secret_expires_at: Option<Timestamp>,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl TryFrom<EndpointRow> for Endpoint {
    type Error = sqlx::Error;
    fn try_from(row: EndpointRow) -> Result<Self, Self::Error> {
        let event_types: Vec<String> =
            serde_json::from_str(&row.event_types).map_err(|e| bad_row("event_types", e))?;
        let secret = SigningSecret::parse(row.secret).map_err(|e| bad_row("secret", e))?;
        let previous_secret = match (row.previous_secret, row.previous_secret_expires_at) {
            (Some(s), Some(until)) => Some((
                SigningSecret::parse(s).map_err(|e| bad_row("previous_secret", e))?,
                until,
            )),
            _ => None,
        };
        Ok(Self {
            id: row.id,
            url: row.url,
            event_types,
            description: row.description,
            disabled: row.disabled,
            secret,
            previous_secret,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct DueRow {
    message_id: MessageId,
    event_type: String,
    body: String,
    attempts: i64,
    window_started_at: Timestamp,
    next_attempt_at: Timestamp,
    #[sqlx(flatten)]
    endpoint: EndpointRow,
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    id: AttemptId,
    message_id: MessageId,
    endpoint_id: EndpointId,
    event_type: String,
    attempt: i64,
    status_code: Option<i64>,
    duration_ms: i64,
    error: Option<String>,
    response_excerpt: Option<String>,
    attempted_at: Timestamp,
    next_retry_at: Option<Timestamp>,
    gave_up: bool,
}

impl TryFrom<AttemptRow> for Attempt {
    type Error = sqlx::Error;
    fn try_from(row: AttemptRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.id,
            webhook_id: webhook_id(row.message_id),
            message_id: row.message_id,
            endpoint_id: row.endpoint_id,
            event_type: row.event_type,
            attempt: stored_count("attempt", row.attempt)?,
            status_code: row
                .status_code
                .map(|c| u16::try_from(c).map_err(|e| bad_row("status_code", e)))
                .transpose()?,
            duration_ms: u64::try_from(row.duration_ms).map_err(|e| bad_row("duration_ms", e))?,
            error: row.error,
            response_excerpt: row.response_excerpt,
            attempted_at: row.attempted_at,
            next_retry_at: row.next_retry_at,
            gave_up: row.gave_up,
        })
    }
}

fn event_types_column(endpoint: &Endpoint) -> Result<String, sqlx::Error> {
    serde_json::to_string(&endpoint.event_types).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

#[async_trait]
impl WebhookStore for SqlWebhookStore {
    async fn insert_endpoint(&self, endpoint: &Endpoint) -> Result<(), sqlx::Error> {
        let e = endpoint.clone();
        let types = event_types_column(&e)?;
        kernel::write_tx!(&self.db, |conn| {
            sqlx::query(
                "insert into webhook_endpoints (id, url, event_types, description, disabled, \
                 secret, previous_secret, previous_secret_expires_at, created_at, updated_at) \
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(e.id)
            .bind(&e.url)
            .bind(&types)
            .bind(&e.description)
            .bind(e.disabled)
            .bind(e.secret.expose())
            .bind(
                e.previous_secret
                    .as_ref()
                    .map(|(s, _)| s.expose().to_owned()),
            )
            .bind(e.previous_secret.as_ref().map(|(_, until)| *until))
            .bind(e.created_at)
            .bind(e.updated_at)
            .execute(&mut *conn)
            .await?;
            Ok::<(), sqlx::Error>(())
        })
    }

    async fn endpoint(&self, id: EndpointId) -> Result<Option<Endpoint>, sqlx::Error> {
        let sql = concat!(
            "select ",
            endpoint_columns!(),
            " from webhook_endpoints e where e.id = $1"
        );
        let row: Option<EndpointRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql).bind(id).fetch_optional(pool).await
        })?;
        row.map(Endpoint::try_from).transpose()
    }

    async fn list_endpoints(&self, page: PageRequest) -> Result<Vec<Endpoint>, sqlx::Error> {
        let sql = concat!(
            "select ",
            endpoint_columns!(),
            " from webhook_endpoints e where ($1 is null or e.id > $1) order by e.id limit $2"
        );
        let rows: Vec<EndpointRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql)
                .bind(page.after.map(EndpointId))
                .bind(page.fetch_limit())
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter().map(Endpoint::try_from).collect()
    }

    async fn enabled_endpoints(&self) -> Result<Vec<Endpoint>, sqlx::Error> {
        let sql = concat!(
            "select ",
            endpoint_columns!(),
            " from webhook_endpoints e where e.disabled = $1 order by e.id"
        );
        let rows: Vec<EndpointRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql).bind(false).fetch_all(pool).await
        })?;
        rows.into_iter().map(Endpoint::try_from).collect()
    }

    async fn update_endpoint(&self, endpoint: &Endpoint) -> Result<bool, sqlx::Error> {
        let e = endpoint.clone();
        let types = event_types_column(&e)?;
        kernel::write_tx!(&self.db, |conn| {
            let done = sqlx::query(
                "update webhook_endpoints set url = $1, event_types = $2, description = $3, \
                 disabled = $4, secret = $5, previous_secret = $6, \
                 previous_secret_expires_at = $7, updated_at = $8 where id = $9",
            )
            .bind(&e.url)
            .bind(&types)
            .bind(&e.description)
            .bind(e.disabled)
            .bind(e.secret.expose())
            .bind(
                e.previous_secret
                    .as_ref()
                    .map(|(s, _)| s.expose().to_owned()),
            )
            .bind(e.previous_secret.as_ref().map(|(_, until)| *until))
            .bind(e.updated_at)
            .bind(e.id)
            .execute(&mut *conn)
            .await?;
            Ok::<bool, sqlx::Error>(done.rows_affected() == 1)
        })
    }

    async fn delete_endpoint(&self, id: EndpointId) -> Result<bool, sqlx::Error> {
        kernel::write_tx!(&self.db, |conn| {
            sqlx::query("delete from webhook_attempts where endpoint_id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
            sqlx::query("delete from webhook_messages where endpoint_id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
            let done = sqlx::query("delete from webhook_endpoints where id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
            Ok::<bool, sqlx::Error>(done.rows_affected() == 1)
        })
    }

    async fn enqueue(&self, messages: Vec<NewMessage>) -> Result<u64, sqlx::Error> {
        if messages.is_empty() {
            return Ok(0);
        }
        kernel::write_tx!(&self.db, |conn| {
            let mut new = 0;
            for m in &messages {
                let done = sqlx::query(
                    "insert into webhook_messages (id, endpoint_id, source_id, event_type, body, \
                     state, attempts, window_started_at, next_attempt_at, created_at, updated_at) \
                     values ($1, $2, $3, $4, $5, $6, 0, $7, $7, $7, $7) \
                     on conflict (endpoint_id, source_id) do nothing",
                )
                .bind(m.id)
                .bind(m.endpoint_id)
                .bind(m.source_id)
                .bind(&m.event_type)
                .bind(&m.body)
                .bind(MessageState::Pending.as_str())
                .bind(m.created_at)
                .execute(&mut *conn)
                .await?;
                new += done.rows_affected();
            }
            Ok::<u64, sqlx::Error>(new)
        })
    }

    async fn due(&self, now: Timestamp, limit: i64) -> Result<Vec<DueMessage>, sqlx::Error> {
        let sql = concat!(
            "select m.id as message_id, m.event_type, m.body, m.attempts, m.window_started_at, \
             m.next_attempt_at, ",
            endpoint_columns!(),
            " from webhook_messages m join webhook_endpoints e on e.id = m.endpoint_id \
             where m.state = $1 and m.next_attempt_at <= $2 and e.disabled = $3 \
             order by m.next_attempt_at limit $4"
        );
        let rows: Vec<DueRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql)
                .bind(MessageState::Pending.as_str())
                .bind(now)
                .bind(false)
                .bind(limit)
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter()
            .map(|row| {
                Ok(DueMessage {
                    id: row.message_id,
                    event_type: row.event_type,
                    body: row.body,
                    attempts: stored_count("attempts", row.attempts)?,
                    window_started_at: row.window_started_at,
                    next_attempt_at: row.next_attempt_at,
                    endpoint: Endpoint::try_from(row.endpoint)?,
                })
            })
            .collect()
    }

    async fn claim(
        &self,
        id: MessageId,
        seen: Timestamp,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, sqlx::Error> {
        kernel::write_tx!(&self.db, |conn| {
            let done = sqlx::query(
                "update webhook_messages set next_attempt_at = $1, updated_at = $2 \
                 where id = $3 and state = $4 and next_attempt_at = $5",
            )
            .bind(until)
            .bind(now)
            .bind(id)
            .bind(MessageState::Pending.as_str())
            .bind(seen)
            .execute(&mut *conn)
            .await?;
            Ok::<bool, sqlx::Error>(done.rows_affected() == 1)
        })
    }

    async fn record(&self, result: AttemptResult, now: Timestamp) -> Result<(), sqlx::Error> {
        let AttemptResult {
            attempt: a,
            state,
            next_attempt_at,
            disable_endpoint,
        } = result;
        kernel::write_tx!(&self.db, |conn| {
            sqlx::query(
                "insert into webhook_attempts (id, message_id, endpoint_id, event_type, attempt, \
                 status_code, duration_ms, error, response_excerpt, attempted_at, next_retry_at, \
                 gave_up) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(a.id)
            .bind(a.message_id)
            .bind(a.endpoint_id)
            .bind(&a.event_type)
            .bind(i64::from(a.attempt))
            .bind(a.status_code.map(i64::from))
            .bind(i64::try_from(a.duration_ms).unwrap_or(i64::MAX))
            .bind(&a.error)
            .bind(&a.response_excerpt)
            .bind(a.attempted_at)
            .bind(a.next_retry_at)
            .bind(a.gave_up)
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "update webhook_messages set state = $1, attempts = $2, next_attempt_at = $3, \
                 updated_at = $4 where id = $5",
            )
            .bind(state.as_str())
            .bind(i64::from(a.attempt))
            .bind(next_attempt_at.unwrap_or(now))
            .bind(now)
            .bind(a.message_id)
            .execute(&mut *conn)
            .await?;
            if disable_endpoint {
                sqlx::query(
                    "update webhook_endpoints set disabled = $1, updated_at = $2 where id = $3",
                )
                .bind(true)
                .bind(now)
                .bind(a.endpoint_id)
                .execute(&mut *conn)
                .await?;
            }
            Ok::<(), sqlx::Error>(())
        })
    }

    async fn attempts(
        &self,
        endpoint: EndpointId,
        page: PageRequest,
    ) -> Result<Vec<Attempt>, sqlx::Error> {
        let sql = concat!(
            "select ",
            attempt_columns!(),
            " from webhook_attempts a where a.endpoint_id = $1 and ($2 is null or a.id > $2) \
             order by a.id limit $3"
        );
        let rows: Vec<AttemptRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql)
                .bind(endpoint)
                .bind(page.after.map(AttemptId))
                .bind(page.fetch_limit())
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter().map(Attempt::try_from).collect()
    }

    async fn attempt(&self, id: AttemptId) -> Result<Option<Attempt>, sqlx::Error> {
        let sql = concat!(
            "select ",
            attempt_columns!(),
            " from webhook_attempts a where a.id = $1"
        );
        let row: Option<AttemptRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql).bind(id).fetch_optional(pool).await
        })?;
        row.map(Attempt::try_from).transpose()
    }

    async fn replay(&self, id: MessageId, now: Timestamp) -> Result<bool, sqlx::Error> {
        kernel::write_tx!(&self.db, |conn| {
            let done = sqlx::query(
                "update webhook_messages set state = $1, window_started_at = $2, \
                 next_attempt_at = $2, updated_at = $2 where id = $3",
            )
            .bind(MessageState::Pending.as_str())
            .bind(now)
            .bind(id)
            .execute(&mut *conn)
            .await?;
            Ok::<bool, sqlx::Error>(done.rows_affected() == 1)
        })
    }
}
