//! The `stampede` server: configuration, composition of every module into
//! one HTTP stack, start-up and graceful shutdown.
#![forbid(unsafe_code)]

pub mod config;
pub mod modules;
pub mod openapi;
pub mod ops;
pub mod router;
pub mod serve;
pub mod startup;
pub mod stock;
pub mod telemetry;
pub mod workers;

pub use config::Settings;
pub use modules::Modules;
pub use startup::{Application, StartError};
