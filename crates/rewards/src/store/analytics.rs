//! Read-only aggregates for the analytics endpoints, from rewards' own tables
//! (users are known from identity's sign-up and login messages).

use async_trait::async_trait;
use kernel::db::Backend;
use kernel::{Bucket, Period};
use serde::Serialize;
use sqlx::AssertSqlSafe;
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

/// The SQL counting `table`'s rows per UTC day of `column` in `[$1, $2)`.
fn per_day(backend: Backend, table: &str, column: &str) -> String {
    let day = Bucket::Day.key_sql(backend, column);
    format!(
        "select {day} as day, count(*) as count from {table} \
         where {column} >= $1 and {column} < $2 group by 1 order by 1"
    )
}

#[async_trait]
pub trait AnalyticsStore: Send + Sync {
    /// Events running in the period, per status.
    async fn event_statuses(&self, period: Period) -> Result<Vec<StatusCount>, sqlx::Error>;
    /// The most recent events (by id) running in the period, at most
    /// `limit`, with their requests made in it.
    async fn event_activity(
        &self,
        period: Period,
        limit: i64,
    ) -> Result<Vec<EventActivity>, sqlx::Error>;
    /// Requests made in the period, per status.
    async fn request_statuses(&self, period: Period) -> Result<Vec<StatusCount>, sqlx::Error>;
    async fn requests_per_day(&self, period: Period) -> Result<Vec<DayCount>, sqlx::Error>;
    /// Users signed up before the period's end, and those of them with at
    /// least one request made in it.
    async fn participation(&self, period: Period) -> Result<(i64, i64), sqlx::Error>;
    async fn sign_ups_per_day(&self, period: Period) -> Result<Vec<DayCount>, sqlx::Error>;
    /// Distinct users who logged in, per UTC day.
    async fn active_users_per_day(&self, period: Period) -> Result<Vec<DayCount>, sqlx::Error>;
}

#[async_trait]
impl AnalyticsStore for SqlRewardsStore {
    async fn event_statuses(&self, period: Period) -> Result<Vec<StatusCount>, sqlx::Error> {
        kernel::read!(&self.db, |pool| {
            sqlx::query_as(
                "select status, count(*) as count from events \
                 where starts_at < $2 and ends_at >= $1 group by status order by status",
            )
            .bind(period.from)
            .bind(period.to)
            .fetch_all(pool)
            .await
        })
    }

    async fn event_activity(
        &self,
        period: Period,
        limit: i64,
    ) -> Result<Vec<EventActivity>, sqlx::Error> {
        kernel::read!(&self.db, |pool| {
            sqlx::query_as(
                "select e.id as event_id, e.name, e.status, \
                 (select count(*) from event_rewards er where er.event_id = e.id) as rewards, \
                 count(r.id) as requests, \
                 count(case when r.status = 'APPROVED' then 1 end) as approved, \
                 count(case when r.status = 'PENDING' then 1 end) as pending, \
                 count(case when r.status = 'REJECTED' then 1 end) as rejected \
                 from (select id, name, status from events \
                    where starts_at < $2 and ends_at >= $1 order by id desc limit $3) e \
                 left join reward_requests r on r.event_id = e.id \
                    and r.created_at >= $1 and r.created_at < $2 \
                 group by e.id, e.name, e.status order by e.id desc",
            )
            .bind(period.from)
            .bind(period.to)
            .bind(limit)
            .fetch_all(pool)
            .await
        })
    }

    async fn request_statuses(&self, period: Period) -> Result<Vec<StatusCount>, sqlx::Error> {
        kernel::read!(&self.db, |pool| {
            sqlx::query_as(
                "select status, count(*) as count from reward_requests \
                 where created_at >= $1 and created_at < $2 \
                 group by status order by status",
            )
            .bind(period.from)
            .bind(period.to)
            .fetch_all(pool)
            .await
        })
    }

    async fn requests_per_day(&self, period: Period) -> Result<Vec<DayCount>, sqlx::Error> {
        let sql = per_day(self.db.backend(), "reward_requests", "created_at");
        kernel::read!(&self.db, |pool| {
            sqlx::query_as(AssertSqlSafe(sql.clone()))
                .bind(period.from)
                .bind(period.to)
                .fetch_all(pool)
                .await
        })
    }

    async fn participation(&self, period: Period) -> Result<(i64, i64), sqlx::Error> {
        kernel::read!(&self.db, |pool| {
            sqlx::query_as(
                "select (select count(*) from sign_ups where signed_up_at < $2), \
                 (select count(distinct r.user_id) from reward_requests r \
                    join sign_ups s on s.user_id = r.user_id and s.signed_up_at < $2 \
                    where r.created_at >= $1 and r.created_at < $2)",
            )
            .bind(period.from)
            .bind(period.to)
            .fetch_one(pool)
            .await
        })
    }

    async fn sign_ups_per_day(&self, period: Period) -> Result<Vec<DayCount>, sqlx::Error> {
        let sql = per_day(self.db.backend(), "sign_ups", "signed_up_at");
        kernel::read!(&self.db, |pool| {
            sqlx::query_as(AssertSqlSafe(sql.clone()))
                .bind(period.from)
                .bind(period.to)
                .fetch_all(pool)
                .await
        })
    }

    async fn active_users_per_day(&self, period: Period) -> Result<Vec<DayCount>, sqlx::Error> {
        let (first, last) = period.days();
        let sql = if self.db.backend() == Backend::Postgres {
            "select to_char(day, 'YYYY-MM-DD') as day, count(*) as count from login_days \
             where day >= $1 and day <= $2 group by day order by day"
        } else {
            "select day, count(*) as count from login_days where day >= $1 and day <= $2 \
             group by day order by day"
        };
        kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql)
                .bind(first)
                .bind(last)
                .fetch_all(pool)
                .await
        })
    }
}
