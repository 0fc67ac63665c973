//! Rate limiting with GCRA (the generic cell rate algorithm): per key, one
//! stored instant — the theoretical arrival time (TAT) — says when the bucket
//! is next empty. It is exact, needs no timers, and ports to a Redis script
//! as the same few lines.
//!
//! Written here rather than taken from `governor` because login throttling
//! needs [`RateLimiter::peek`] (ask without spending) and a Redis-backed twin
//! must compute exactly the same answers; see `docs/adr/0004-rate-limiting.md`.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

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

const SHARDS: usize = 32;
/// A shard this large is swept of keys whose bucket is full again.
const SWEEP_AT: usize = 4_096;

/// GCRA in process memory, sharded to keep lock contention low.
#[derive(Debug)]
pub struct MemoryRateLimiter {
    origin: Instant,
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<String, u128>>>,
}

impl Default for MemoryRateLimiter {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

impl MemoryRateLimiter {
    fn decide(&self, key: &str, quota: Quota, spend: bool) -> Result<(), Limited> {
        let now = self.origin.elapsed().as_nanos();
        let shard = &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS];
        let mut map = shard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tat = map.get(key).copied().unwrap_or(now).max(now);
        let new_tat = tat + quota.interval_nanos();
        let allow_at = new_tat.saturating_sub(quota.window_nanos());
        if allow_at > now {
            let wait = u64::try_from(allow_at - now).unwrap_or(u64::MAX);
            return Err(Limited {
                retry_after: Duration::from_nanos(wait),
            });
        }
        if spend {
            if map.len() >= SWEEP_AT {
                map.retain(|_, t| *t > now);
            }
            map.insert(key.to_owned(), new_tat);
        }
        Ok(())
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn acquire(&self, key: &str, quota: Quota) -> Result<(), Limited> {
        self.decide(key, quota, true)
    }

    async fn peek(&self, key: &str, quota: Quota) -> Result<(), Limited> {
        self.decide(key, quota, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_is_allowed_then_refused_with_a_wait() {
        let limiter = MemoryRateLimiter::default();
        let quota = Quota::per_period(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(limiter.acquire("k", quota).await.is_ok());
        }
        let refused = limiter
            .acquire("k", quota)
            .await
            .expect_err("fourth is over the burst");
        assert!(refused.retry_after > Duration::from_secs(19));
        assert!(refused.retry_after <= Duration::from_secs(20));
        assert_eq!(refused.retry_after_secs(), 20);
    }

    #[tokio::test]
    async fn keys_are_independent() {
        let limiter = MemoryRateLimiter::default();
        let quota = Quota::per_period(1, Duration::from_secs(60));
        assert!(limiter.acquire("a", quota).await.is_ok());
        assert!(limiter.acquire("a", quota).await.is_err());
        assert!(limiter.acquire("b", quota).await.is_ok());
    }

    #[tokio::test]
    async fn peek_spends_nothing() {
        let limiter = MemoryRateLimiter::default();
        let quota = Quota::per_period(1, Duration::from_secs(60));
        for _ in 0..5 {
            assert!(limiter.peek("k", quota).await.is_ok());
        }
        assert!(limiter.acquire("k", quota).await.is_ok());
        assert!(limiter.peek("k", quota).await.is_err());
    }

    #[tokio::test]
    async fn units_refill_over_time() {
        let limiter = MemoryRateLimiter::default();
        let quota = Quota::per_period(2, Duration::from_millis(100));
        assert!(limiter.acquire("k", quota).await.is_ok());
        assert!(limiter.acquire("k", quota).await.is_ok());
        assert!(limiter.acquire("k", quota).await.is_err());
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(limiter.acquire("k", quota).await.is_ok());
    }
}
