//! The commerce module's ids; those other modules name are contracts.

pub use contracts::commerce::{CouponCampaignId, GrantId};

kernel::id_type!(
    /// One coupon, issued to one user.
    CouponId
);

kernel::id_type!(
    /// One order: a user's reservations on their way to being paid.
    OrderId
);
