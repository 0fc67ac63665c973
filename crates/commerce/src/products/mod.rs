//! Products on sale: what they are, what they cost, how many there are, who
//! may buy how many and when. `model` holds the rules, `store` the table
//! (SQLite and PostgreSQL), `service` the use cases, `http` the routes.
//! Reservations and orders build on them.

pub mod http;
pub mod model;
pub mod service;
pub mod store;

pub use model::{NewProduct, Product, ProductId, ProductKind, ProductPatch, ProductView};
pub use service::ProductService;
pub use store::{ProductStore, SqlProductStore};
