//! An order, its items, totals and lifecycle. No I/O.

use kernel::lifecycle::Lifecycle;
use kernel::{Money, Timestamp, UserId, text_form};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::{Discount, OrderId};
use crate::products::ProductId;
use crate::reservations::ReservationId;

/// The most reservations one order may gather.
pub const MAX_ITEMS: usize = 50;

/// Where an order is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    PendingPayment,
    Paid,
    Failed,
    Cancelled,
    Expired,
}

impl OrderStatus {
    pub const ALL: [Self; 5] = [
        Self::PendingPayment,
        Self::Paid,
        Self::Failed,
        Self::Cancelled,
        Self::Expired,
    ];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PendingPayment => "PENDING_PAYMENT",
            Self::Paid => "PAID",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
            Self::Expired => "EXPIRED",
        }
    }
}

text_form!(
    OrderStatus,
    "PENDING_PAYMENT, PAID, FAILED, CANCELLED, EXPIRED"
);

impl Lifecycle for OrderStatus {
    fn name(self) -> &'static str {
        self.as_str()
    }

    fn can_move_to(self, next: Self) -> bool {
        use OrderStatus as S;
        matches!(
            (self, next),
            (
                S::PendingPayment,
                S::Paid | S::Failed | S::Cancelled | S::Expired
            ) | (S::Paid, S::Cancelled)
        )
    }
}

/// Where an order's payment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    /// No charge was tried.
    None,
    Done,
    Declined,
    /// A charge was tried and its answer is not known yet.
    Unknown,
    Refunded,
}

impl PaymentStatus {
    pub const ALL: [Self; 5] = [
        Self::None,
        Self::Done,
        Self::Declined,
        Self::Unknown,
        Self::Refunded,
    ];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Done => "DONE",
            Self::Declined => "DECLINED",
            Self::Unknown => "UNKNOWN",
            Self::Refunded => "REFUNDED",
        }
    }
}

text_form!(PaymentStatus, "NONE, DONE, DECLINED, UNKNOWN, REFUNDED");

/// The body of `POST /orders`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewOrder {
    /// One to 50 of the caller's `HELD` reservations, each once.
    #[schema(value_type = Vec<String>)]
    pub reservation_ids: Vec<ReservationId>,
    /// One of the caller's `ISSUED` coupons, valid now.
    pub coupon_code: Option<String>,
}

/// One reservation of an order, priced when the order was placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OrderItem {
    pub product_id: ProductId,
    pub reservation_id: ReservationId,
    pub quantity: u32,
    /// Minor units.
    pub unit_price: i64,
    /// `unit_price × quantity`.
    pub amount: i64,
}

/// An order's payment as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Payment {
    pub provider: Option<String>,
    pub status: PaymentStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<Timestamp>,
    /// The provider's decline code, when declined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// Where a paid order's refund is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundStatus {
    /// Committed with the cancel; the provider is asked through the outbox
    /// and asked again (with backoff) until it says refunded.
    Pending,
    /// The provider gave the money back.
    Refunded,
}

impl RefundStatus {
    pub const ALL: [Self; 2] = [Self::Pending, Self::Refunded];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Refunded => "REFUNDED",
        }
    }
}

text_form!(RefundStatus, "PENDING, REFUNDED");

/// A paid order's money given back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OrderRefund {
    /// Minor units.
    pub amount: i64,
    pub status: RefundStatus,
    /// Once `REFUNDED`.
    pub refunded_at: Option<Timestamp>,
}

/// One line of an order's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct HistoryEntry {
    /// `PLACED`, `CHARGE_STARTED`, `PAID`, `FAILED`, `EXPIRED`,
    /// `CANCELLED`, `REFUNDED`, `PAID_AFTER_EXPIRY`.
    pub event: String,
    /// The provider, payment key or decline code, as the event has it.
    pub detail: Option<String>,
    pub at: Timestamp,
}

/// `GET /orders/{id}/history`: what happened to an order, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OrderHistory {
    pub order_id: OrderId,
    pub entries: Vec<HistoryEntry>,
}

/// An order, as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Order {
    pub id: OrderId,
    pub user_id: UserId,
    pub status: OrderStatus,
    pub items: Vec<OrderItem>,
    pub subtotal: i64,
    pub discount: i64,
    pub total: i64,
    pub currency: String,
    pub coupon_code: Option<String>,
    pub payment: Payment,
    /// Present once a paid order was cancelled (or paid after it
    /// expired): `PENDING` until the provider gave the money back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund: Option<OrderRefund>,
    /// One per unit, once paid.
    pub tickets: Vec<crate::tickets::Ticket>,
    /// The end of the payment window; the holds last until then.
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(skip)]
    pub coupon_id: Option<crate::model::CouponId>,
    #[serde(skip)]
    pub attempts: u32,
}

/// Why a set of items cannot be priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PricingError {
    /// The items are not all in one currency.
    MixedCurrencies,
    /// A total past what minor units can count.
    Overflow,
    /// The coupon's fixed amount is in another currency.
    CouponCurrency,
}

/// `(subtotal, discount, total)` of `items` in `currency` with `discount`:
/// a `PERCENT` discount rounds down to the minor unit, a `FIXED` one never
/// takes the total below 0.
pub fn totals(
    items: &[OrderItem],
    currency: kernel::Currency,
    discount: Option<Discount>,
) -> Result<(i64, i64, i64), PricingError> {
    let subtotal = items
        .iter()
        .try_fold(0_i64, |sum, item| sum.checked_add(item.amount))
        .ok_or(PricingError::Overflow)?;
    let off = match discount {
        None => 0,
        Some(Discount::Percent(p)) => {
            let off = i128::from(subtotal) * i128::from(p.get()) / 100;
            i64::try_from(off).map_err(|_| PricingError::Overflow)?
        }
        Some(Discount::Fixed(Money {
            amount,
            currency: c,
        })) => {
            if c != currency {
                return Err(PricingError::CouponCurrency);
            }
            amount.min(subtotal)
        }
    };
    Ok((subtotal, off, subtotal - off))
}

/// An item of `quantity` units at `unit_price`.
pub fn item(
    product_id: ProductId,
    reservation_id: ReservationId,
    quantity: u32,
    unit_price: i64,
) -> Result<OrderItem, PricingError> {
    let amount = unit_price
        .checked_mul(i64::from(quantity))
        .ok_or(PricingError::Overflow)?;
    Ok(OrderItem {
        product_id,
        reservation_id,
        quantity,
        unit_price,
        amount,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Percent;
    use kernel::Currency;

    fn items(amounts: &[(u32, i64)]) -> Vec<OrderItem> {
        amounts
            .iter()
            .map(|(q, p)| item(ProductId::new(), ReservationId::new(), *q, *p).expect("an item"))
            .collect()
    }

    #[test]
    fn a_percent_discount_rounds_down_to_the_minor_unit() {
        let p = Percent::new(15).expect("15 %");
        // 3 × 333 = 999; 15 % is 149.85 → 149.
        assert_eq!(
            totals(
                &items(&[(3, 333)]),
                Currency::KRW,
                Some(Discount::Percent(p))
            ),
            Ok((999, 149, 850))
        );
    }

    #[test]
    fn a_fixed_discount_never_takes_the_total_below_zero() {
        let off = Discount::Fixed(Money::new(5_000, Currency::KRW));
        assert_eq!(
            totals(&items(&[(1, 3_000)]), Currency::KRW, Some(off)),
            Ok((3_000, 3_000, 0))
        );
        assert_eq!(
            totals(&items(&[(2, 3_000)]), Currency::KRW, Some(off)),
            Ok((6_000, 5_000, 1_000))
        );
        let usd = Discount::Fixed(Money::new(5, Currency::parse("USD").expect("USD")));
        assert_eq!(
            totals(&items(&[(1, 3_000)]), Currency::KRW, Some(usd)),
            Err(PricingError::CouponCurrency)
        );
    }

    #[test]
    fn totals_past_minor_units_are_refused_not_wrapped() {
        assert_eq!(
            item(ProductId::new(), ReservationId::new(), u32::MAX, i64::MAX),
            Err(PricingError::Overflow)
        );
        assert_eq!(
            totals(&items(&[(1, i64::MAX), (1, 1)]), Currency::KRW, None),
            Err(PricingError::Overflow)
        );
    }

    #[test]
    fn only_unpaid_orders_fail_expire_or_are_paid() {
        use OrderStatus as S;
        assert!(S::PendingPayment.can_move_to(S::Expired));
        assert!(S::Paid.can_move_to(S::Cancelled));
        assert!(!S::Paid.can_move_to(S::Expired));
        assert!(!S::Expired.can_move_to(S::Paid));
    }
}
