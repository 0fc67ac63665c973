//! Reservations: holds of a product's units for one user, taken all or none
//! on the product's stock-gate pool. `model` holds the rules, `store` the
//! table (SQLite and PostgreSQL), `stock` the products' pools, `service` the
//! use cases (hold, release, the expiry sweep), `http` the routes.
//!
//! Every move out of a status that holds units (`HELD`, `ORDERED`) back to
//! the pool is a conditional update from the status it was read in: only
//! the caller whose update changed the row gives the units back, so each
//! unit comes back exactly once whoever runs first.

pub mod http;
pub mod model;
pub mod service;
pub mod stock;
pub mod store;

pub use model::{NewReservation, Reservation, ReservationId, ReservationStatus};
pub use service::ReservationService;
pub use stock::{ProductStockLoader, product_pool};
pub use store::{ReservationStore, SqlReservationStore};
