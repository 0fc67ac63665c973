//! What rewards announces, and the rewards ids it carries. The coupon of a
//! `COUPON` grant is a command owned by commerce
//! ([`IssueCouponGrant`](crate::commerce::IssueCouponGrant)), enqueued in
//! the approval's transaction.

use bus::Message;
use kernel::{Timestamp, UserId};
use serde::{Deserialize, Serialize};

kernel::id_type!(
    /// An event that hands out rewards.
    EventId
);

kernel::id_type!(
    /// A reward in the catalogue.
    RewardId
);

kernel::id_type!(
    /// A reward attached to an event, with its condition and stock.
    EventRewardId
);

kernel::id_type!(
    /// One user's attempt to claim an event reward, successful or not.
    RewardRequestId
);

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

/// Staff rejected a `PENDING` reward request; enqueued in the decision's
/// transaction (its held unit, if any, is back in the same one).
/// Requests rejected when made (`EVENT_NOT_ACTIVE`, `CONDITION_NOT_MET`,
/// `OUT_OF_STOCK`) are answered to the user at once and not announced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewardRejected {
    pub request_id: RewardRequestId,
    pub user_id: UserId,
    pub event_id: EventId,
    pub event_reward_id: EventRewardId,
    pub reward_id: RewardId,
    /// The staff member's reason, if given.
    pub reason: Option<String>,
    pub rejected_by: UserId,
    pub rejected_at: Timestamp,
}

impl Message for RewardRejected {
    const TOPIC: &'static str = "rewards.reward_rejected";
    const VERSION: i32 = 1;
}
