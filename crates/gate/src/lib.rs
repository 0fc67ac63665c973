//! Coordination on the hot path, behind traits so one process can keep it in
//! memory and several instances can share it through Redis (or, for stock,
//! through PostgreSQL alone).
#![forbid(unsafe_code)]

pub mod rate;
pub mod reconcile;
mod redis_connection;
pub mod stock;

pub use rate::{Limited, MemoryRateLimiter, Quota, RateLimiter, RedisRateLimiter};
pub use reconcile::{
    ModuleStock, PoolCheck, PoolLister, PoolSet, Report, Verdict, pool_sets, reconcile,
};
pub use redis_connection::RedisConnection;
pub use stock::{
    CLAIM_WRITE_TIMEOUT, ClaimError, GiveBackError, Holder, Limits, MemoryStockGate, PgStockGate,
    PoolId, RedisStockGate, Refusal, Snapshot, StaleClaim, StockClaim, StockGate, StockLoader,
    SweepReport, Taken, Unavailable, Written, stock_migrations, sweep,
};
