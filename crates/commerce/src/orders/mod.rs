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
//!
//! What orders announce (`messages`) is enqueued in the transaction of the
//! change it announces: `commerce.order_paid` with `PAID`,
//! `commerce.order_cancelled` with the cancel; a paid order's refund is a
//! command on the outbox, carried out by `refunds`.

pub mod http;
pub mod messages;
pub mod model;
pub mod payment;
pub mod refunds;
pub mod service;
pub mod store;

pub use model::{NewOrder, Order, OrderHistory, OrderStatus, PaymentStatus, RefundStatus};
pub use refunds::RefundOrders;
pub use service::OrderService;
pub use store::{OrderStore, SqlOrderStore};
