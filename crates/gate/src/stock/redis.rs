//! The stock gate in Redis, shared by every instance that uses the same
//! Redis and key prefix.
//!
//! A pool is two hashes that share the `{pool}` hash tag, so a cluster keeps
//! them in one slot and one script may touch both:
//!
//! - `<prefix>:stock:{<pool>}` — `taken`, and `stock` and `per_user` when
//!   limited (a missing field is unlimited);
//! - `<prefix>:stock:{<pool>}:users` — units held per user, kept only when
//!   the pool has a per-user limit.
//!
//! Takes and give-backs are Lua scripts, so the check and the change happen
//! in one step that no other instance can interleave with. A pool whose keys
//! are absent is loaded through the [`StockLoader`] and installed by a script
//! that writes only if the keys are still absent: instances racing to load
//! never double-count, and takes another instance made after installing are
//! never overwritten. The keys have no expiry; [`StockGate::forget`] removes
//! them.
//!
//! Lua numbers are doubles: counts stay exact up to 2^53.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, LazyLock};

use ::redis::Script;
use async_trait::async_trait;

use super::loading::Loads;
use super::{
    GiveBackError, Limits, PoolId, Refusal, Snapshot, StockGate, StockLoader, Unavailable,
    zero_quantity,
};
use crate::redis_connection::{RedisConnection, unavailable};

/// What the take and give-back scripts answer for a pool whose keys are
/// absent.
const ABSENT: i64 = -1;
/// The take script's answers.
const TAKEN: i64 = 1;
const SOLD_OUT: i64 = 0;
const LIMIT_REACHED: i64 = 2;

/// KEYS[1] the pool's counters, KEYS[2] its per-user counts; ARGV[1] the
/// user, ARGV[2] the quantity. The stock is checked first, so a take larger
/// than what is left is sold out whatever the user holds.
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local pool = redis.call('hmget', KEYS[1], 'taken', 'stock', 'per_user')
if not pool[1] then return -1 end
local quantity = tonumber(ARGV[2])
if pool[2] and tonumber(pool[1]) + quantity > tonumber(pool[2]) then return 0 end
if pool[3] then
  local held = tonumber(redis.call('hget', KEYS[2], ARGV[1]) or 0)
  if held + quantity > tonumber(pool[3]) then return 2 end
  redis.call('hincrby', KEYS[2], ARGV[1], ARGV[2])
end
redis.call('hincrby', KEYS[1], 'taken', ARGV[2])
return 1
",
    )
});

/// Keys and arguments as for [`TAKE`]. Answers the units that went back:
/// no more than the user holds (when counted per user), nor than the pool
/// counts as taken.
static GIVE_BACK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local pool = redis.call('hmget', KEYS[1], 'taken', 'per_user')
if not pool[1] then return -1 end
local back = tonumber(ARGV[2])
if pool[2] then
  local held = tonumber(redis.call('hget', KEYS[2], ARGV[1]) or 0)
  if back >= held then
    back = held
    redis.call('hdel', KEYS[2], ARGV[1])
  else
    redis.call('hincrby', KEYS[2], ARGV[1], -back)
  end
end
back = math.min(back, tonumber(pool[1]))
if back > 0 then redis.call('hincrby', KEYS[1], 'taken', -back) end
return back
",
    )
});

/// Writes a pool's limits and counters, replacing whatever was there.
/// KEYS as for [`TAKE`]; ARGV[1] taken, ARGV[2] the stock and ARGV[3] the
/// per-user limit ('' for none), then user and count pairs, written a
/// thousand arguments at a time (Lua's stack bounds `unpack`).
macro_rules! write_pool_lua {
    () => {
        r"
redis.call('del', KEYS[1], KEYS[2])
redis.call('hset', KEYS[1], 'taken', ARGV[1])
if ARGV[2] ~= '' then redis.call('hset', KEYS[1], 'stock', ARGV[2]) end
if ARGV[3] ~= '' then redis.call('hset', KEYS[1], 'per_user', ARGV[3]) end
for i = 4, #ARGV, 1000 do
  redis.call('hset', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
return 1
"
    };
}

/// Replaces a pool's counters: [`StockGate::reset`].
static RESET: LazyLock<Script> = LazyLock::new(|| Script::new(write_pool_lua!()));

/// Writes a loaded pool only if its keys are still absent; answers 0 if they
/// were there.
static INSTALL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        "if redis.call('exists', KEYS[1]) == 1 then return 0 end\n",
        write_pool_lua!()
    ))
});

/// Stock gate counters in Redis, loaded from the database through a
/// [`StockLoader`] the first time any instance sees a pool.
///
/// When Redis cannot be reached or does not answer within a second, calls
/// fail with [`Refusal::Unavailable`] / [`Unavailable`]. A take that timed
/// out may still have been applied; its unit then stays counted as taken
/// until reconciliation resets the pool from the database, which errs on the
/// side of selling one unit less, never one more.
pub struct RedisStockGate {
    connection: RedisConnection,
    prefix: String,
    loads: Loads,
}

impl RedisStockGate {
    /// Connects to the Redis at `url` and keeps pools under `prefix` (no
    /// braces in it: they would change the keys' hash tag).
    pub async fn connect(
        url: &str,
        prefix: impl Into<String>,
        loader: Arc<dyn StockLoader>,
    ) -> Result<Self, Unavailable> {
        let connection = RedisConnection::connect(url).await?;
        Ok(Self::new(connection, prefix, loader))
    }

    /// A gate over a connection shared with other users of Redis, keeping
    /// pools under `prefix`.
    #[must_use]
    pub fn new(
        connection: RedisConnection,
        prefix: impl Into<String>,
        loader: Arc<dyn StockLoader>,
    ) -> Self {
        Self {
            connection,
            prefix: prefix.into(),
            loads: Loads::new(loader),
        }
    }

    fn keys(&self, pool: &PoolId) -> PoolKeys {
        let counters = format!("{}:stock:{{{pool}}}", self.prefix);
        let users = format!("{counters}:users");
        PoolKeys { counters, users }
    }

    /// Runs `script` over the pool's keys with the user and quantity.
    async fn run(
        &self,
        script: &Script,
        keys: &PoolKeys,
        user: &str,
        quantity: u32,
    ) -> Result<i64, Unavailable> {
        script
            .key(&keys.counters)
            .key(&keys.users)
            .arg(user)
            .arg(quantity)
            .invoke_async(&mut self.connection.handle())
            .await
            .map_err(unavailable)
    }

    /// Writes the pool with `script` ([`RESET`] or [`INSTALL`]).
    async fn write(
        &self,
        script: &Script,
        keys: &PoolKeys,
        limits: Limits,
        snapshot: Snapshot,
    ) -> Result<(), Unavailable> {
        let mut invocation = script.key(&keys.counters);
        invocation
            .key(&keys.users)
            .arg(snapshot.taken)
            .arg(limits.stock.map(|n| n.to_string()).unwrap_or_default())
            .arg(limits.per_user.map(|n| n.to_string()).unwrap_or_default());
        if limits.per_user.is_some() {
            for (user, held) in snapshot.by_user.iter().filter(|(_, n)| **n > 0) {
                invocation.arg(user).arg(held);
            }
        }
        invocation
            .invoke_async::<i64>(&mut self.connection.handle())
            .await
            .map(drop)
            .map_err(unavailable)
    }

    /// Runs `call` (which answers `None` for a pool Redis does not have),
    /// loading and installing the pool first if need be.
    async fn on_loaded<T, C>(
        &self,
        pool: &PoolId,
        keys: &PoolKeys,
        call: impl Fn() -> C,
    ) -> Result<T, Unavailable>
    where
        C: Future<Output = Result<Option<T>, Unavailable>>,
    {
        let install =
            |limits, snapshot| async move { self.write(&INSTALL, keys, limits, snapshot).await };
        self.loads.on_loaded(pool, call, install).await
    }
}

impl fmt::Debug for RedisStockGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStockGate")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// A pool's two keys.
struct PoolKeys {
    counters: String,
    users: String,
}

#[async_trait]
impl StockGate for RedisStockGate {
    async fn take(&self, pool: &PoolId, user: &str, quantity: u32) -> Result<(), Refusal> {
        if quantity == 0 {
            return Err(zero_quantity(pool));
        }
        let keys = self.keys(pool);
        let answer = self
            .on_loaded(pool, &keys, || async {
                let answer = self.run(&TAKE, &keys, user, quantity).await?;
                Ok((answer != ABSENT).then_some(answer))
            })
            .await?;
        match answer {
            TAKEN => Ok(()),
            SOLD_OUT => Err(Refusal::SoldOut),
            LIMIT_REACHED => Err(Refusal::LimitReached),
            other => Err(Refusal::Unavailable(format!(
                "redis: unexpected answer {other} from the take script"
            ))),
        }
    }

    async fn give_back(
        &self,
        pool: &PoolId,
        user: &str,
        quantity: u32,
    ) -> Result<(), GiveBackError> {
        if quantity == 0 {
            return Ok(());
        }
        let keys = self.keys(pool);
        let returned = self
            .run(&GIVE_BACK, &keys, user, quantity)
            .await
            .map_err(|e| GiveBackError::Unavailable(e.0))?;
        // An absent pool is left to the database, which already counts the
        // unit as given back; the pool loads from there.
        if returned == ABSENT {
            return Ok(());
        }
        let returned = u32::try_from(returned).unwrap_or(0);
        if returned < quantity {
            return Err(GiveBackError::Excess {
                requested: quantity,
                returned,
            });
        }
        Ok(())
    }

    async fn remaining(&self, pool: &PoolId) -> Result<Option<u64>, Unavailable> {
        let keys = self.keys(pool);
        self.on_loaded(pool, &keys, || async {
            let (taken, stock): (Option<u64>, Option<u64>) = ::redis::cmd("HMGET")
                .arg(&keys.counters)
                .arg("taken")
                .arg("stock")
                .query_async(&mut self.connection.handle())
                .await
                .map_err(unavailable)?;
            Ok(taken.map(|taken| stock.map(|stock| stock.saturating_sub(taken))))
        })
        .await
    }

    async fn reset(
        &self,
        pool: &PoolId,
        limits: Limits,
        snapshot: Snapshot,
    ) -> Result<(), Unavailable> {
        self.write(&RESET, &self.keys(pool), limits, snapshot).await
    }

    async fn counters(&self, pool: &PoolId) -> Result<Option<(Limits, Snapshot)>, Unavailable> {
        let keys = self.keys(pool);
        let (counters, by_user): (HashMap<String, String>, HashMap<String, u32>) = ::redis::pipe()
            .atomic()
            .hgetall(&keys.counters)
            .hgetall(&keys.users)
            .query_async(&mut self.connection.handle())
            .await
            .map_err(unavailable)?;
        if counters.is_empty() {
            return Ok(None);
        }
        let field = |name: &str| {
            counters
                .get(name)
                .map(|value| parse(&keys, name, value))
                .transpose()
        };
        let limits = Limits {
            stock: field("stock")?,
            per_user: field("per_user")?
                .map(u32::try_from)
                .transpose()
                .map_err(|_| {
                    Unavailable(format!(
                        "redis: {} holds a per-user limit beyond u32",
                        keys.counters
                    ))
                })?,
        };
        let taken = field("taken")?.unwrap_or(0);
        Ok(Some((limits, Snapshot { taken, by_user })))
    }

    async fn forget(&self, pool: &PoolId) -> Result<(), Unavailable> {
        let keys = self.keys(pool);
        ::redis::cmd("DEL")
            .arg(&keys.counters)
            .arg(&keys.users)
            .query_async::<i64>(&mut self.connection.handle())
            .await
            .map_err(unavailable)?;
        self.loads.forget(pool);
        Ok(())
    }
}

/// One count from a pool's hash.
fn parse(keys: &PoolKeys, name: &str, value: &str) -> Result<u64, Unavailable> {
    u64::from_str(value).map_err(|_| {
        Unavailable(format!(
            "redis: {} holds {name} = {value:?}, not a count",
            keys.counters
        ))
    })
}
