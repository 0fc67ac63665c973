//! Commerce: coupon campaigns and first-come coupon issuance; products,
//! reservations, orders, payments, tickets and the waiting lists of
//! sold-out products, each a submodule of the same shape.
//!
//! `model` holds the types and rules, with no I/O; `store` the tables
//! (SQLite and PostgreSQL), `stock` the campaigns' pools in the stock gate,
//! `service` the use cases, `http` the routes, `grants` what commerce takes
//! from the bus (its messages are in `contracts::commerce`).
#![forbid(unsafe_code)]

pub mod analytics;
pub mod error;
pub mod grants;
pub mod http;
pub mod model;
pub mod orders;
pub mod payments;
pub mod products;
pub mod reservations;
pub mod service;
pub mod stock;
pub mod store;
pub mod tickets;
pub mod waitlist;

pub use error::CommerceError;
pub use grants::CouponGrantHandler;
pub use service::CouponService;
pub use stock::CampaignStockLoader;

/// The commerce tables.
#[must_use]
pub fn migrations() -> kernel::db::Migrations {
    kernel::db::Migrations {
        sqlite: sqlx::migrate!("./migrations/sqlite"),
        postgres: sqlx::migrate!("./migrations/postgres"),
    }
}
