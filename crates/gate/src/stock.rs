//! The stock gate: who gets each unit of limited stock under a rush. Coupon
//! issuance, limited event-reward quantities and ticket holds all claim
//! through one [`StockGate`], whose invariants are the heart of the product:
//!
//! 1. never more units taken than a pool's stock, and never more per user
//!    than the per-user limit;
//! 2. units given back come back exactly once: the gate adds back exactly
//!    what it is given, and never drives a count below zero (the caller
//!    guarantees it gives each unit back at most once).
//!
//! The gate is a fast, in-front copy of counters whose source of truth is the
//! database. A caller takes from the gate first, then makes the claim durable
//! (through the group-commit writer, which answers only after the fsync), and
//! gives the units back if that write fails or the request is rejected; a
//! released hold is written to the database first, then given back. The
//! database keeps unique constraints as the last guard.
//!
//! Modules claim through [`StockClaim::run`], the one protocol for take,
//! write, settle and give back. A take that a process dies holding would
//! stay counted in a gate that outlives the process (Redis, PostgreSQL). So
//! a claim takes under a lease
//! named by its claim id ([`StockGate::take_claim`]), drops the lease once its
//! durable write commits ([`StockGate::settle`]) or gives the units back
//! through it ([`StockGate::give_back_claim`]); [`sweep`] resolves leases
//! left older than the bound on a claim's write against the database.
//!
//! Counters are loaded from the database through a [`StockLoader`] the first
//! time a gate sees a pool, read back with [`StockGate::counters`] and
//! replaced with [`StockGate::reset`] by the reconciliation command.
//!
//! Three implementations, chosen by configuration:
//!
//! - [`MemoryStockGate`] keeps the counters in process memory (one instance);
//! - [`RedisStockGate`] keeps them in Redis, where a Lua script checks and
//!   takes atomically for every instance sharing it;
//! - [`PgStockGate`] keeps them in PostgreSQL tables of its own, spread over
//!   several rows per pool, for deployments without Redis.
//!
//! See `docs/adr/0009-stock-gate-backends.md`.

mod claim;
mod loading;
mod memory;
mod postgres;
mod redis;
mod sweep;

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

pub use self::claim::{ClaimError, Holder, StockClaim, Written};
pub use self::memory::MemoryStockGate;
pub use self::postgres::{PgStockGate, stock_migrations};
pub use self::redis::RedisStockGate;
pub use self::sweep::{CLAIM_WRITE_TIMEOUT, SweepReport, sweep};

/// The name of a pool of limited stock, such as `coupon:<uuid>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolId(String);

impl PoolId {
    /// Names a pool.
    #[must_use]
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The pool's name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PoolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for PoolId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl From<&str> for PoolId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

impl AsRef<str> for PoolId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// How much a pool may give out. The default is unlimited on both counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// Units in the pool; `None` is unlimited.
    pub stock: Option<u64>,
    /// Units one user may hold from the pool; `None` is no per-user limit.
    pub per_user: Option<u32>,
}

/// What has been taken from a pool, as the database records it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// Units taken from the pool in all.
    pub taken: u64,
    /// Units each user holds; users holding none may be left out.
    pub by_user: HashMap<String, u32>,
}

/// Why a take was refused. Nothing was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The pool has fewer units left than asked for.
    SoldOut,
    /// The user would hold more than the per-user limit.
    LimitReached,
    /// The gate cannot answer: its counters could not be loaded, its backend
    /// is unreachable, or it was asked to take zero units (a bug in the
    /// caller). Answer with a server error, not a sold-out page.
    Unavailable(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SoldOut => f.write_str("sold out"),
            Self::LimitReached => f.write_str("per-user limit reached"),
            Self::Unavailable(why) => write!(f, "stock gate unavailable: {why}"),
        }
    }
}

impl std::error::Error for Refusal {}

/// The gate (or rate limiter) cannot answer now: its counters could not be
/// loaded, its backend is unreachable, or it was set up on the wrong one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stock gate unavailable: {}", self.0)
    }
}

impl std::error::Error for Unavailable {}

impl From<Unavailable> for Refusal {
    fn from(e: Unavailable) -> Self {
        Self::Unavailable(e.0)
    }
}

/// A give-back that was not applied as asked. Worth logging: it means the
/// caller and the gate disagree about what was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GiveBackError {
    /// More was given back than the gate counted as taken (by this user, or
    /// from the pool). Only `returned` units went back; the rest was ignored
    /// so that no stock is created beyond the limits.
    Excess { requested: u32, returned: u32 },
    /// The backend is unreachable; nothing was given back.
    Unavailable(String),
}

impl fmt::Display for GiveBackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Excess {
                requested,
                returned,
            } => write!(
                f,
                "gave back {requested} units but only {returned} were counted as taken"
            ),
            Self::Unavailable(why) => write!(f, "stock gate unavailable: {why}"),
        }
    }
}

impl std::error::Error for GiveBackError {}

/// A take under a lease that went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Taken {
    /// The units the user holds from the pool, counting this take, when the
    /// gate counts them (a pool with a per-user limit) and can tell cheaply;
    /// never above the per-user limit. A caller may number the user's claims
    /// by it, so the database need not look the number up. A give-back
    /// racing with takes can make two of a user's live claims get the same
    /// number (and leave a lower one unused); a caller relying on it must
    /// resolve that, as a unique index does.
    pub held: Option<u32>,
}

/// A claim's take whose lease is older than asked: its claim neither settled
/// nor gave its units back in time, most likely because its process died.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleClaim {
    pub pool: PoolId,
    pub claim: String,
    pub user: String,
    pub quantity: u32,
}

/// Claims limited stock. One implementation per place the counters live.
///
/// The lease methods' defaults suit a gate whose counters die with the
/// process (and are rebuilt from the database at start): it needs no leases.
#[async_trait]
pub trait StockGate: Send + Sync {
    /// Takes `quantity` units of `pool` for `user`, all or none: refused if
    /// the pool has fewer left, or if the user would then hold more than the
    /// per-user limit. Loads the pool's counters the first time it is seen.
    /// A `quantity` of zero is a bug in the caller and is refused with
    /// [`Refusal::Unavailable`].
    async fn take(&self, pool: &PoolId, user: &str, quantity: u32) -> Result<(), Refusal>;

    /// Returns `quantity` units that `user` took from `pool` (a released
    /// hold, a rejected request, a failed durable write). Never more than the
    /// gate counted as taken goes back: the excess is reported as
    /// [`GiveBackError::Excess`]. Zero is a no-op.
    async fn give_back(
        &self,
        pool: &PoolId,
        user: &str,
        quantity: u32,
    ) -> Result<(), GiveBackError>;

    /// [`StockGate::take`] for the claim named `claim` (a coupon id, a
    /// request id), recording a lease `claim → (user, quantity, taken at)`
    /// in the same atomic step, so the units can be found again if the
    /// claim's process dies before it settles or gives them back.
    async fn take_claim(
        &self,
        pool: &PoolId,
        user: &str,
        quantity: u32,
        claim: &str,
    ) -> Result<Taken, Refusal> {
        let _ = claim;
        self.take(pool, user, quantity).await?;
        Ok(Taken::default())
    }

    /// The claim is durable: drops its lease, keeping its units taken. A
    /// claim without a lease is a no-op.
    async fn settle(&self, pool: &PoolId, claim: &str) -> Result<(), Unavailable> {
        let _ = (pool, claim);
        Ok(())
    }

    /// [`StockGate::settle`] for many claims of one pool at once (a batch of
    /// claims written together), in as few round trips as the gate allows.
    async fn settle_many(&self, pool: &PoolId, claims: &[String]) -> Result<(), Unavailable> {
        for claim in claims {
            self.settle(pool, claim).await?;
        }
        Ok(())
    }

    /// The claim failed: returns its units, exactly once. If its lease is
    /// gone (settled, swept, or cleared by a reset) nothing goes back.
    async fn give_back_claim(
        &self,
        pool: &PoolId,
        user: &str,
        quantity: u32,
        claim: &str,
    ) -> Result<(), GiveBackError> {
        let _ = claim;
        self.give_back(pool, user, quantity).await
    }

    /// Leases older than `older_than`, across the gate's pools (a bounded
    /// batch: a sweep that finds some runs again).
    async fn stale_claims(&self, older_than: Duration) -> Result<Vec<StaleClaim>, Unavailable> {
        let _ = older_than;
        Ok(Vec::new())
    }

    /// Units left in `pool`; `None` when its stock is unlimited.
    async fn remaining(&self, pool: &PoolId) -> Result<Option<u64>, Unavailable>;

    /// Replaces `pool`'s limits and counters with the database's truth, and
    /// drops its leases: the snapshot already tells every durable claim.
    async fn reset(
        &self,
        pool: &PoolId,
        limits: Limits,
        snapshot: Snapshot,
    ) -> Result<(), Unavailable>;

    /// The limits and counters the gate holds for `pool`, for the
    /// reconciliation command to compare with the database's; `None` when
    /// the gate has not loaded the pool (it will read the database's truth
    /// on first use). Per-user counts are kept, and so reported, only for
    /// pools with a per-user limit. Takes in flight while it reads may or
    /// may not be counted yet.
    async fn counters(&self, pool: &PoolId) -> Result<Option<(Limits, Snapshot)>, Unavailable>;

    /// Drops what the gate holds for `pool`, for a pool the database no
    /// longer has (a deleted campaign): shared gates would otherwise keep its
    /// counters for ever. A later call on the pool loads it again.
    async fn forget(&self, pool: &PoolId) -> Result<(), Unavailable>;
}

/// Reads a pool's limits and what has been taken from it, from the database.
#[async_trait]
pub trait StockLoader: Send + Sync {
    /// The pool's limits and counters; the error says why they could not be
    /// read (an unknown pool is an error too).
    async fn load(&self, pool: &PoolId) -> Result<(Limits, Snapshot), String>;

    /// Whether the claim named `claim` is durable in the database (its row
    /// exists, so its units stay taken); the error says why it could not be
    /// read (a pool this loader does not know is an error too).
    async fn claimed(&self, pool: &PoolId, claim: &str) -> Result<bool, String>;

    /// Whether `pool` is one of this loader's. Gates may share a lease table
    /// between modules (the PostgreSQL gate does), so a sweep leaves the
    /// leases of pools its loader does not own to their own module's sweep.
    fn owns(&self, _pool: &PoolId) -> bool {
        true
    }
}

/// The refusal of a take of zero units, which is a bug in the caller.
fn zero_quantity(pool: &PoolId) -> Refusal {
    Refusal::Unavailable(format!(
        "asked to take 0 units of {pool}: quantity must be at least 1"
    ))
}
