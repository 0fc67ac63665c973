//! The HTTP layer every module shares. Each piece is a middleware or a
//! handler the server composes into one stack (`server::app`):
//!
//! request id → trace → problem+json normaliser → metrics → client address →
//! authentication → rate limit → routes (some with idempotency).
#![forbid(unsafe_code)]

pub mod authn;
pub mod body;
pub mod client;
pub mod cookie;
pub mod idempotency;
pub mod metrics;
pub mod problems;
pub mod rate_limit;

pub use idempotency::Idempotency;
