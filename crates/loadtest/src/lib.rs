//! `stampede-loadtest`: rush scenarios against a Stampede server on this
//! machine, with the stock invariants checked through the API afterwards.
//!
//! `target` refuses anything but loopback, `conn` is one keep-alive
//! connection, `api` the calls around a rush, `rush` the timed window,
//! `checks` the invariants, `report` the result and `scenario` a whole run.
#![forbid(unsafe_code)]

pub mod api;
pub mod checks;
pub mod cli;
pub mod conn;
pub mod report;
pub mod rush;
pub mod scenario;
pub mod target;
