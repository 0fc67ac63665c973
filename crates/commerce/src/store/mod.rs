//! The coupon tables, behind traits shaped like the use cases: campaigns,
//! users' coupons (listed, one by id, a reward grant's), the claims of the
//! public stock, and issues per campaign for analytics. One SQL body serves
//! SQLite and PostgreSQL through `kernel::write_tx!` and `kernel::read!`,
//! except the claim writes, whose statements are written out per backend
//! (`claims/sqlite.rs`, `claims/postgres.rs`); the conformance suite in
//! `tests/store.rs` runs them on each.
//!
//! Issuing never updates a shared row: the coupon insert is the claim, and a
//! campaign's issued count is the count of its public coupons.

mod analytics;
mod campaigns;
mod claims;
mod coupons;

pub use analytics::CampaignAnalyticsStore;
pub use campaigns::CampaignStore;
pub use claims::{ClaimStore, CouponClaim, IssueOutcome};
pub use coupons::UserCouponStore;

use kernel::db::Db;

/// Everything the coupon service and the campaigns' stock loader need from
/// the tables.
pub trait CouponStore:
    CampaignStore + UserCouponStore + ClaimStore + CampaignAnalyticsStore
{
}

impl<T: CampaignStore + UserCouponStore + ClaimStore + CampaignAnalyticsStore> CouponStore for T {}

/// The SQL implementation for both backends.
#[derive(Debug, Clone)]
pub struct SqlCouponStore {
    db: Db,
}

impl SqlCouponStore {
    #[must_use]
    pub const fn new(db: Db) -> Self {
        Self { db }
    }
}
