//! Outbound webhooks for integrators, after the Standard Webhooks spec.
//!
//! `model` holds the types and rules (no I/O), `signing` the signatures,
//! `guard` the SSRF guard (which addresses a delivery may reach), `store`
//! the tables (SQLite and PostgreSQL: endpoints, a message per event and
//! endpoint, an attempt per try), `service` the use cases, `delivery` the
//! background worker that sends, `http` the ADMIN routes, `subscriber` what
//! webhooks take from the bus.
#![forbid(unsafe_code)]

pub mod delivery;
pub mod error;
pub mod guard;
pub mod http;
pub mod model;
pub mod service;
pub mod signing;
pub mod store;
pub mod subscriber;

pub use delivery::Deliverer;
pub use error::WebhookError;
pub use service::{WebhookService, WebhookSettings};
pub use subscriber::WebhookEvents;

/// The webhook tables.
#[must_use]
pub fn migrations() -> kernel::db::Migrations {
    kernel::db::Migrations {
        sqlite: sqlx::migrate!("./migrations/sqlite"),
        postgres: sqlx::migrate!("./migrations/postgres"),
    }
}
