//! The gate crate's suites, each run on every backend available here (see
//! `support`): stock gates and rate limiters.

#[macro_use]
mod support;
mod rate;
mod stock;
