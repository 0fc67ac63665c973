//! The rewards module's types and rules. No I/O here: a service fetches the
//! facts, these types decide.

pub mod activity;
pub mod condition;
pub mod event;
pub mod event_reward;
pub mod ids;
pub mod request;
pub mod reward;
pub mod wallet;

pub use activity::Activity;
pub use condition::{
    Clause, ClauseType, Comparison, Condition, EvalContext, Evaluation, Facts, Needs,
};
pub use event::{Event, EventPeriod, EventStatus, InvalidPeriod, is_live};
pub use event_reward::EventReward;
pub use ids::{EventId, EventRewardId, RewardId, RewardRequestId};
pub use kernel::lifecycle::{InvalidTransition, UnknownValue};
pub use kernel::text::{Description, InvalidDescription, InvalidName, Name};
pub use request::{OUT_OF_STOCK, ReasonCode, RequestStatus, RewardRequest, Verdict};
pub use reward::{CatalogueKey, InvalidCatalogueKey, NewReward, Reward, RewardKind};
pub use wallet::{Grant, ItemHolding, Wallet, WalletCredit};
