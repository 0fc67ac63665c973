//! Waiting lists of sold-out products: join with a quantity, see your live
//! rank, leave; when units come back the first entry they fit gets a `HELD`
//! reservation of its own for `waiting_list_offer_seconds` and an email
//! (`commerce.waiting_list_offered`). `model` holds the rules, `store` the
//! table (SQLite and PostgreSQL), `service` the use cases and the offer
//! worker, `http` the routes. ADR 0024 says why returned units reach the
//! list before the public.

pub mod http;
pub mod model;
pub mod service;
pub mod store;

pub use model::{EntryStatus, NewEntry, WaitingListEntry, WaitingListEntryId};
pub use service::WaitlistService;
pub use store::{SqlWaitlistStore, WaitlistStore};
