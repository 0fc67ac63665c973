//! Rate limiting with GCRA (the generic cell rate algorithm): per key, one
//! stored instant — the theoretical arrival time (TAT) — says when the bucket
//! is next empty. It is exact, needs no timers, and ports to a Redis script
//! as the same few lines.
//!
//! Written here rather than taken from `governor` because login throttling
//! needs [`RateLimiter::peek`] (ask without spending) and a Redis-backed twin
//! must compute exactly the same answers; see `docs/adr/0004-rate-limiting.md`.
//!
//! [`MemoryRateLimiter`] keeps the instants in process memory;
//! [`RedisRateLimiter`] keeps them in Redis, so several instances share the
//! limits.

mod memory;
mod redis;

use std::time::Duration;

use async_trait::async_trait;

pub use self::memory::MemoryRateLimiter;
pub use self::redis::RedisRateLimiter;

/// How much traffic a key may send: `burst` at once, refilled evenly so that
/// `burst` more are allowed per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub burst: u32,
    pub period: Duration,
}

impl Quota {
    /// `n` per second, with bursts of up to `n`.
    #[must_use]
    pub fn per_second(n: u32) -> Self {
        Self {
            burst: n.max(1),
            period: Duration::from_secs(1),
        }
    }

    /// `n` per `period`, with bursts of up to `n`.
    #[must_use]
    pub fn per_period(n: u32, period: Duration) -> Self {
        Self {
            burst: n.max(1),
            period,
        }
    }

    /// Time for one unit to refill.
    fn interval_nanos(self) -> u128 {
        (self.period.as_nanos() / u128::from(self.burst.max(1))).max(1)
    }

    fn window_nanos(self) -> u128 {
        self.interval_nanos() * u128::from(self.burst.max(1))
    }
}

/// Refused: try again after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
}

impl Limited {
    /// Whole seconds to wait, rounded up, at least one (for `Retry-After`).
    #[must_use]
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0)
    }
}

/// A keyed rate limiter.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Spends one unit of `key`'s quota, or says how long to wait.
    async fn acquire(&self, key: &str, quota: Quota) -> Result<(), Limited>;

    /// Says whether [`acquire`](Self::acquire) would succeed, spending nothing.
    async fn peek(&self, key: &str, quota: Quota) -> Result<(), Limited>;
}
