//! The rewards tables, behind traits shaped like the use cases: the catalogue
//! (events, rewards, event rewards), reward requests with the wallet, the
//! facts conditions read, and analytics. One SQL implementation serves SQLite
//! and PostgreSQL through `kernel::write_tx!` and `kernel::read!`; the
//! conformance suite in `tests/store.rs` runs it on each.

mod analytics;
mod catalogue;
mod facts;
mod requests;

pub use analytics::{AnalyticsStore, DayCount, EventActivity, StatusCount};
pub use catalogue::{
    AddEventReward, CatalogueStore, DeleteEvent, EventFilter, EventRewardChange, NewEventReward,
    UpdateEventReward,
};
pub use facts::{FactQuery, FactStore};
pub use requests::{
    Claim, ClaimOutcome, Decide, Decision, PoolSnapshot, RequestFilter, RequestStore,
};

use kernel::db::Db;

/// Everything the rewards service needs from its tables.
pub trait RewardsStore: CatalogueStore + RequestStore + FactStore + AnalyticsStore {}

impl<T: CatalogueStore + RequestStore + FactStore + AnalyticsStore> RewardsStore for T {}

/// The SQL implementation for both backends.
#[derive(Debug, Clone)]
pub struct SqlRewardsStore {
    db: Db,
}

impl SqlRewardsStore {
    #[must_use]
    pub const fn new(db: Db) -> Self {
        Self { db }
    }
}

fn encode(e: impl std::error::Error + Send + Sync + 'static) -> sqlx::Error {
    sqlx::Error::Encode(Box::new(e))
}
