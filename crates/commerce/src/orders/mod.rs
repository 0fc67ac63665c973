//! Orders: a user's `HELD` reservations, with an optional coupon, on their
//! way to being paid. `model` holds the totals and the lifecycle, `store`
//! the tables (SQLite and PostgreSQL), `service` the use cases (place, read,
//! the expiry sweep), `http` the routes.
//!
//! Placing an order moves its reservations `HELD → ORDERED` and sets its
//! coupon aside, all in one transaction, each by a conditional update: a
//! hold that expired or was released meanwhile fails the whole order. An
//! unpaid order past its payment window becomes `EXPIRED` by a conditional
//! update of its own status, in the same transaction as its reservations
//! and coupon; only that caller gives the units back.

pub mod http;
pub mod model;
pub mod payment;
pub mod service;
pub mod store;

pub use model::{NewOrder, Order, OrderStatus, PaymentStatus};
pub use service::OrderService;
pub use store::{OrderStore, SqlOrderStore};
