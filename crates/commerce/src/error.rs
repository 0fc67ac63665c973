//! The commerce module's errors, mapped to problem+json in one place.

use kernel::{FieldError, Problem, Timestamp};

#[derive(Debug, thiserror::Error)]
pub enum CommerceError {
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("coupon campaign not found")]
    CampaignNotFound,
    #[error("coupons of this campaign are issued from {starts_at} until {ends_at}")]
    NotOpen {
        starts_at: Timestamp,
        ends_at: Timestamp,
    },
    #[error("product not found")]
    ProductNotFound,
    #[error("{taken} units are held, ordered or sold: the stock cannot be lower")]
    StockBelowTaken { taken: u64 },
    #[error("every coupon of this campaign has been issued")]
    SoldOut,
    #[error("you already hold as many coupons of this campaign as one user may")]
    LimitReached,
    #[error("this product is on sale from {starts_at} until {ends_at}")]
    SaleNotOpen {
        starts_at: Timestamp,
        ends_at: Timestamp,
    },
    #[error("fewer units of this product are left than asked for")]
    ProductSoldOut,
    #[error("you would hold, order or own more units of this product than one user may")]
    ProductLimitReached,
    #[error("reservation not found")]
    ReservationNotFound,
    #[error("the reservation is {status}, not HELD")]
    ReservationNotHeld { status: &'static str },
    #[error("reservation {0} has expired")]
    ReservationExpired(crate::reservations::ReservationId),
    #[error("the coupon is not one of your ISSUED coupons valid now")]
    CouponInvalid,
    #[error("order not found")]
    OrderNotFound,
    #[error("the order is {status}: it cannot be paid")]
    OrderNotPayable { status: &'static str },
    #[error("the payment was declined: {message}")]
    PaymentDeclined { code: String, message: String },
    #[error("the amount is not the order's total of {total}")]
    AmountMismatch { total: i64 },
    #[error("a ticket of this order was checked in: it cannot be cancelled")]
    TicketUsed,
    #[error("the order is {status}: it cannot be cancelled now")]
    OrderNotCancellable { status: &'static str },
    #[error("the refund cannot be made now: {0}")]
    RefundFailed(String),
    #[error("units of this product are on sale: hold them instead of waiting")]
    NotSoldOut,
    #[error("you are already on this product's waiting list")]
    AlreadyWaiting,
    #[error("you are not on this product's waiting list")]
    NotWaiting,
    #[error("this belongs to another user")]
    Forbidden,
    #[error("the stock gate cannot answer: {0}")]
    GateUnavailable(String),
    #[error("the coupon write did not answer within {0:?}")]
    WriteTimedOut(std::time::Duration),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Internal(String),
}

impl From<gate::Refusal> for CommerceError {
    fn from(refusal: gate::Refusal) -> Self {
        match refusal {
            gate::Refusal::SoldOut => Self::SoldOut,
            gate::Refusal::LimitReached => Self::LimitReached,
            gate::Refusal::Unavailable(why) => Self::GateUnavailable(why),
        }
    }
}

impl From<gate::ClaimError> for CommerceError {
    fn from(e: gate::ClaimError) -> Self {
        match e {
            gate::ClaimError::Refused(refusal) => refusal.into(),
            gate::ClaimError::WriteTimedOut(after) => Self::WriteTimedOut(after),
            gate::ClaimError::Aborted(why) => Self::Internal(why),
        }
    }
}

impl From<gate::Unavailable> for CommerceError {
    fn from(e: gate::Unavailable) -> Self {
        Self::GateUnavailable(e.0)
    }
}

impl From<CommerceError> for Problem {
    fn from(e: CommerceError) -> Self {
        use CommerceError as E;
        match e {
            E::Invalid(errors) => Self::validation(errors),
            E::CampaignNotFound => Self::not_found("coupon campaign"),
            E::NotOpen { starts_at, ends_at } => Self::conflict("NOT_OPEN", e.to_string())
                .with("issue_starts_at", starts_at)
                .with("issue_ends_at", ends_at),
            E::ProductNotFound => Self::not_found("product"),
            E::StockBelowTaken { taken } => {
                Self::conflict("STOCK_BELOW_TAKEN", e.to_string()).with("taken", taken)
            }
            E::SaleNotOpen { starts_at, ends_at } => Self::conflict("SALE_NOT_OPEN", e.to_string())
                .with("sale_starts_at", starts_at)
                .with("sale_ends_at", ends_at),
            E::ProductSoldOut => Self::conflict("SOLD_OUT", e.to_string()),
            E::ProductLimitReached => Self::conflict("LIMIT_REACHED", e.to_string()),
            E::ReservationNotFound => Self::not_found("reservation"),
            E::ReservationNotHeld { status } => {
                Self::conflict("RESERVATION_NOT_HELD", e.to_string())
                    .with("reservation_status", status)
            }
            E::ReservationExpired(id) => {
                Self::conflict("RESERVATION_EXPIRED", e.to_string()).with("reservation_id", id)
            }
            E::CouponInvalid => Self::conflict("COUPON_INVALID", e.to_string()),
            E::OrderNotFound => Self::not_found("order"),
            E::OrderNotPayable { status } => {
                Self::conflict("ORDER_NOT_PAYABLE", e.to_string()).with("order_status", status)
            }
            E::PaymentDeclined { ref code, .. } => Self::new(
                axum::http::StatusCode::PAYMENT_REQUIRED,
                "PAYMENT_DECLINED",
                e.to_string(),
            )
            .with("provider_code", code),
            E::AmountMismatch { total } => {
                Self::conflict("AMOUNT_MISMATCH", e.to_string()).with("total", total)
            }
            E::TicketUsed => Self::conflict("TICKET_USED", e.to_string()),
            E::OrderNotCancellable { status } => {
                Self::conflict("ORDER_NOT_CANCELLABLE", e.to_string()).with("order_status", status)
            }
            E::RefundFailed(ref cause) => Self::unavailable(cause),
            E::NotSoldOut => Self::conflict("NOT_SOLD_OUT", e.to_string()),
            E::AlreadyWaiting => Self::conflict("ALREADY_WAITING", e.to_string()),
            E::NotWaiting => Self::not_found("waiting-list entry"),
            E::Forbidden => Self::forbidden(),
            E::SoldOut => Self::conflict("SOLD_OUT", e.to_string()),
            E::LimitReached => Self::conflict("LIMIT_REACHED", e.to_string()),
            E::GateUnavailable(ref cause) => Self::unavailable(cause),
            E::WriteTimedOut(_) => Self::unavailable(&e),
            E::Database(ref cause) => Self::database(cause),
            E::Internal(ref cause) => Self::internal(cause),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn refusals_are_conflicts_with_their_stable_codes() {
        let window = CommerceError::NotOpen {
            starts_at: datetime!(2026-12-01 00:00 UTC).into(),
            ends_at: datetime!(2026-12-02 00:00 UTC).into(),
        };
        let cases = [
            (window, "NOT_OPEN"),
            (CommerceError::SoldOut, "SOLD_OUT"),
            (CommerceError::LimitReached, "LIMIT_REACHED"),
        ];
        for (error, code) in cases {
            let problem = Problem::from(error);
            assert_eq!((problem.status, problem.code.as_str()), (409, code));
        }
    }

    #[test]
    fn a_closed_window_says_when_it_opens() {
        let problem = Problem::from(CommerceError::NotOpen {
            starts_at: datetime!(2026-12-01 00:00 UTC).into(),
            ends_at: datetime!(2026-12-02 00:00 UTC).into(),
        });
        assert_eq!(problem.extra["issue_starts_at"], "2026-12-01T00:00:00Z");
        assert_eq!(problem.extra["issue_ends_at"], "2026-12-02T00:00:00Z");
    }

    #[test]
    fn failures_inside_say_nothing_and_a_gate_outage_is_a_503() {
        let problem = Problem::from(CommerceError::GateUnavailable("redis down".into()));
        assert_eq!(
            (problem.status, problem.code.as_str()),
            (503, "UNAVAILABLE")
        );
        assert!(!problem.detail.contains("redis"), "{}", problem.detail);

        let problem = Problem::from(CommerceError::Database(sqlx::Error::RowNotFound));
        assert_eq!(problem.status, 500);
        assert!(!problem.detail.contains("row"), "{}", problem.detail);

        let problem = Problem::from(CommerceError::WriteTimedOut(gate::CLAIM_WRITE_TIMEOUT));
        assert_eq!(
            (problem.status, problem.code.as_str()),
            (503, "UNAVAILABLE"),
            "a write that may still commit is retried, not a server fault"
        );

        let problem = Problem::from(CommerceError::Database(sqlx::Error::PoolTimedOut));
        assert_eq!(
            (problem.status, problem.code.as_str()),
            (503, "UNAVAILABLE")
        );
        assert!(!problem.detail.contains("pool"), "{}", problem.detail);
    }
}
