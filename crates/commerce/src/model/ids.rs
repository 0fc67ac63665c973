//! The commerce module's ids; those other modules name are contracts.

pub use contracts::commerce::{CouponCampaignId, GrantId, OrderId};

kernel::id_type!(
    /// One coupon, issued to one user.
    CouponId
);
