//! The stock gate in Redis, shared by every instance that uses the same
//! Redis and key prefix.
//!
//! A pool is three keys that share the `{pool}` hash tag, so a cluster keeps
//! them in one slot and one script may touch them all:
//!
//! - `<prefix>:stock:{<pool>}` — `taken`, and `stock` and `per_user` when
//!   limited (a missing field is unlimited);
//! - `<prefix>:stock:{<pool>}:users` — units held per user, kept only when
//!   the pool has a per-user limit;
//! - `<prefix>:stock:{<pool>}:leases` — each unsettled claim's
//!   `quantity:user:taken at` (Redis time, in milliseconds).
//!
//! A claim costs Redis three hash writes: the user's count and the lease in
//! the take, the lease's removal in the settle (a plain `HDEL`, many claims
//! at once). The lease carries its own time, so finding stale leases scans
//! the leases hash, which holds only claims not yet settled; a sorted set of
//! the times would cost every claim two more writes for the sake of a
//! sweep that runs every few seconds (ADR 0009).
//!
//! `<prefix>:stock:leased_pools` names the pools that have had leases, so
//! that finding stale leases reads those pools' leases and nothing
//! else. It lives outside the pools' slots, so it is added to apart from the
//! take (once per pool per process, before the first take under a lease).
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

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use ::redis::Script;
use async_trait::async_trait;
use kernel::batch::Batcher;

use super::loading::Loads;
use super::{
    GiveBackError, Limits, PoolId, Refusal, Snapshot, StaleClaim, StockGate, StockLoader, Taken,
    Unavailable, zero_quantity,
};
use crate::redis_connection::{RedisConnection, unavailable};

/// What the take and give-back scripts answer for a pool whose keys are
/// absent.
const ABSENT: i64 = -1;
/// What the give-back through a lease answers when the lease is gone.
const NO_LEASE: i64 = -2;
/// The take script's refusals. A take that went through answers the units
/// the user holds after it, or [`TAKEN_UNCOUNTED`].
const SOLD_OUT: i64 = -3;
const LIMIT_REACHED: i64 = -4;
/// A take that went through on a pool without a per-user limit, where
/// nobody's units are counted.
const TAKEN_UNCOUNTED: i64 = 0;

/// Takes, many of one pool at once. KEYS[1] the pool's counters, KEYS[2]
/// its per-user counts, KEYS[3] its leases; ARGV holds (user, quantity,
/// claim) triples, answered in turn in an array ([`SOLD_OUT`],
/// [`LIMIT_REACHED`], or for a take that went through the units the user
/// then holds, [`TAKEN_UNCOUNTED`] on a pool without a per-user limit). The
/// stock is checked first, so a take larger than what is left is sold out
/// whatever the user holds. The user's count is raised first and lowered
/// again if that passed the limit: one write for a take that goes through,
/// the common case under a rush, instead of a read and a write. A take with
/// a claim ('' for none) is leased under it: `quantity:user:taken at` in
/// KEYS[3], the time Redis's own in milliseconds. A pool whose keys are
/// absent answers [`ABSENT`] for every take.
static TAKES: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local pool = redis.call('hmget', KEYS[1], 'taken', 'stock', 'per_user')
local answers = {}
if not pool[1] then
  for i = 1, #ARGV, 3 do answers[#answers + 1] = -1 end
  return answers
end
local taken_before = tonumber(pool[1])
local taken = taken_before
local stock = pool[2] and tonumber(pool[2])
local per_user = pool[3] and tonumber(pool[3])
local now = redis.call('time')
local at = now[1] * 1000 + math.floor(now[2] / 1000)
for i = 1, #ARGV, 3 do
  local user, quantity, claim = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  local answer = 0
  if stock and taken + quantity > stock then
    answer = -3
  elseif per_user then
    answer = redis.call('hincrby', KEYS[2], user, quantity)
    if answer > per_user then
      if redis.call('hincrby', KEYS[2], user, -quantity) <= 0 then
        redis.call('hdel', KEYS[2], user)
      end
      answer = -4
    end
  end
  if answer >= 0 then
    taken = taken + quantity
    if claim ~= '' then
      redis.call('hset', KEYS[3], claim, ARGV[i + 1] .. ':' .. user .. ':' .. at)
    end
  end
  answers[#answers + 1] = answer
end
if taken ~= taken_before then redis.call('hincrby', KEYS[1], 'taken', taken - taken_before) end
return answers
",
    )
});

/// KEYS as for [`TAKES`]; ARGV[1] the user, ARGV[2] the quantity. Answers
/// the units that went back:
/// no more than the user holds (when counted per user), nor than the pool
/// counts as taken.
macro_rules! give_back_lua {
    () => {
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
"
    };
}

static GIVE_BACK: LazyLock<Script> = LazyLock::new(|| Script::new(give_back_lua!()));

/// [`GIVE_BACK`] through the lease of claim ARGV[3]: only the call that
/// removes the lease gives back; any other answers [`NO_LEASE`].
static GIVE_BACK_CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        "if redis.call('hdel', KEYS[3], ARGV[3]) == 0 then return -2 end\n",
        give_back_lua!()
    ))
});

/// The most stale leases read from one pool per sweep.
const STALE_BATCH: usize = 1000;
/// Leases asked for per `HSCAN` call while looking for stale ones.
const LEASE_SCAN_COUNT: usize = 1000;

/// Writes a pool's limits and counters, replacing whatever was there.
/// KEYS as for [`TAKES`] (the leases are cleared);
/// ARGV[1] taken, ARGV[2] the stock and ARGV[3] the
/// per-user limit ('' for none), then user and count pairs, written a
/// thousand arguments at a time (Lua's stack bounds `unpack`).
macro_rules! write_pool_lua {
    () => {
        r"
redis.call('del', KEYS[1], KEYS[2], KEYS[3])
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
/// until its lease is swept (a take under a lease) or reconciliation resets
/// the pool from the database, which errs on the side of selling one unit
/// less, never one more.
pub struct RedisStockGate {
    connection: RedisConnection,
    prefix: String,
    loads: Loads,
    /// Pools this process has added to the set of leased pools.
    leased_pools: Mutex<HashSet<PoolId>>,
    /// Takes under leases, sent to Redis together ([`TAKES`]).
    claim_takes: Batcher<Take, Result<i64, Unavailable>>,
}

/// One take for [`TAKES`].
struct Take {
    pool: PoolId,
    user: String,
    quantity: u32,
    /// The lease's claim; empty for a take without a lease.
    claim: String,
}

impl Take {
    fn new(pool: &PoolId, user: &str, quantity: u32, claim: &str) -> Self {
        Self {
            pool: pool.clone(),
            user: user.to_owned(),
            quantity,
            claim: claim.to_owned(),
        }
    }
}

/// Most takes sent to Redis in one call.
const CLAIM_TAKE_BATCH: usize = 256;
/// Calls of [`TAKES`] at once: one in Redis while the next forms.
const CLAIM_TAKES_IN_FLIGHT: usize = 2;

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
    /// pools under `prefix`. Call it within a Tokio runtime: takes under
    /// leases are batched by a task on it.
    #[must_use]
    pub fn new(
        connection: RedisConnection,
        prefix: impl Into<String>,
        loader: Arc<dyn StockLoader>,
    ) -> Self {
        let prefix = prefix.into();
        // Under a rush every claim takes: one script call per batch of
        // takes rather than per take spares Redis and both sides' sockets
        // most of their per-call work.
        let claim_takes = Batcher::start(CLAIM_TAKE_BATCH, CLAIM_TAKES_IN_FLIGHT, {
            let (connection, prefix) = (connection.clone(), prefix.clone());
            move |takes| take_claims(connection.clone(), prefix.clone(), takes)
        });
        Self {
            connection,
            prefix,
            loads: Loads::new(loader),
            leased_pools: Mutex::new(HashSet::new()),
            claim_takes,
        }
    }

    fn keys(&self, pool: &PoolId) -> PoolKeys {
        PoolKeys::of(&self.prefix, pool)
    }

    /// The set of pools that have had leases.
    fn leased_pools_key(&self) -> String {
        format!("{}:stock:leased_pools", self.prefix)
    }

    /// Runs `script` over the pool's keys with the user, the quantity and,
    /// for the lease scripts, the claim.
    async fn run(
        &self,
        script: &Script,
        keys: &PoolKeys,
        user: &str,
        quantity: u32,
        claim: Option<&str>,
    ) -> Result<i64, Unavailable> {
        let mut invocation = script.key(&keys.counters);
        invocation
            .key(&keys.users)
            .key(&keys.leases)
            .arg(user)
            .arg(quantity);
        if let Some(claim) = claim {
            invocation.arg(claim);
        }
        invocation
            .invoke_async(&mut self.connection.handle())
            .await
            .map_err(unavailable)
    }

    /// Adds the pool to the set of leased pools, once per process.
    async fn note_leased(&self, pool: &PoolId) -> Result<(), Unavailable> {
        if self.leased().contains(pool) {
            return Ok(());
        }
        ::redis::cmd("SADD")
            .arg(self.leased_pools_key())
            .arg(pool.as_str())
            .query_async::<i64>(&mut self.connection.handle())
            .await
            .map_err(unavailable)?;
        self.leased().insert(pool.clone());
        Ok(())
    }

    fn leased(&self) -> std::sync::MutexGuard<'_, HashSet<PoolId>> {
        self.leased_pools
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One take on its own, loading the pool first if Redis lacks it.
    async fn take_once_loaded(&self, take: Take) -> Result<i64, Unavailable> {
        let keys = self.keys(&take.pool);
        self.on_loaded(&take.pool, &keys, || async {
            let mut answers = run_takes(&self.connection, &keys, &[&take]).await?;
            let answer = answers.pop().unwrap_or(ABSENT);
            Ok((answer != ABSENT).then_some(answer))
        })
        .await
    }

    /// The answer of [`GIVE_BACK`] or [`GIVE_BACK_CLAIM`] as a give-back's
    /// result: `expected` is what should have gone back.
    fn given_back(returned: i64, expected: u32) -> Result<(), GiveBackError> {
        // An absent pool is left to the database, which already counts the
        // unit as given back; the pool loads from there.
        if returned == ABSENT {
            return Ok(());
        }
        let returned = u32::try_from(returned).unwrap_or(0);
        if returned < expected {
            return Err(GiveBackError::Excess {
                requested: expected,
                returned,
            });
        }
        Ok(())
    }

    /// The stale leases of one pool: those taken longer than `older_than`
    /// ago by Redis's clock, at most [`STALE_BATCH`] of them. `HSCAN` may
    /// name a lease twice; it is listed once.
    async fn stale_in(
        &self,
        pool: PoolId,
        older_than: Duration,
    ) -> Result<Vec<StaleClaim>, Unavailable> {
        let keys = self.keys(&pool);
        let mut connection = self.connection.handle();
        let (seconds, micros): (u64, u64) = ::redis::cmd("TIME")
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        let before = seconds
            .saturating_mul(1000)
            .saturating_add(micros / 1000)
            .saturating_sub(u64::try_from(older_than.as_millis()).unwrap_or(u64::MAX));
        let mut stale = Vec::new();
        let mut seen = HashSet::new();
        let mut cursor = 0u64;
        loop {
            let (next, leases): (u64, Vec<(String, String)>) = ::redis::cmd("HSCAN")
                .arg(&keys.leases)
                .arg(cursor)
                .arg("COUNT")
                .arg(LEASE_SCAN_COUNT)
                .query_async(&mut connection)
                .await
                .map_err(unavailable)?;
            for (claim, value) in leases {
                let lease = Lease::parse(&value).ok_or_else(|| {
                    Unavailable(format!(
                        "redis: {} holds lease {claim} = {value:?}, not quantity:user:taken at",
                        keys.leases
                    ))
                })?;
                if lease.taken_at <= before && seen.insert(claim.clone()) {
                    stale.push(StaleClaim {
                        pool: pool.clone(),
                        claim,
                        user: lease.user,
                        quantity: lease.quantity,
                    });
                    if stale.len() == STALE_BATCH {
                        return Ok(stale);
                    }
                }
            }
            if next == 0 {
                return Ok(stale);
            }
            cursor = next;
        }
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
            .key(&keys.leases)
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

/// What [`TAKES`] answered for one take, as its result.
fn take_answer(answer: i64) -> Result<Taken, Refusal> {
    match answer {
        TAKEN_UNCOUNTED => Ok(Taken { held: None }),
        SOLD_OUT => Err(Refusal::SoldOut),
        LIMIT_REACHED => Err(Refusal::LimitReached),
        held => match u32::try_from(held) {
            Ok(held) => Ok(Taken { held: Some(held) }),
            Err(_) => Err(Refusal::Unavailable(format!(
                "redis: unexpected answer {held} from the take script"
            ))),
        },
    }
}

/// Handles one batch of takes under leases: one [`TAKES`] call per pool,
/// answers in the batch's order.
async fn take_claims(
    connection: RedisConnection,
    prefix: String,
    takes: Vec<Take>,
) -> Vec<Result<i64, Unavailable>> {
    let mut by_pool: HashMap<&PoolId, Vec<usize>> = HashMap::new();
    for (i, take) in takes.iter().enumerate() {
        by_pool.entry(&take.pool).or_default().push(i);
    }
    let mut answers: Vec<Result<i64, Unavailable>> =
        vec![Err(Unavailable("redis: take not sent".into())); takes.len()];
    for (pool, indexes) in by_pool {
        let keys = PoolKeys::of(&prefix, pool);
        let of_pool: Vec<&Take> = indexes.iter().map(|&i| &takes[i]).collect();
        match run_takes(&connection, &keys, &of_pool).await {
            Ok(got) => {
                for (&i, answer) in indexes.iter().zip(got) {
                    answers[i] = Ok(answer);
                }
            }
            Err(e) => {
                for &i in &indexes {
                    answers[i] = Err(e.clone());
                }
            }
        }
    }
    answers
}

/// Runs [`TAKES`] for takes of one pool: one answer per take.
async fn run_takes(
    connection: &RedisConnection,
    keys: &PoolKeys,
    takes: &[&Take],
) -> Result<Vec<i64>, Unavailable> {
    let mut invocation = TAKES.key(&keys.counters);
    invocation.key(&keys.users).key(&keys.leases);
    for take in takes {
        invocation
            .arg(&take.user)
            .arg(take.quantity)
            .arg(&take.claim);
    }
    let answers: Vec<i64> = invocation
        .invoke_async(&mut connection.handle())
        .await
        .map_err(unavailable)?;
    if answers.len() == takes.len() {
        Ok(answers)
    } else {
        Err(Unavailable(format!(
            "redis: {} answers from the take script for {} takes",
            answers.len(),
            takes.len()
        )))
    }
}

/// A lease as [`TAKES`] writes it: `quantity:user:taken at`.
#[derive(Debug, PartialEq, Eq)]
struct Lease {
    quantity: u32,
    user: String,
    /// Redis time in milliseconds.
    taken_at: u64,
}

impl Lease {
    /// The user is what lies between the first and the last colon, so a
    /// user name may hold colons.
    fn parse(value: &str) -> Option<Self> {
        let (quantity, rest) = value.split_once(':')?;
        let (user, taken_at) = rest.rsplit_once(':')?;
        Some(Self {
            quantity: quantity.parse().ok()?,
            user: user.to_owned(),
            taken_at: taken_at.parse().ok()?,
        })
    }
}

/// A pool's keys.
struct PoolKeys {
    counters: String,
    users: String,
    leases: String,
}

impl PoolKeys {
    fn of(prefix: &str, pool: &PoolId) -> Self {
        let counters = format!("{prefix}:stock:{{{pool}}}");
        Self {
            users: format!("{counters}:users"),
            leases: format!("{counters}:leases"),
            counters,
        }
    }
}

#[async_trait]
impl StockGate for RedisStockGate {
    async fn take(&self, pool: &PoolId, user: &str, quantity: u32) -> Result<(), Refusal> {
        if quantity == 0 {
            return Err(zero_quantity(pool));
        }
        take_answer(
            self.take_once_loaded(Take::new(pool, user, quantity, ""))
                .await?,
        )
        .map(drop)
    }

    async fn take_claim(
        &self,
        pool: &PoolId,
        user: &str,
        quantity: u32,
        claim: &str,
    ) -> Result<Taken, Refusal> {
        if quantity == 0 {
            return Err(zero_quantity(pool));
        }
        self.note_leased(pool).await?;
        let batched = self
            .claim_takes
            .submit(Take::new(pool, user, quantity, claim))
            .await
            .map_err(|e| Unavailable(format!("redis: {e}")))??;
        if batched != ABSENT {
            return take_answer(batched);
        }
        let loaded = Take::new(pool, user, quantity, claim);
        take_answer(self.take_once_loaded(loaded).await?)
    }

    async fn settle(&self, pool: &PoolId, claim: &str) -> Result<(), Unavailable> {
        self.settle_many(pool, &[claim.to_owned()]).await
    }

    async fn settle_many(&self, pool: &PoolId, claims: &[String]) -> Result<(), Unavailable> {
        if claims.is_empty() {
            return Ok(());
        }
        ::redis::cmd("HDEL")
            .arg(&self.keys(pool).leases)
            .arg(claims)
            .query_async::<i64>(&mut self.connection.handle())
            .await
            .map(drop)
            .map_err(unavailable)
    }

    async fn give_back_claim(
        &self,
        pool: &PoolId,
        user: &str,
        quantity: u32,
        claim: &str,
    ) -> Result<(), GiveBackError> {
        let keys = self.keys(pool);
        let returned = self
            .run(&GIVE_BACK_CLAIM, &keys, user, quantity, Some(claim))
            .await
            .map_err(|e| GiveBackError::Unavailable(e.0))?;
        // The lease was settled or swept already: nothing is due.
        if returned == NO_LEASE {
            return Ok(());
        }
        Self::given_back(returned, quantity)
    }

    async fn stale_claims(&self, older_than: Duration) -> Result<Vec<StaleClaim>, Unavailable> {
        let pools: Vec<String> = ::redis::cmd("SMEMBERS")
            .arg(self.leased_pools_key())
            .query_async(&mut self.connection.handle())
            .await
            .map_err(unavailable)?;
        let mut stale = Vec::new();
        for pool in pools {
            stale.extend(self.stale_in(PoolId::new(pool), older_than).await?);
        }
        Ok(stale)
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
            .run(&GIVE_BACK, &keys, user, quantity, None)
            .await
            .map_err(|e| GiveBackError::Unavailable(e.0))?;
        Self::given_back(returned, quantity)
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
        ::redis::pipe()
            .del(&[&keys.counters, &keys.users, &keys.leases])
            .srem(self.leased_pools_key(), pool.as_str())
            .query_async::<()>(&mut self.connection.handle())
            .await
            .map_err(unavailable)?;
        self.loads.forget(pool);
        self.leased().remove(pool);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_reads_its_quantity_user_and_time_and_the_user_may_hold_colons() {
        assert_eq!(
            Lease::parse("2:reward:ann:1764500000123"),
            Some(Lease {
                quantity: 2,
                user: "reward:ann".into(),
                taken_at: 1_764_500_000_123,
            })
        );
    }

    #[test]
    fn a_lease_without_its_time_or_with_a_bad_count_does_not_read() {
        for value in ["1:ann", "ann", "x:ann:1", "1:ann:yesterday", "-1:ann:1"] {
            assert_eq!(Lease::parse(value), None, "{value}");
        }
    }
}
