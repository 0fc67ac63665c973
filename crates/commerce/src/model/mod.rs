//! The commerce module's types and rules. No I/O here: a service fetches the
//! facts, these types decide.

pub mod campaign;
pub mod coupon;
pub mod discount;
pub mod ids;

use kernel::{FieldError, Violations};

pub use campaign::{
    Campaign, CampaignIssues, CouponCampaign, InvalidSchedule, NewCampaign, Schedule,
};
pub use coupon::{Coupon, CouponCode, CouponStatus, InvalidCode};
pub use discount::{Discount, DiscountSpec, InvalidPercent, Percent};
pub use ids::{CouponCampaignId, CouponId, GrantId, OrderId};

/// The checked value, or every field error the checks recorded.
pub(crate) fn checked<T>(value: Option<T>, violations: Violations) -> Result<T, Vec<FieldError>> {
    match (violations.into_errors(), value) {
        (Ok(()), Some(value)) => Ok(value),
        (Err(errors), _) => Err(errors),
        // Every check that leaves the value out records why; this is a bug.
        (Ok(()), None) => Err(vec![FieldError {
            field: "body".into(),
            message: "is not valid".into(),
        }]),
    }
}
