//! First sight of a pool for the gates whose counters live outside the
//! process (Redis, PostgreSQL): when the backend says a pool is absent, one
//! caller per process reads it through the [`StockLoader`] and installs it
//! (installing is "only if absent", so instances racing to load never
//! double-count); the callers that arrive meanwhile wait for that load and
//! then retry, and callers that were waiting when it failed share its
//! failure. A failure is not kept: the next call tries again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use super::{Limits, PoolId, Snapshot, StockLoader, Unavailable};

/// Loads pools once per process, whatever the backend.
pub(super) struct Loads {
    loader: Arc<dyn StockLoader>,
    slots: RwLock<HashMap<PoolId, Arc<Slot>>>,
}

/// One pool's loading state.
#[derive(Default)]
struct Slot {
    /// Held while loading; keeps the last load error.
    loading: tokio::sync::Mutex<String>,
    /// Loads that installed the pool (or found it installed) so far.
    installs: AtomicU64,
    /// Loads that failed so far.
    failures: AtomicU64,
}

/// What a caller saw of a pool's loads before asking the backend, so that a
/// load finished since then is not repeated.
struct Ticket {
    slot: Arc<Slot>,
    installs: u64,
    failures: u64,
}

impl Loads {
    pub(super) fn new(loader: Arc<dyn StockLoader>) -> Self {
        Self {
            loader,
            slots: RwLock::new(HashMap::new()),
        }
    }

    /// Runs `call`, which answers `None` when the backend does not have the
    /// pool; then loads the pool, has `install` write it if still absent, and
    /// runs `call` again.
    pub(super) async fn on_loaded<T, C, I>(
        &self,
        pool: &PoolId,
        call: impl Fn() -> C,
        install: impl Fn(Limits, Snapshot) -> I,
    ) -> Result<T, Unavailable>
    where
        C: Future<Output = Result<Option<T>, Unavailable>>,
        I: Future<Output = Result<(), Unavailable>>,
    {
        // A pool absent again right after it was installed was forgotten or
        // wiped meanwhile; one more round, then give up rather than spin.
        for _ in 0..2 {
            let ticket = self.ticket(pool);
            if let Some(answer) = call().await? {
                return Ok(answer);
            }
            self.load_once(pool, ticket, &install).await?;
        }
        Err(Unavailable(format!(
            "stock pool {pool} vanished as soon as it was loaded"
        )))
    }

    /// Taken before every call that may find the pool absent.
    fn ticket(&self, pool: &PoolId) -> Ticket {
        let slot = self.slot(pool);
        Ticket {
            installs: slot.installs.load(Ordering::Acquire),
            failures: slot.failures.load(Ordering::Acquire),
            slot,
        }
    }

    /// Makes sure the pool is installed: loads it and calls `install`, unless
    /// another caller of this process did so (or failed to) since `ticket`.
    async fn load_once<I>(
        &self,
        pool: &PoolId,
        ticket: Ticket,
        install: &impl Fn(Limits, Snapshot) -> I,
    ) -> Result<(), Unavailable>
    where
        I: Future<Output = Result<(), Unavailable>>,
    {
        let slot = ticket.slot;
        let mut last_error = slot.loading.lock().await;
        if slot.installs.load(Ordering::Acquire) != ticket.installs {
            return Ok(());
        }
        // A load failed while we waited: share its answer rather than queue
        // one more load behind a database that is already struggling.
        if slot.failures.load(Ordering::Acquire) != ticket.failures {
            return Err(Unavailable(last_error.clone()));
        }
        let installed = match self.loader.load(pool).await {
            Ok((limits, snapshot)) => install(limits, snapshot).await,
            Err(why) => Err(Unavailable(format!("cannot load stock pool {pool}: {why}"))),
        };
        match installed {
            Ok(()) => {
                slot.installs.fetch_add(1, Ordering::Release);
                Ok(())
            }
            Err(e) => {
                last_error.clone_from(&e.0);
                slot.failures.fetch_add(1, Ordering::Release);
                Err(e)
            }
        }
    }

    /// Forgets the pool's loading state along with the pool.
    pub(super) fn forget(&self, pool: &PoolId) {
        self.slots
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(pool);
    }

    fn slot(&self, pool: &PoolId) -> Arc<Slot> {
        if let Some(slot) = self
            .slots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(pool)
        {
            return Arc::clone(slot);
        }
        let mut slots = self.slots.write().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(slots.entry(pool.clone()).or_default())
    }
}
