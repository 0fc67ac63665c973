//! What commerce receives on the bus. Listed with their versions in
//! `docs/messages.md`.

use bus::Message;
use kernel::{Timestamp, UserId};
use serde::{Deserialize, Serialize};

use crate::model::{CouponCampaignId, GrantId};

/// A command: issue one coupon of `campaign_id` to `user_id` for the reward
/// request `grant_id`. Rewards sends it when a `COUPON` reward is approved;
/// commerce issues exactly one coupon per `grant_id`, outside the public
/// stock ([`crate::CouponGrantHandler`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueCouponGrant {
    /// The reward request's id.
    pub grant_id: GrantId,
    pub user_id: UserId,
    pub campaign_id: CouponCampaignId,
    pub requested_at: Timestamp,
}

impl Message for IssueCouponGrant {
    const TOPIC: &'static str = "commerce.issue_coupon_grant";
    const VERSION: i32 = 1;
}
