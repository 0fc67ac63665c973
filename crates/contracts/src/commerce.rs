//! What commerce receives, what it announces, what it answers other modules
//! directly, and the commerce ids they name.

use async_trait::async_trait;
use bus::Message;
use kernel::{Timestamp, UserId};
use serde::{Deserialize, Serialize};

kernel::id_type!(
    /// A coupon campaign: a discount, a stock, a per-user limit and an issue window.
    CouponCampaignId
);

kernel::id_type!(
    /// One product on sale.
    ProductId
);

kernel::id_type!(
    /// One hold of a product's units for one user.
    ReservationId
);

kernel::id_type!(
    /// One user's place on a sold-out product's waiting list.
    WaitingListEntryId
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

/// Units came back to a sold-out product and went to the first waiting
/// entry they fit: a `HELD` reservation of its own until
/// `offer_expires_at`. Enqueued in the offer's transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingListOffered {
    pub entry_id: WaitingListEntryId,
    pub product_id: ProductId,
    pub product_name: String,
    pub user_id: UserId,
    pub quantity: u32,
    /// The hold made for the entry; ordering it accepts the offer.
    pub reservation_id: ReservationId,
    pub offered_at: Timestamp,
    /// The hold ends then, and its units go to the next entry.
    pub offer_expires_at: Timestamp,
}

impl Message for WaitingListOffered {
    const TOPIC: &'static str = "commerce.waiting_list_offered";
    const VERSION: i32 = 1;
}
