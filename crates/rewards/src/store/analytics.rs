//! Read-only aggregates for the analytics endpoints, from rewards' own tables
//! (users are known from identity's sign-up and login messages).

use async_trait::async_trait;
use kernel::Timestamp;
use kernel::db::Backend;
use serde::Serialize;
use utoipa::ToSchema;

use super::SqlRewardsStore;
use crate::model::EventId;

/// How many rows have one status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct StatusCount {
    pub status: String,
    pub count: i64,
}

/// How many on one UTC day (`YYYY-MM-DD`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct DayCount {
    pub day: String,
    pub count: i64,
}

/// One event's rewards and requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct EventActivity {
    pub event_id: EventId,
    pub name: String,
    pub status: String,
    pub rewards: i64,
    pub requests: i64,
    pub approved: i64,
    pub pending: i64,
    pub rejected: i64,
}

/// The SQL that turns a timestamp column into its UTC day, per backend.
macro_rules! per_day {
    ($backend:expr, $table:literal, $column:literal) => {
        if $backend == Backend::Postgres {
            concat!(
                "select to_char(",
                $column,
                " at time zone 'UTC', 'YYYY-MM-DD') as day, count(*) as count from ",
                $table,
                " where ",
                $column,
                " >= $1 group by 1 order by 1"
            )
        } else {
            concat!(
                "select substr(",
                $column,
                ", 1, 10) as day, count(*) as count from ",
                $table,
                " where ",
                $column,
                " >= $1 group by 1 order by 1"
            )
        }
    };
}

#[async_trait]
pub trait AnalyticsStore: Send + Sync {
    async fn event_statuses(&self) -> Result<Vec<StatusCount>, sqlx::Error>;
    /// The most recent events (by id), at most `limit`.
    async fn event_activity(&self, limit: i64) -> Result<Vec<EventActivity>, sqlx::Error>;
    async fn request_statuses(&self) -> Result<Vec<StatusCount>, sqlx::Error>;
    async fn requests_per_day(&self, since: Timestamp) -> Result<Vec<DayCount>, sqlx::Error>;
    /// Users known from sign-ups, and those of them with at least one request.
    async fn participation(&self) -> Result<(i64, i64), sqlx::Error>;
    async fn sign_ups_per_day(&self, since: Timestamp) -> Result<Vec<DayCount>, sqlx::Error>;
    /// Distinct users who logged in, per UTC day.
    async fn active_users_per_day(&self, since: Timestamp) -> Result<Vec<DayCount>, sqlx::Error>;
}

#[async_trait]
impl AnalyticsStore for SqlRewardsStore {
    async fn event_statuses(&self) -> Result<Vec<StatusCount>, sqlx::Error> {
        kernel::read!(&self.db, |pool| {
            sqlx::query_as(
                "select status, count(*) as count from events group by status order by status",
            )
            .fetch_all(pool)
            .await
        })
    }

    async fn event_activity(&self, limit: i64) -> Result<Vec<EventActivity>, sqlx::Error> {
        kernel::read!(&self.db, |pool| {
            sqlx::query_as(
                "select e.id as event_id, e.name, e.status, \
                 (select count(*) from event_rewards er where er.event_id = e.id) as rewards, \
                 (select count(*) from reward_requests r where r.event_id = e.id) as requests, \
                 (select count(*) from reward_requests r where r.event_id = e.id \
                    and r.status = 'APPROVED') as approved, \
                 (select count(*) from reward_requests r where r.event_id = e.id \
                    and r.status = 'PENDING') as pending, \
                 (select count(*) from reward_requests r where r.event_id = e.id \
                    and r.status = 'REJECTED') as rejected \
                 from events e order by e.id desc limit $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await
        })
    }

    async fn request_statuses(&self) -> Result<Vec<StatusCount>, sqlx::Error> {
        kernel::read!(&self.db, |pool| {
            sqlx::query_as(
                "select status, count(*) as count from reward_requests \
                 group by status order by status",
            )
            .fetch_all(pool)
            .await
        })
    }

    async fn requests_per_day(&self, since: Timestamp) -> Result<Vec<DayCount>, sqlx::Error> {
        let sql = per_day!(self.db.backend(), "reward_requests", "created_at");
        kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql).bind(since).fetch_all(pool).await
        })
    }

    async fn participation(&self) -> Result<(i64, i64), sqlx::Error> {
        kernel::read!(&self.db, |pool| {
            sqlx::query_as(
                "select (select count(*) from sign_ups), \
                 (select count(distinct r.user_id) from reward_requests r \
                    join sign_ups s on s.user_id = r.user_id)",
            )
            .fetch_one(pool)
            .await
        })
    }

    async fn sign_ups_per_day(&self, since: Timestamp) -> Result<Vec<DayCount>, sqlx::Error> {
        let sql = per_day!(self.db.backend(), "sign_ups", "signed_up_at");
        kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql).bind(since).fetch_all(pool).await
        })
    }

    async fn active_users_per_day(&self, since: Timestamp) -> Result<Vec<DayCount>, sqlx::Error> {
        let since = since.as_datetime().date();
        let sql = if self.db.backend() == Backend::Postgres {
            "select to_char(day, 'YYYY-MM-DD') as day, count(*) as count from login_days \
             where day >= $1 group by day order by day"
        } else {
            "select day, count(*) as count from login_days where day >= $1 \
             group by day order by day"
        };
        kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql).bind(since).fetch_all(pool).await
        })
    }
}
