//! The park: attractions (rides and sights) with hashtags and an all-of
//! search, and one virtual waiting line per attraction: join, leave, where
//! am I and how long, staff calls with a notice on the bus, admission at the
//! gate, and expiry of calls not answered in time.
//!
//! `model` holds the types and rules, with no I/O; `store` the tables
//! (SQLite and PostgreSQL), the record of every line; `line` the stores
//! that answer positions without scanning (memory or Redis); `service` the
//! use cases; `http` the routes; `notices` the Slack text of a call;
//! `reconcile` the comparison of the line stores with the table. What
//! it announces is in `contracts::park`.
#![forbid(unsafe_code)]

pub mod error;
pub mod http;
pub mod line;
pub mod model;
pub mod notices;
pub mod reconcile;
pub mod service;
mod snapshots;
pub mod store;

pub use error::ParkError;
pub use service::{ParkService, ParkSettings};

/// The park's tables.
#[must_use]
pub fn migrations() -> kernel::db::Migrations {
    kernel::db::Migrations {
        sqlite: sqlx::migrate!("./migrations/sqlite"),
        postgres: sqlx::migrate!("./migrations/postgres"),
    }
}
