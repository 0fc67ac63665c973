//! The facts conditions read: logins and sign-ups arrive from identity as
//! messages (see `crate::subscribers`), custom metrics through `POST /activity`.

use kernel::auth::Staff;
use kernel::{Timestamp, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::RewardsService;
use crate::error::RewardsError;
use crate::model::Activity;

/// The body of `POST /activity`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewActivityRequest {
    #[schema(format = Uuid)]
    pub user_id: String,
    /// Lower-case letters, digits and `_ . : -`, at most 64 characters.
    #[schema(example = "purchases")]
    pub metric: String,
    /// Added to the metric's sum (default 1).
    pub value: Option<f64>,
    /// When it happened (default now); only activity inside an event's
    /// period counts for it.
    pub occurred_at: Option<Timestamp>,
    /// The sender's id for this fact: a second activity with the same
    /// `source_id` is accepted but counts once.
    pub source_id: Option<String>,
}

/// The answer to `POST /activity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ActivityReceipt {
    pub accepted: bool,
    /// The `source_id` was seen before; nothing was added.
    pub duplicate: bool,
}

impl RewardsService {
    /// Records custom activity for a user (staff or a trusted system).
    pub async fn record_activity(
        &self,
        _: &Staff,
        body: NewActivityRequest,
    ) -> Result<ActivityReceipt, RewardsError> {
        let now = self.clock.now();
        let activity = Activity::parse(
            &body.user_id,
            &body.metric,
            body.value.unwrap_or(1.0),
            body.occurred_at.unwrap_or(now),
            body.source_id.as_deref(),
        )
        .map_err(RewardsError::Invalid)?;
        let recorded = self.store.record_activity(&activity, now).await?;
        Ok(ActivityReceipt {
            accepted: true,
            duplicate: !recorded,
        })
    }

    /// Counts a login towards the user's login days (UTC).
    pub async fn record_login(&self, user: UserId, at: Timestamp) -> Result<(), RewardsError> {
        Ok(self
            .store
            .record_login(user, at.as_datetime().date())
            .await?)
    }

    /// Remembers a sign-up and who referred it.
    pub async fn record_sign_up(
        &self,
        user: UserId,
        referred_by: Option<UserId>,
        at: Timestamp,
    ) -> Result<(), RewardsError> {
        Ok(self.store.record_sign_up(user, referred_by, at).await?)
    }
}
