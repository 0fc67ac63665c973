//! A reservation and its lifecycle. No I/O.

use kernel::lifecycle::Lifecycle;
use kernel::{FieldError, Timestamp, UserId, text_form};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::OrderId;
use crate::products::model::units;
use crate::products::{Product, ProductId};

pub use contracts::commerce::ReservationId;

/// Where a reservation is. `HELD` and `ORDERED` hold units; `SOLD` keeps
/// them for good; `RELEASED` and `EXPIRED` gave them back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationStatus {
    Held,
    Ordered,
    Released,
    Expired,
    Sold,
}

impl ReservationStatus {
    pub const ALL: [Self; 5] = [
        Self::Held,
        Self::Ordered,
        Self::Released,
        Self::Expired,
        Self::Sold,
    ];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Held => "HELD",
            Self::Ordered => "ORDERED",
            Self::Released => "RELEASED",
            Self::Expired => "EXPIRED",
            Self::Sold => "SOLD",
        }
    }

    /// Whether a reservation in this status takes units of the pool.
    #[must_use]
    pub const fn takes_units(self) -> bool {
        matches!(self, Self::Held | Self::Ordered | Self::Sold)
    }
}

text_form!(ReservationStatus, "HELD, ORDERED, RELEASED, EXPIRED, SOLD");

impl Lifecycle for ReservationStatus {
    fn name(self) -> &'static str {
        self.as_str()
    }

    fn can_move_to(self, next: Self) -> bool {
        use ReservationStatus as S;
        matches!(
            (self, next),
            (S::Held, S::Ordered | S::Released | S::Expired)
                // The order failed, expired or was cancelled: the units go
                // back; or it was paid.
                | (S::Ordered, S::Expired | S::Released | S::Sold)
                // A paid order cancelled and refunded.
                | (S::Sold, S::Released)
        )
    }
}

/// The body of `POST /products/{id}/reservations`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewReservation {
    /// Units to hold, all or none: at least 1.
    pub quantity: i64,
}

impl NewReservation {
    /// The quantity, if it is one a product could ever have.
    pub fn quantity(&self) -> Result<u32, Vec<FieldError>> {
        units(self.quantity)
    }
}

/// A hold, as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Reservation {
    pub id: ReservationId,
    pub product_id: ProductId,
    pub user_id: UserId,
    pub quantity: u32,
    pub status: ReservationStatus,
    /// When a `HELD` (or `ORDERED`, unpaid) reservation gives its units back.
    pub expires_at: Timestamp,
    /// The order it belongs to, once ordered.
    pub order_id: Option<OrderId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Reservation {
    /// A new hold of `quantity` units of `product` for `user`, for the
    /// product's `hold_seconds` from `now`.
    #[must_use]
    pub fn hold(
        id: ReservationId,
        product: &Product,
        user: UserId,
        quantity: u32,
        now: Timestamp,
    ) -> Self {
        let lasts = std::time::Duration::from_secs(product.hold_seconds.into());
        Self::held_for(id, product.id, user, quantity, now, lasts)
    }

    /// A new `HELD` reservation that lasts `lasts` from `now` (a public
    /// hold, or a waiting-list offer).
    #[must_use]
    pub fn held_for(
        id: ReservationId,
        product: ProductId,
        user: UserId,
        quantity: u32,
        now: Timestamp,
        lasts: std::time::Duration,
    ) -> Self {
        Self {
            id,
            product_id: product,
            user_id: user,
            quantity,
            status: ReservationStatus::Held,
            expires_at: now + lasts,
            order_id: None,
            created_at: now,
            updated_at: now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quantity_is_a_count_of_units() {
        assert!(NewReservation { quantity: 0 }.quantity().is_err());
        assert_eq!(NewReservation { quantity: 3 }.quantity(), Ok(3));
    }

    #[test]
    fn only_held_and_ordered_reservations_give_units_back() {
        use ReservationStatus as S;
        assert!(S::Held.can_move_to(S::Released));
        assert!(S::Held.can_move_to(S::Expired));
        assert!(S::Ordered.can_move_to(S::Sold));
        for done in [S::Released, S::Expired] {
            for next in S::ALL {
                assert!(!done.can_move_to(next), "{done} → {next}");
            }
        }
        assert!(
            !S::Held.can_move_to(S::Sold),
            "a hold is paid through an order"
        );
        assert!(S::Sold.takes_units() && !S::Expired.takes_units());
    }

    #[test]
    fn statuses_read_back_from_their_text() {
        for status in ReservationStatus::ALL {
            assert_eq!(status.as_str().parse::<ReservationStatus>(), Ok(status));
        }
        assert!("held".parse::<ReservationStatus>().is_err());
    }
}
