//! GCRA in process memory, for one instance (and the Redis limiter's
//! fallback while Redis is away).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Limited, Quota, RateLimiter};

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
