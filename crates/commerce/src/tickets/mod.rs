//! Tickets: issued when an order is paid, one per unit, each with an
//! unguessable code. `model` holds the ticket and its code, `store` the
//! table (SQLite and PostgreSQL), `http` the routes.

pub mod http;
pub mod model;
pub mod store;

pub use model::{CheckIn, CheckInResult, NewCheckIn, Ticket, TicketCode, TicketId, TicketStatus};
pub use store::{SqlTicketStore, TicketStore};
