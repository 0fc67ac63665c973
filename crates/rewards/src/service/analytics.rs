//! Aggregates for readers: events, reward requests and users.

use kernel::auth::Reader;
use serde::Serialize;
use utoipa::ToSchema;

use super::RewardsService;
use crate::error::RewardsError;
use crate::store::{DayCount, EventActivity, StatusCount};

/// The longest timeline an analytics call returns, in days.
pub const MAX_DAYS: u32 = 366;
/// Events listed with their rewards and requests, most recent first.
const EVENTS_LISTED: i64 = 100;

/// `GET /analytics/events`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventAnalytics {
    /// Events per status.
    pub by_status: Vec<StatusCount>,
    /// The 100 most recent events with their rewards and requests per status.
    pub events: Vec<EventActivity>,
}

/// `GET /analytics/rewards`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RewardAnalytics {
    /// Reward requests per status.
    pub requests_by_status: Vec<StatusCount>,
    /// Requests per UTC day over the last `days` days.
    pub requests_per_day: Vec<DayCount>,
}

/// `GET /analytics/users`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserAnalytics {
    /// Users known to rewards (from sign-ups).
    pub users: i64,
    /// Of them, those with at least one reward request.
    pub participants: i64,
    /// `participants / users` (0 when there are no users).
    pub participation_rate: f64,
    /// Sign-ups per UTC day over the last `days` days.
    pub new_users_per_day: Vec<DayCount>,
    /// Distinct users logging in per UTC day over the last `days` days.
    pub active_users_per_day: Vec<DayCount>,
}

impl RewardsService {
    pub async fn event_analytics(&self, _: &Reader) -> Result<EventAnalytics, RewardsError> {
        Ok(EventAnalytics {
            by_status: self.store.event_statuses().await?,
            events: self.store.event_activity(EVENTS_LISTED).await?,
        })
    }

    pub async fn reward_analytics(
        &self,
        _: &Reader,
        days: Option<i64>,
    ) -> Result<RewardAnalytics, RewardsError> {
        let since = self.since(days)?;
        Ok(RewardAnalytics {
            requests_by_status: self.store.request_statuses().await?,
            requests_per_day: self.store.requests_per_day(since).await?,
        })
    }

    pub async fn user_analytics(
        &self,
        _: &Reader,
        days: Option<i64>,
    ) -> Result<UserAnalytics, RewardsError> {
        let since = self.since(days)?;
        let (users, participants) = self.store.participation().await?;
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
            new_users_per_day: self.store.sign_ups_per_day(since).await?,
            active_users_per_day: self.store.active_users_per_day(since).await?,
        })
    }

    /// The start of the UTC day `days - 1` days ago (default 30 days).
    fn since(&self, days: Option<i64>) -> Result<kernel::Timestamp, RewardsError> {
        let days = days.unwrap_or(30);
        if !(1..=i64::from(MAX_DAYS)).contains(&days) {
            return Err(RewardsError::invalid(
                "days",
                format!("must be between 1 and {MAX_DAYS}"),
            ));
        }
        let today = self.clock.now().as_datetime().date();
        let first = today - time::Duration::days(days - 1);
        Ok(kernel::Timestamp::from(first.midnight().assume_utc()))
    }
}
