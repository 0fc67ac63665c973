//! What commerce receives, what it answers other modules directly, and the
//! commerce ids they name.

use async_trait::async_trait;
use bus::Message;
use kernel::{Timestamp, UserId};
use serde::{Deserialize, Serialize};

kernel::id_type!(
    /// A coupon campaign: a discount, a stock, a per-user limit and an issue window.
    CouponCampaignId
);

kernel::id_type!(
    /// The reward request a coupon grant fulfils (rewards' request id): one
    /// coupon per grant, however often the grant is delivered.
    GrantId
);

/// Commerce's answer to another module asking about a campaign (rewards,
/// before it lets a `COUPON` reward name one). The server hands commerce's
/// service to the asking module as this trait.
#[async_trait]
pub trait CouponCampaigns: Send + Sync {
    /// Whether the campaign exists; the error says why commerce cannot
    /// answer now (the asking module answers 503).
    async fn exists(&self, id: CouponCampaignId) -> Result<bool, String>;
}

/// A command: issue one coupon of `campaign_id` to `user_id` for the reward
/// request `grant_id`. Rewards sends it when a `COUPON` reward is approved;
/// commerce issues exactly one coupon per `grant_id`, outside the public
/// stock.
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
