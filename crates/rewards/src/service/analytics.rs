//! Aggregates for readers: events, reward requests and users.

use kernel::auth::Reader;
use kernel::{Period, PeriodQuery};
use serde::Serialize;
use utoipa::ToSchema;

use super::RewardsService;
use crate::error::RewardsError;
use crate::store::{DayCount, EventActivity, StatusCount};

/// Events listed with their rewards and requests, most recent first.
const EVENTS_LISTED: i64 = 100;

/// `GET /analytics/events`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventAnalytics {
    /// Events per status (running in the period, with `from`).
    pub by_status: Vec<StatusCount>,
    /// The 100 most recent events with their rewards and requests per status.
    pub events: Vec<EventActivity>,
}

/// `GET /analytics/rewards`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RewardAnalytics {
    /// Reward requests per status (made in the period, with `from`).
    pub requests_by_status: Vec<StatusCount>,
    /// Requests per UTC day in the period.
    pub requests_per_day: Vec<DayCount>,
}

/// `GET /analytics/users`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserAnalytics {
    /// Users known to rewards (from sign-ups; with `from`, those signed up
    /// before the period's end).
    pub users: i64,
    /// Of them, those with at least one reward request (in the period, with
    /// `from`).
    pub participants: i64,
    /// `participants / users` (0 when there are no users).
    pub participation_rate: f64,
    /// Sign-ups per UTC day in the period.
    pub new_users_per_day: Vec<DayCount>,
    /// Distinct users logging in per UTC day in the period.
    pub active_users_per_day: Vec<DayCount>,
}

impl RewardsService {
    pub async fn event_analytics(
        &self,
        _: &Reader,
        query: &PeriodQuery,
    ) -> Result<EventAnalytics, RewardsError> {
        let totals = self.period(query)?.of_totals();
        Ok(EventAnalytics {
            by_status: self.store.event_statuses(totals).await?,
            events: self.store.event_activity(totals, EVENTS_LISTED).await?,
        })
    }

    pub async fn reward_analytics(
        &self,
        _: &Reader,
        query: &PeriodQuery,
    ) -> Result<RewardAnalytics, RewardsError> {
        let period = self.period(query)?;
        Ok(RewardAnalytics {
            requests_by_status: self.store.request_statuses(period.of_totals()).await?,
            requests_per_day: self.store.requests_per_day(period).await?,
        })
    }

    pub async fn user_analytics(
        &self,
        _: &Reader,
        query: &PeriodQuery,
    ) -> Result<UserAnalytics, RewardsError> {
        let period = self.period(query)?;
        let (users, participants) = self.store.participation(period.of_totals()).await?;
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        let participation_rate = if users > 0 {
            participants as f64 / users as f64
        } else {
            0.0
        };
        Ok(UserAnalytics {
            users,
            participants,
            participation_rate,
            new_users_per_day: self.store.sign_ups_per_day(period).await?,
            active_users_per_day: self.store.active_users_per_day(period).await?,
        })
    }

    fn period(&self, query: &PeriodQuery) -> Result<Period, RewardsError> {
        query
            .period(self.clock.now())
            .map_err(|e| RewardsError::Invalid(vec![e]))
    }
}
