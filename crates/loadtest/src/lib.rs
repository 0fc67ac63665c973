//! `stampede-loadtest`: rush scenarios against a Stampede server on this
//! machine, with the stock invariants checked through the API afterwards.
//!
//! `target` refuses anything but loopback, `conn` is one keep-alive
//! connection, `steps` what is measured per kind of request, `api` the
//! calls around a rush, `rush` the coupon and healthz window, `checks` its
//! invariants, `tickets` and `line` the two multi-step scenarios with
//! theirs, `report` the result and `scenario` a whole run.
#![forbid(unsafe_code)]

pub mod api;
pub mod checks;
pub mod cli;
pub mod conn;
pub mod line;
pub mod report;
pub mod rush;
pub mod scenario;
pub mod steps;
pub mod target;
pub mod tickets;
