//! The contracts between modules: every message on the bus, with the ids it
//! carries, by the module that owns it. A module crate depends on this crate
//! to speak to another module, never on the other module's crate (a test,
//! `server/tests/boundaries.rs`, keeps it so). Each message is listed with
//! its topic and version in `docs/messages.md`; a change to a message's
//! shape is a new version.
#![forbid(unsafe_code)]

pub mod commerce;
pub mod identity;
pub mod park;
pub mod rewards;
