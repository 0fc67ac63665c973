//! The stock gate in process memory: for one instance, or in front of a
//! single database without Redis.
//!
//! Per pool, the units taken are one `AtomicU64` changed by compare-and-swap,
//! and the units each user holds live in a map split into shards by hash,
//! each behind its own mutex. Pools are found in a sharded map and never
//! block one another; a take on a loaded pool never waits for I/O.
//!
//! A take reserves the user's slot first, then takes the stock, and frees the
//! slot again if the stock ran out. Each counter is only ever raised by a step
//! that checks its own limit atomically, so neither limit can be passed under
//! any interleaving; a slot held for a moment by a take that then finds the
//! pool sold out can only make the same user's concurrent take see
//! [`Refusal::LimitReached`] early, never another user's.
//!
//! The first take, `remaining` or `reset` of a pool loads it: callers that
//! arrive while a load runs wait for it rather than load again, and callers
//! that were waiting when it failed share its failure. A failure is not kept:
//! the next call tries again.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};

use async_trait::async_trait;

use super::{
    GiveBackError, Limits, PoolId, Refusal, Snapshot, StockGate, StockLoader, Taken, Unavailable,
    zero_quantity,
};

/// Shards of the pool map; a power of two.
const POOL_SHARDS: usize = 16;
/// Shards of each pool's per-user map; a power of two.
const USER_SHARDS: usize = 64;

/// Pools by name, one shard of them.
type PoolShard = RwLock<HashMap<PoolId, Arc<Slot>>>;
/// Units held per user, one shard of them.
type UserShard = Mutex<HashMap<String, u32>>;

/// Stock gate counters in process memory, loaded from the database through a
/// [`StockLoader`].
///
/// Units given back for a pool this process has not loaded yet are ignored:
/// the load will read the database, which already reflects them. A reset
/// while takes are in flight can miss those takes (they count against the
/// counters being replaced); run it when the pool is quiet, or rely on the
/// database's constraints and run reconciliation again.
pub struct MemoryStockGate {
    loader: Arc<dyn StockLoader>,
    hasher: RandomState,
    pools: Box<[Padded<PoolShard>]>,
}

impl MemoryStockGate {
    /// A gate with no pools loaded yet; `loader` reads them on first use.
    #[must_use]
    pub fn new(loader: Arc<dyn StockLoader>) -> Self {
        Self {
            loader,
            hasher: RandomState::new(),
            pools: (0..POOL_SHARDS)
                .map(|_| Padded(RwLock::new(HashMap::new())))
                .collect(),
        }
    }

    fn shard(&self, pool: &PoolId) -> &PoolShard {
        &self.pools[shard_of(&self.hasher, pool.as_str(), POOL_SHARDS)]
    }

    /// Runs `f` on the pool's counters if they are loaded. The hot path: one
    /// shared read lock on the pool map's shard, no allocation, no waiting.
    fn with_loaded<R>(&self, pool: &PoolId, f: impl FnOnce(&Counters) -> R) -> Option<R> {
        let pools = self
            .shard(pool)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        pools.get(pool)?.counters.get().map(|c| f(c))
    }

    /// The pool's counters, loading them if this is the first time.
    async fn load(&self, pool: &PoolId) -> Result<Arc<Counters>, Unavailable> {
        let slot = self.slot(pool);
        if let Some(counters) = slot.counters.get() {
            return Ok(Arc::clone(counters));
        }
        let failures_before = slot.failed_loads.load(Ordering::Acquire);
        let mut last_error = slot.loading.lock().await;
        if let Some(counters) = slot.counters.get() {
            return Ok(Arc::clone(counters));
        }
        // A load failed while we waited: share its answer rather than queue
        // one more load behind a database that is already struggling.
        if slot.failed_loads.load(Ordering::Acquire) != failures_before {
            return Err(Unavailable(last_error.clone()));
        }
        match self.loader.load(pool).await {
            // A reset that landed during the load is newer than what the
            // load read, so it wins.
            Ok((limits, snapshot)) => {
                Ok(Arc::clone(slot.counters.get_or_init(|| {
                    Arc::new(Counters::new(limits, snapshot, &self.hasher))
                })))
            }
            Err(why) => {
                *last_error = format!("cannot load stock pool {pool}: {why}");
                slot.failed_loads.fetch_add(1, Ordering::Release);
                Err(Unavailable(last_error.clone()))
            }
        }
    }

    /// Takes, loading the pool first if this is the first time.
    async fn take_counted(
        &self,
        pool: &PoolId,
        user: &str,
        quantity: u32,
    ) -> Result<Taken, Refusal> {
        if quantity == 0 {
            return Err(zero_quantity(pool));
        }
        if let Some(taken) = self.with_loaded(pool, |c| c.take(user, quantity)) {
            return taken;
        }
        self.load(pool).await?.take(user, quantity)
    }

    /// The pool's slot, created empty if this is the first time.
    fn slot(&self, pool: &PoolId) -> Arc<Slot> {
        let shard = self.shard(pool);
        if let Some(slot) = shard
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(pool)
        {
            return Arc::clone(slot);
        }
        let mut pools = shard.write().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(pools.entry(pool.clone()).or_default())
    }
}

impl fmt::Debug for MemoryStockGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pools: usize = self
            .pools
            .iter()
            .map(|s| s.read().unwrap_or_else(PoisonError::into_inner).len())
            .sum();
        f.debug_struct("MemoryStockGate")
            .field("pools", &pools)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl StockGate for MemoryStockGate {
    async fn take(&self, pool: &PoolId, user: &str, quantity: u32) -> Result<(), Refusal> {
        self.take_counted(pool, user, quantity).await.map(drop)
    }

    /// The counters die with the process, so the claim needs no lease.
    async fn take_claim(
        &self,
        pool: &PoolId,
        user: &str,
        quantity: u32,
        _claim: &str,
    ) -> Result<Taken, Refusal> {
        self.take_counted(pool, user, quantity).await
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
        self.with_loaded(pool, |c| c.give_back(user, quantity))
            .unwrap_or(Ok(()))
    }

    async fn remaining(&self, pool: &PoolId) -> Result<Option<u64>, Unavailable> {
        if let Some(remaining) = self.with_loaded(pool, Counters::remaining) {
            return Ok(remaining);
        }
        Ok(self.load(pool).await?.remaining())
    }

    async fn reset(
        &self,
        pool: &PoolId,
        limits: Limits,
        snapshot: Snapshot,
    ) -> Result<(), Unavailable> {
        let counters = Arc::new(Counters::new(limits, snapshot, &self.hasher));
        let mut pools = self
            .shard(pool)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        // A pool still loading takes the reset's counters in place, so the
        // callers waiting on that load use them too.
        let unplaced = match pools.get(pool) {
            Some(slot) => slot.counters.set(counters).err(),
            None => Some(counters),
        };
        if let Some(counters) = unplaced {
            pools.insert(pool.clone(), Arc::new(Slot::loaded(counters)));
        }
        Ok(())
    }

    async fn counters(&self, pool: &PoolId) -> Result<Option<(Limits, Snapshot)>, Unavailable> {
        Ok(self.with_loaded(pool, Counters::read))
    }

    async fn forget(&self, pool: &PoolId) -> Result<(), Unavailable> {
        self.shard(pool)
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(pool);
        Ok(())
    }
}

/// One pool as this process knows it: its counters once loaded, and what it
/// takes to load them once.
#[derive(Default)]
struct Slot {
    counters: OnceLock<Arc<Counters>>,
    /// Held while loading; keeps the last load error.
    loading: tokio::sync::Mutex<String>,
    /// Loads that failed so far.
    failed_loads: AtomicU64,
}

impl Slot {
    fn loaded(counters: Arc<Counters>) -> Self {
        let slot = Self::default();
        slot.counters.get_or_init(|| counters);
        slot
    }
}

/// One pool's limits and counters.
struct Counters {
    stock: Option<u64>,
    per_user: Option<u32>,
    /// Units taken, limited by `stock`. Kept apart from its neighbours: every
    /// take on the pool writes it.
    taken: Padded<AtomicU64>,
    /// Units held per user, split by hash; empty when there is no per-user
    /// limit, as nothing then needs them.
    users: Box<[Padded<UserShard>]>,
    hasher: RandomState,
}

impl Counters {
    fn new(limits: Limits, snapshot: Snapshot, hasher: &RandomState) -> Self {
        let users: Box<[_]> = if limits.per_user.is_some() {
            (0..USER_SHARDS)
                .map(|_| Padded(Mutex::new(HashMap::new())))
                .collect()
        } else {
            Box::new([])
        };
        let counters = Self {
            stock: limits.stock,
            per_user: limits.per_user,
            taken: Padded(AtomicU64::new(snapshot.taken)),
            users,
            hasher: hasher.clone(),
        };
        if counters.per_user.is_some() {
            for (user, held) in snapshot.by_user.into_iter().filter(|(_, n)| *n > 0) {
                counters.user_shard(&user).insert(user, held);
            }
        }
        counters
    }

    fn user_shard(&self, user: &str) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.users[shard_of(&self.hasher, user, USER_SHARDS)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn take(&self, user: &str, quantity: u32) -> Result<Taken, Refusal> {
        let wanted = u64::from(quantity);
        let stock = self.stock.unwrap_or(u64::MAX);
        // Refuse a sold-out pool with a plain read: the drop that follows a
        // sell-out is almost all refusals, and reads share the counter's cache
        // line where writes would fight over it. Only a shortcut: the
        // compare-and-swap below is what enforces the stock.
        if self.taken.load(Ordering::Acquire).saturating_add(wanted) > stock {
            return Err(Refusal::SoldOut);
        }
        let held = match self.per_user {
            Some(limit) => Some(self.reserve(user, quantity, limit)?),
            None => None,
        };
        let took = self
            .taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |taken| {
                taken.checked_add(wanted).filter(|after| *after <= stock)
            });
        if took.is_err() {
            if self.per_user.is_some() {
                self.release(user, quantity);
            }
            return Err(Refusal::SoldOut);
        }
        Ok(Taken { held })
    }

    /// Raises the user's count by `quantity` if that keeps it within `limit`;
    /// answers the count after.
    fn reserve(&self, user: &str, quantity: u32, limit: u32) -> Result<u32, Refusal> {
        let within = |held: u32| held.checked_add(quantity).filter(|after| *after <= limit);
        let mut users = self.user_shard(user);
        let after = match users.get_mut(user) {
            Some(held) => {
                *held = within(*held).ok_or(Refusal::LimitReached)?;
                *held
            }
            None => {
                let after = within(0).ok_or(Refusal::LimitReached)?;
                users.insert(user.to_owned(), after);
                after
            }
        };
        Ok(after)
    }

    /// Lowers the user's count by up to `quantity`, never below zero, and
    /// says by how much.
    fn release(&self, user: &str, quantity: u32) -> u32 {
        let mut users = self.user_shard(user);
        let Some(held) = users.get_mut(user) else {
            return 0;
        };
        let released = quantity.min(*held);
        *held -= released;
        if *held == 0 {
            // Users who hold nothing take no memory, however many were refused.
            users.remove(user);
        }
        released
    }

    fn give_back(&self, user: &str, quantity: u32) -> Result<(), GiveBackError> {
        let from_user = if self.per_user.is_some() {
            self.release(user, quantity)
        } else {
            quantity
        };
        if from_user == 0 {
            return Err(GiveBackError::Excess {
                requested: quantity,
                returned: 0,
            });
        }
        let back = u64::from(from_user);
        let (Ok(before) | Err(before)) =
            self.taken
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |taken| {
                    Some(taken.saturating_sub(back))
                });
        let returned = u32::try_from(before.min(back)).unwrap_or(from_user);
        if returned < quantity {
            return Err(GiveBackError::Excess {
                requested: quantity,
                returned,
            });
        }
        Ok(())
    }

    fn remaining(&self) -> Option<u64> {
        let taken = self.taken.load(Ordering::Acquire);
        self.stock.map(|stock| stock.saturating_sub(taken))
    }

    /// The limits and counters, one user shard at a time.
    fn read(&self) -> (Limits, Snapshot) {
        let limits = Limits {
            stock: self.stock,
            per_user: self.per_user,
        };
        let by_user = self
            .users
            .iter()
            .flat_map(|shard| {
                let users = shard.lock().unwrap_or_else(PoisonError::into_inner);
                users.clone()
            })
            .collect();
        let taken = self.taken.load(Ordering::Acquire);
        (limits, Snapshot { taken, by_user })
    }
}

/// Which of `shards` (a power of two) `key` belongs to.
fn shard_of(hasher: &RandomState, key: &str, shards: usize) -> usize {
    // Truncating the hash is fine: only its low bits pick the shard.
    (hasher.hash_one(key) as usize) & (shards - 1)
}

/// Keeps a value on cache lines of its own, so that threads writing
/// neighbouring shards or counters do not invalidate each other's caches.
#[repr(align(128))]
struct Padded<T>(T);

impl<T> Deref for Padded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}
