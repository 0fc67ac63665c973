//! The commerce module's ids.

kernel::id_type!(
    /// A coupon campaign: a discount, a stock, a per-user limit and an issue window.
    CouponCampaignId
);

kernel::id_type!(
    /// One coupon, issued to one user.
    CouponId
);

kernel::id_type!(
    /// The reward request a coupon grant fulfils (rewards' request id): one
    /// coupon per grant, however often the grant is delivered.
    GrantId
);
