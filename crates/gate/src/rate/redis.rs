//! GCRA in Redis, so that every instance sharing the Redis and the key
//! prefix shares each key's quota.
//!
//! One Lua script reads the key's theoretical arrival time, decides, and
//! stores the new one, all in one step; it reads the time from Redis, so
//! instances whose clocks disagree still agree on the limits. Instants are
//! whole microseconds since the epoch (exact in Lua's doubles). A key
//! expires when its bucket is full again, when it would mean nothing.
//!
//! While Redis cannot be reached, each instance limits on its own with a
//! [`MemoryRateLimiter`]: limits loosen to one quota per instance, rather
//! than every request failing or none being limited.

use std::fmt;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ::redis::Script;
use async_trait::async_trait;

use super::{Limited, MemoryRateLimiter, Quota, RateLimiter};
use crate::redis_connection::RedisConnection;
use crate::stock::Unavailable;

/// KEYS[1] the key's theoretical arrival time; ARGV[1] the interval and
/// ARGV[2] the window (burst × interval) in microseconds, ARGV[3] '1' to
/// spend. Answers 0 when allowed, else the microseconds to wait.
static GCRA: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local clock = redis.call('time')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = math.max(tonumber(redis.call('get', KEYS[1]) or now), now)
local new_tat = tat + tonumber(ARGV[1])
local allow_at = new_tat - tonumber(ARGV[2])
if allow_at > now then return allow_at - now end
if ARGV[3] == '1' then
  redis.call('set', KEYS[1], string.format('%.0f', new_tat),
             'px', string.format('%.0f', math.ceil((new_tat - now) / 1000)))
end
return 0
",
    )
});

/// A keyed GCRA rate limiter in Redis, keys under `<prefix>:rate:`.
pub struct RedisRateLimiter {
    connection: RedisConnection,
    prefix: String,
    fallback: MemoryRateLimiter,
    /// Whether the last call had to use the fallback; logs only the changes.
    degraded: AtomicBool,
}

impl RedisRateLimiter {
    /// Connects to the Redis at `url` and keeps keys under `prefix`.
    pub async fn connect(url: &str, prefix: impl Into<String>) -> Result<Self, Unavailable> {
        Ok(Self::new(RedisConnection::connect(url).await?, prefix))
    }

    /// A limiter over a connection shared with other users of Redis.
    #[must_use]
    pub fn new(connection: RedisConnection, prefix: impl Into<String>) -> Self {
        Self {
            connection,
            prefix: prefix.into(),
            fallback: MemoryRateLimiter::default(),
            degraded: AtomicBool::new(false),
        }
    }

    async fn decide(&self, key: &str, quota: Quota, spend: bool) -> Result<(), Limited> {
        let interval = micros(quota.interval_nanos());
        let window = interval.saturating_mul(u64::from(quota.burst.max(1)));
        let answer = GCRA
            .key(format!("{}:rate:{key}", self.prefix))
            .arg(interval)
            .arg(window)
            .arg(if spend { "1" } else { "0" })
            .invoke_async::<u64>(&mut self.connection.handle())
            .await;
        match answer {
            Ok(wait) => {
                if self.degraded.swap(false, Ordering::Relaxed) {
                    tracing::info!("rate limits are shared through Redis again");
                }
                match wait {
                    0 => Ok(()),
                    wait => Err(Limited {
                        retry_after: Duration::from_micros(wait),
                    }),
                }
            }
            Err(e) => {
                if !self.degraded.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "Redis unreachable: rate limits are per instance until it is back");
                }
                if spend {
                    self.fallback.acquire(key, quota).await
                } else {
                    self.fallback.peek(key, quota).await
                }
            }
        }
    }
}

impl fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn acquire(&self, key: &str, quota: Quota) -> Result<(), Limited> {
        self.decide(key, quota, true).await
    }

    async fn peek(&self, key: &str, quota: Quota) -> Result<(), Limited> {
        self.decide(key, quota, false).await
    }
}

/// Nanoseconds as whole microseconds, rounded up, at least one.
fn micros(nanos: u128) -> u64 {
    u64::try_from(nanos.div_ceil(1_000))
        .unwrap_or(u64::MAX)
        .max(1)
}
