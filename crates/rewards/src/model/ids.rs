//! The rewards module's ids, all carried by its messages, so contracts.

pub use contracts::rewards::{EventId, EventRewardId, RewardId, RewardRequestId};
