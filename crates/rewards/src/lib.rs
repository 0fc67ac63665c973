//! Rewards: events with a lifecycle and a period, a reward catalogue,
//! rewards attached to events behind a condition, and reward requests.
//!
//! `model` holds the types and rules, with no I/O.
#![forbid(unsafe_code)]

pub mod model;
