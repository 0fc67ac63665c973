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
    /// One order: a user's reservations on their way to being paid.
    OrderId
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

/// One line of an order, priced when it was placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub product_id: ProductId,
    /// The product's name when the message was written.
    pub product_name: String,
    pub quantity: u32,
    /// Minor units.
    pub unit_price: i64,
    /// `unit_price × quantity`.
    pub amount: i64,
}

/// A ticket of a paid order, as its holder shows it at the door.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedTicket {
    pub product_id: ProductId,
    pub code: String,
}

/// An order was paid: enqueued in the transaction that marks it `PAID` and
/// issues its tickets (the order confirmation email, `order.paid` webhooks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPaid {
    pub order_id: OrderId,
    pub user_id: UserId,
    pub items: Vec<OrderLine>,
    /// Minor units, after the discount.
    pub total: i64,
    pub currency: String,
    pub tickets: Vec<IssuedTicket>,
    pub paid_at: Timestamp,
}

impl Message for OrderPaid {
    const TOPIC: &'static str = "commerce.order_paid";
    const VERSION: i32 = 1;
}

/// The money of a cancelled order on its way back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundState {
    /// Minor units.
    pub amount: i64,
    /// `PENDING` when announced: the provider is asked after the commit.
    pub status: String,
}

/// An order was cancelled: enqueued in the cancel's transaction. A paid
/// order's `refund` is `PENDING` then; [`OrderRefunded`] follows once the
/// provider gave the money back. An unpaid order has no `refund`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    pub order_id: OrderId,
    pub user_id: UserId,
    pub items: Vec<OrderLine>,
    pub total: i64,
    pub currency: String,
    pub refund: Option<RefundState>,
    pub cancelled_at: Timestamp,
}

impl Message for OrderCancelled {
    const TOPIC: &'static str = "commerce.order_cancelled";
    const VERSION: i32 = 1;
}

/// A command commerce sends itself: give a cancelled order's money back
/// through its provider. Enqueued in the cancel's transaction, so the
/// cancel and its refund commit together; the bus retries it with backoff
/// until the provider says refunded (the provider's idempotency key names
/// the order, so a retry never refunds twice).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundOrder {
    pub order_id: OrderId,
    pub requested_at: Timestamp,
}

impl Message for RefundOrder {
    const TOPIC: &'static str = "commerce.refund_order";
    const VERSION: i32 = 1;
}

/// A cancelled order's money is back with the buyer: enqueued in the
/// transaction that marks its refund `REFUNDED` (the refund email).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRefunded {
    pub order_id: OrderId,
    pub user_id: UserId,
    /// Minor units.
    pub amount: i64,
    pub currency: String,
    pub refunded_at: Timestamp,
}

impl Message for OrderRefunded {
    const TOPIC: &'static str = "commerce.order_refunded";
    const VERSION: i32 = 1;
}
