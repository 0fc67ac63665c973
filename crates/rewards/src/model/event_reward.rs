//! A reward attached to an event: its condition, how it is resolved, and its
//! stock.

use serde::Serialize;
use utoipa::ToSchema;

use super::condition::Condition;
use super::ids::{EventId, EventRewardId};
use super::reward::Reward;

/// An event reward as the API shows it, with the catalogue reward embedded.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EventReward {
    pub id: EventRewardId,
    pub event_id: EventId,
    pub reward: Reward,
    /// The condition tree (see API.md), or null for none.
    #[schema(value_type = Option<Object>, required = true)]
    pub condition: Option<Condition>,
    /// Approve a request at once when the condition holds.
    pub auto_resolve: bool,
    /// Units on offer; null means unlimited.
    #[schema(required = true)]
    pub quantity: Option<u32>,
    /// Units not yet taken; null when unlimited.
    #[schema(required = true)]
    pub remaining: Option<u32>,
    /// Requests one user may hold (pending or approved).
    pub per_user_limit: u32,
}

impl EventReward {
    /// Units already taken: `quantity − remaining` (0 when unlimited).
    #[must_use]
    pub fn taken(&self) -> u32 {
        match (self.quantity, self.remaining) {
            (Some(q), Some(r)) => q.saturating_sub(r),
            _ => 0,
        }
    }

    /// The stock after changing the quantity, keeping what is taken; `Err`
    /// with the units taken when `quantity` is below them. Moving from
    /// unlimited to limited starts with nothing taken.
    pub fn restock(&self, quantity: Option<u32>) -> Result<Option<u32>, u32> {
        let taken = self.taken();
        match quantity {
            None => Ok(None),
            Some(q) if q < taken => Err(taken),
            Some(q) => Ok(Some(q - taken)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Name, RewardId, RewardKind};
    use std::num::NonZeroU32;

    fn stocked(quantity: Option<u32>, remaining: Option<u32>) -> EventReward {
        EventReward {
            id: EventRewardId::new(),
            event_id: EventId::new(),
            reward: Reward {
                id: RewardId::new(),
                name: Name::parse("Points").expect("valid"),
                kind: RewardKind::Point {
                    points: NonZeroU32::MIN,
                },
            },
            condition: None,
            auto_resolve: false,
            quantity,
            remaining,
            per_user_limit: 1,
        }
    }

    #[test]
    fn remaining_moves_by_the_same_delta_as_the_quantity() {
        let er = stocked(Some(10), Some(7));
        assert_eq!(er.taken(), 3);
        assert_eq!(er.restock(Some(15)), Ok(Some(12)));
        assert_eq!(er.restock(Some(3)), Ok(Some(0)));
        assert_eq!(er.restock(None), Ok(None));
    }

    #[test]
    fn a_quantity_below_what_is_taken_is_refused_with_the_taken_count() {
        assert_eq!(stocked(Some(10), Some(7)).restock(Some(2)), Err(3));
    }

    #[test]
    fn an_unlimited_reward_becomes_limited_with_its_whole_quantity_remaining() {
        assert_eq!(stocked(None, None).restock(Some(5)), Ok(Some(5)));
    }
}
