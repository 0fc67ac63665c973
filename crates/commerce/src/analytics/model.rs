//! What the analytics answer holds. No I/O.

use kernel::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;

use kernel::UserId;

use crate::model::{CampaignIssues, OrderId};
use crate::products::ProductId;

/// `GET /analytics/commerce`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CommerceAnalytics {
    /// The 100 most recent campaigns with their coupons issued and granted
    /// (all time).
    pub coupons_per_campaign: Vec<CampaignIssues>,
    /// Coupons issued to the public in the period, per bucket of
    /// `coupons_bucket_minutes` (buckets without one left out).
    pub coupons_issued: Vec<TimeCount>,
    /// The buckets' length: 1 for periods up to two days, 60 up to 62
    /// days, 1440 beyond.
    pub coupons_bucket_minutes: u32,
    /// Per product, the units of orders paid in the period (all time
    /// without `from`) and what of them was refunded since; at most 100,
    /// highest revenue first.
    pub sales_per_product: Vec<ProductSales>,
    /// Orders placed per UTC day of the period, by their status now.
    pub orders_per_day: Vec<OrderDayCount>,
}

/// How many in the bucket starting at `at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TimeCount {
    /// RFC 3339, UTC.
    pub at: String,
    pub count: i64,
}

/// One product's sales. Amounts in minor units of `currency`, at the items'
/// prices (a coupon's discount is the order's, not split per product).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ProductSales {
    pub product_id: ProductId,
    pub name: String,
    pub currency: String,
    /// Units of paid orders, refunded ones included.
    pub units_sold: i64,
    /// What those units were sold for.
    pub revenue: i64,
    /// Of them, the units whose order was refunded.
    pub units_refunded: i64,
    /// What was given back for them.
    pub refunded: i64,
}

/// Orders placed on one UTC day (`YYYY-MM-DD`) that are in `status` now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OrderDayCount {
    pub day: String,
    pub status: String,
    pub count: i64,
}

/// Orders an operator should look at, and since when the oldest waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenIssues {
    /// Unpaid orders whose charge's answer is not known
    /// (`PENDING_PAYMENT`, payment `UNKNOWN`): reconciliation asks the
    /// provider; the customer may have paid.
    pub unknown_payments: i64,
    pub oldest_unknown_payment: Option<Timestamp>,
    /// Cancelled orders whose money has not gone back yet.
    pub pending_refunds: i64,
    pub oldest_pending_refund: Option<Timestamp>,
}

/// One order of [`OpenIssues`], for the operator's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOrder {
    pub order_id: OrderId,
    pub user_id: UserId,
    /// Minor units of `currency`.
    pub total: i64,
    pub currency: String,
    /// A payment whose answer is unknown (else a pending refund).
    pub unknown_payment: bool,
    /// Since when it waits (its last change).
    pub since: Timestamp,
}
