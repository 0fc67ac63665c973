//! The `stampede` server: configuration, composition of every module into
//! one HTTP stack, start-up and graceful shutdown.
#![forbid(unsafe_code)]

pub mod app;
pub mod config;
pub mod openapi;
pub mod stock;
pub mod telemetry;

pub use app::{Application, Modules, StartError};
pub use config::Settings;
