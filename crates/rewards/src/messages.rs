//! What rewards announces on the bus; listed in `docs/messages.md`. The
//! coupon of a `COUPON` grant is a command owned by commerce
//! (`commerce.issue_coupon_grant`), enqueued in the approval's transaction.

use bus::Message;
use kernel::{Timestamp, UserId};
use serde::{Deserialize, Serialize};

use crate::model::{EventId, EventRewardId, RewardId, RewardKind, RewardRequestId};

/// A reward request was approved and its reward granted (wallet rewards are
/// in the ledger by the time this is delivered; a coupon is on its way).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewardGranted {
    pub request_id: RewardRequestId,
    pub user_id: UserId,
    pub event_id: EventId,
    pub event_reward_id: EventRewardId,
    pub reward_id: RewardId,
    /// The reward's type and fields, as the catalogue shows them.
    pub reward: serde_json::Value,
    pub granted_at: Timestamp,
}

impl Message for RewardGranted {
    const TOPIC: &'static str = "rewards.reward_granted";
    const VERSION: i32 = 1;
}

impl RewardGranted {
    pub fn reward_json(kind: &RewardKind) -> serde_json::Value {
        serde_json::to_value(kind).unwrap_or(serde_json::Value::Null)
    }
}
