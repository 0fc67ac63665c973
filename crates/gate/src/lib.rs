//! Coordination on the hot path, behind traits so one process can keep it in
//! memory and several instances can share it through Redis.
#![forbid(unsafe_code)]

pub mod rate;
pub mod stock;

pub use rate::{Limited, MemoryRateLimiter, Quota, RateLimiter};
pub use stock::{
    GiveBackError, Limits, MemoryStockGate, PoolId, Refusal, Snapshot, StockGate, StockLoader,
    Unavailable,
};
