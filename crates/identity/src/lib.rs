//! Identity: sign-up with referral codes, login, EdDSA access tokens and
//! rotating refresh tokens, roles, user administration and JWKS.
//!
//! `model` holds the rules, `store` the tables (SQLite and PostgreSQL),
//! `tokens` the keys and token formats, `service` the use cases and `http`
//! the routes; what it announces is in `contracts::identity`.
#![forbid(unsafe_code)]

pub mod error;
pub mod http;
pub mod model;
pub mod service;
pub mod store;
pub mod tokens;

pub use error::IdentityError;
pub use service::{IdentityService, IdentitySettings};

/// The identity tables.
#[must_use]
pub fn migrations() -> kernel::db::Migrations {
    kernel::db::Migrations {
        sqlite: sqlx::migrate!("./migrations/sqlite"),
        postgres: sqlx::migrate!("./migrations/postgres"),
    }
}
