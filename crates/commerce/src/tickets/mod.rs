//! Tickets: issued when an order is paid, one per unit, each with an
//! unguessable code. `model` holds the ticket and its code, `store` the
//! tables (SQLite and PostgreSQL), `service` the use cases, `http` the
//! routes.

pub mod http;
pub mod model;
pub mod service;
pub mod store;

pub use model::{CheckIn, CheckInResult, NewCheckIn, Ticket, TicketCode, TicketId, TicketStatus};
pub use service::TicketService;
pub use store::{SqlTicketStore, TicketStore};
