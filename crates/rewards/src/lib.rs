//! Rewards: events with a lifecycle and a period, a reward catalogue,
//! rewards attached to events behind a condition, reward requests with
//! approval, grants into a wallet, and the facts conditions read.
//!
//! `model` holds the types and rules, with no I/O; `store` the tables
//! (SQLite and PostgreSQL), `service` the use cases and `http` the routes;
//! `subscribers` what it hears; what it announces is in `contracts::rewards`.
#![forbid(unsafe_code)]

pub mod error;
pub mod http;
pub mod model;
pub mod service;
pub mod store;
pub mod subscribers;

pub use error::RewardsError;
pub use service::RewardsService;

/// The rewards tables.
#[must_use]
pub fn migrations() -> kernel::db::Migrations {
    kernel::db::Migrations {
        sqlite: sqlx::migrate!("./migrations/sqlite"),
        postgres: sqlx::migrate!("./migrations/postgres"),
    }
}
