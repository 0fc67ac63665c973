//! A waiting-list entry and its lifecycle. No I/O.

use kernel::lifecycle::Lifecycle;
use kernel::{FieldError, Timestamp, UserId, text_form};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use contracts::commerce::WaitingListEntryId;

use crate::products::ProductId;
use crate::products::model::units;
use crate::reservations::ReservationId;

/// Where an entry is. `WAITING` entries are the queue; an `OFFERED` one
/// holds a reservation made for it until `offer_expires_at`; the rest are
/// done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntryStatus {
    Waiting,
    Offered,
    Accepted,
    Expired,
    Left,
}

impl EntryStatus {
    pub const ALL: [Self; 5] = [
        Self::Waiting,
        Self::Offered,
        Self::Accepted,
        Self::Expired,
        Self::Left,
    ];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "WAITING",
            Self::Offered => "OFFERED",
            Self::Accepted => "ACCEPTED",
            Self::Expired => "EXPIRED",
            Self::Left => "LEFT",
        }
    }
}

text_form!(EntryStatus, "WAITING, OFFERED, ACCEPTED, EXPIRED, LEFT");

impl Lifecycle for EntryStatus {
    fn name(self) -> &'static str {
        self.as_str()
    }

    fn can_move_to(self, next: Self) -> bool {
        use EntryStatus as S;
        matches!(
            (self, next),
            // Offered the units that came back, or left; `EXPIRED` straight
            // from `WAITING` when the user could no longer take the units
            // (over the per-user limit by then).
            (S::Waiting, S::Offered | S::Left | S::Expired)
                | (S::Offered, S::Accepted | S::Expired | S::Left)
        )
    }
}

/// The body of `POST /products/{id}/waiting-list`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewEntry {
    /// Units to wait for, all or none: at least 1, at most the per-user limit.
    pub quantity: i64,
}

impl NewEntry {
    /// The quantity, if it is one a product could ever have.
    pub fn quantity(&self) -> Result<u32, Vec<FieldError>> {
        units(self.quantity)
    }
}

/// One user's place on a product's waiting list, as stored and as the API
/// shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct WaitingListEntry {
    pub id: WaitingListEntryId,
    pub product_id: ProductId,
    pub user_id: UserId,
    pub quantity: u32,
    pub status: EntryStatus,
    /// Place among the `WAITING` entries, 1 first, read live; null once
    /// the entry no longer waits.
    pub rank: Option<u64>,
    pub joined_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offered_at: Option<Timestamp>,
    /// The `HELD` reservation made for the offer; order it to accept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservation_id: Option<ReservationId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offer_expires_at: Option<Timestamp>,
}

impl WaitingListEntry {
    /// A new `WAITING` entry of `user` for `quantity` units of `product`.
    #[must_use]
    pub fn join(product: ProductId, user: UserId, quantity: u32, now: Timestamp) -> Self {
        Self {
            id: WaitingListEntryId::new(),
            product_id: product,
            user_id: user,
            quantity,
            status: EntryStatus::Waiting,
            rank: None,
            joined_at: now,
            offered_at: None,
            reservation_id: None,
            offer_expires_at: None,
        }
    }
}

/// The first entry, in join order, whose quantity fits in `remaining`
/// units (`None`: unlimited); entries asking for more are passed over, not
/// skipped for good.
#[must_use]
pub fn first_fitting(
    waiting: &[(WaitingListEntryId, UserId, u32)],
    remaining: Option<u64>,
) -> Option<&(WaitingListEntryId, UserId, u32)> {
    waiting
        .iter()
        .find(|(_, _, quantity)| remaining.is_none_or(|left| u64::from(*quantity) <= left))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quantity_is_a_count_of_units() {
        assert!(NewEntry { quantity: -1 }.quantity().is_err());
        assert_eq!(NewEntry { quantity: 2 }.quantity(), Ok(2));
    }

    #[test]
    fn an_offer_ends_accepted_expired_or_left_and_done_entries_stay_done() {
        use EntryStatus as S;
        assert!(S::Waiting.can_move_to(S::Offered));
        assert!(S::Offered.can_move_to(S::Accepted));
        assert!(S::Offered.can_move_to(S::Expired));
        assert!(
            !S::Waiting.can_move_to(S::Accepted),
            "only an offer is accepted"
        );
        for done in [S::Accepted, S::Expired, S::Left] {
            for next in S::ALL {
                assert!(!done.can_move_to(next), "{done} → {next}");
            }
        }
    }

    #[test]
    fn the_first_entry_that_fits_gets_the_units_and_bigger_ones_keep_their_place() {
        let (a, b, c) = (
            WaitingListEntryId::new(),
            WaitingListEntryId::new(),
            WaitingListEntryId::new(),
        );
        let user = UserId::new();
        let queue = [(a, user, 3), (b, user, 1), (c, user, 2)];
        assert_eq!(first_fitting(&queue, Some(1)).map(|e| e.0), Some(b));
        assert_eq!(first_fitting(&queue, Some(3)).map(|e| e.0), Some(a));
        assert_eq!(first_fitting(&queue, Some(0)), None);
        assert_eq!(first_fitting(&queue, None).map(|e| e.0), Some(a));
    }

    #[test]
    fn statuses_read_back_from_their_text() {
        for status in EntryStatus::ALL {
            assert_eq!(status.as_str().parse::<EntryStatus>(), Ok(status));
        }
    }
}
