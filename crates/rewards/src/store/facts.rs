//! The facts conditions read: login days and sign-ups (from identity's
//! messages) and custom activity (from `POST /activity`).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;

use async_trait::async_trait;
use kernel::{Timestamp, UserId};
use time::Date;

use super::SqlRewardsStore;
use crate::model::{Activity, Facts};

/// What to fetch for one user; `None` / empty skips that fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactQuery {
    pub user: UserId,
    /// UTC days to look for logins in.
    pub login_window: Option<RangeInclusive<Date>>,
    /// Count sign-ups with the user's referral code in `[from, to]`.
    pub invites_between: Option<(Timestamp, Timestamp)>,
    /// Sum these metrics over `[from, to)`.
    pub metrics: Vec<String>,
    pub metric_period: (Timestamp, Timestamp),
}

#[async_trait]
pub trait FactStore: Send + Sync {
    /// Idempotent: a day is recorded once.
    async fn record_login(&self, user: UserId, day: Date) -> Result<(), sqlx::Error>;
    /// Idempotent: a user signs up once.
    async fn record_sign_up(
        &self,
        user: UserId,
        referred_by: Option<UserId>,
        at: Timestamp,
    ) -> Result<(), sqlx::Error>;
    /// `false` when an activity with the same `source_id` was already recorded.
    async fn record_activity(
        &self,
        activity: &Activity,
        recorded_at: Timestamp,
    ) -> Result<bool, sqlx::Error>;
    async fn facts(&self, query: &FactQuery) -> Result<Facts, sqlx::Error>;
}

#[async_trait]
impl FactStore for SqlRewardsStore {
    async fn record_login(&self, user: UserId, day: Date) -> Result<(), sqlx::Error> {
        kernel::write_tx!(&self.db, |conn| {
            sqlx::query(
                "insert into login_days (user_id, day) values ($1, $2) \
                 on conflict (user_id, day) do nothing",
            )
            .bind(user)
            .bind(day)
            .execute(&mut *conn)
            .await
            .map(drop)
        })
    }

    async fn record_sign_up(
        &self,
        user: UserId,
        referred_by: Option<UserId>,
        at: Timestamp,
    ) -> Result<(), sqlx::Error> {
        kernel::write_tx!(&self.db, |conn| {
            sqlx::query(
                "insert into sign_ups (user_id, referred_by, signed_up_at) values ($1, $2, $3) \
                 on conflict (user_id) do nothing",
            )
            .bind(user)
            .bind(referred_by)
            .bind(at)
            .execute(&mut *conn)
            .await
            .map(drop)
        })
    }

    async fn record_activity(
        &self,
        activity: &Activity,
        recorded_at: Timestamp,
    ) -> Result<bool, sqlx::Error> {
        let activity = activity.clone();
        kernel::write_tx!(&self.db, |conn| {
            let done = sqlx::query(
                "insert into activities (id, user_id, metric, value, occurred_at, source_id, \
                 recorded_at) values ($1, $2, $3, $4, $5, $6, $7) \
                 on conflict (source_id) do nothing",
            )
            .bind(uuid::Uuid::now_v7())
            .bind(activity.user_id)
            .bind(&activity.metric)
            .bind(activity.value)
            .bind(activity.occurred_at)
            .bind(activity.source_id.as_deref())
            .bind(recorded_at)
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    async fn facts(&self, query: &FactQuery) -> Result<Facts, sqlx::Error> {
        kernel::read!(&self.db, |pool| {
            let mut facts = Facts::default();
            if let Some(window) = &query.login_window {
                let days: Vec<Date> = sqlx::query_scalar(
                    "select day from login_days where user_id = $1 and day >= $2 and day <= $3",
                )
                .bind(query.user)
                .bind(*window.start())
                .bind(*window.end())
                .fetch_all(pool)
                .await?;
                facts.login_days = days.into_iter().collect::<BTreeSet<_>>();
            }
            if let Some((from, to)) = query.invites_between {
                let invites: i64 = sqlx::query_scalar(
                    "select count(*) from sign_ups where referred_by = $1 \
                     and signed_up_at >= $2 and signed_up_at <= $3",
                )
                .bind(query.user)
                .bind(from)
                .bind(to)
                .fetch_one(pool)
                .await?;
                facts.invites = u64::try_from(invites).unwrap_or(0);
            }
            let mut sums = BTreeMap::new();
            for metric in &query.metrics {
                let sum: Option<f64> = sqlx::query_scalar(
                    "select sum(value) from activities where user_id = $1 and metric = $2 \
                     and occurred_at >= $3 and occurred_at < $4",
                )
                .bind(query.user)
                .bind(metric)
                .bind(query.metric_period.0)
                .bind(query.metric_period.1)
                .fetch_one(pool)
                .await?;
                sums.insert(metric.clone(), sum.unwrap_or(0.0));
            }
            facts.metric_sums = sums;
            Ok(facts)
        })
    }
}
