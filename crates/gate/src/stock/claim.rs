//! The one way a module claims stock: take under a lease → bounded durable
//! write → settle, leave to the sweep, or give back. Coupon issues, reward
//! requests and ticket holds all run it, so the rules below hold for each:
//!
//! - the claim runs on a task of its own, so a client hanging up (which
//!   drops the request's future) cannot stop it between its take and its
//!   write, or between a failed write and its give-back;
//! - a write still unanswered after [`CLAIM_WRITE_TIMEOUT`], or one whose
//!   answer was lost with its connection, may yet commit: its units are left
//!   to the [`sweep`](super::sweep), which looks for the claim only once the
//!   lease is older than that bound (so never while the write may still
//!   run). Giving them back on the spot could sell a unit twice;
//! - a write the database refused gives the units back, exactly once,
//!   through the lease.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kernel::UserId;
use kernel::crash::CrashPoint;

use super::{CLAIM_WRITE_TIMEOUT, PoolId, Refusal, StockGate, Taken};

/// Who holds units of a pool: the name the gate counts a user's units under,
/// the same in takes and in the counters a loader reads from the database.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Holder(String);

impl Holder {
    /// The holder's name as the gate stores it.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name, owned, for a loader's [`Snapshot`](super::Snapshot).
    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }
}

impl From<UserId> for Holder {
    fn from(user: UserId) -> Self {
        Self(user.to_string())
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `quantity` units of `pool` for `holder`, taken all or none under a lease
/// named `lease` (the id of the row that makes the claim durable: a coupon,
/// a request, a reservation), so the sweep can ask the database for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockClaim {
    pub pool: PoolId,
    pub holder: Holder,
    pub lease: String,
    pub quantity: u32,
}

/// What the durable write of a claim did, with the module's own answer.
#[derive(Debug)]
pub enum Written<T> {
    /// The claim is durable; its lease is settled here.
    Durable(T),
    /// The claim is durable and its writer settled the lease already (a
    /// batch writer settles a batch's leases in one call).
    DurableSettled(T),
    /// Nothing was written (the database refused it, or the write failed
    /// before it could commit); the units go back.
    NotWritten(T),
    /// The write's answer was lost and it may have committed; the units
    /// stay taken until the sweep asks the database.
    Unknown(T),
}

/// A claim that did not run its write to an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimError {
    /// The gate refused the take; nothing was taken.
    Refused(Refusal),
    /// The write did not answer within the bound; its units are left to the
    /// sweep. Answer 503: the client may retry.
    WriteTimedOut(Duration),
    /// The claim's task ended without an answer (it panicked); what it took
    /// is left to the sweep.
    Aborted(String),
}

impl fmt::Display for ClaimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused(refusal) => refusal.fmt(f),
            Self::WriteTimedOut(after) => {
                write!(f, "the claim's write did not answer within {after:?}")
            }
            Self::Aborted(why) => write!(f, "the claim's task ended without an answer: {why}"),
        }
    }
}

impl std::error::Error for ClaimError {}

impl StockClaim {
    /// Takes the units, runs `write` with what the take reported, and
    /// settles, leaves or gives back by its answer, on a task of its own.
    /// The module's answer comes back whatever the write did; only a
    /// refused take, a write that timed out and a lost task are errors.
    pub async fn run<T, W, F>(self, gate: Arc<dyn StockGate>, write: W) -> Result<T, ClaimError>
    where
        T: Send + 'static,
        W: FnOnce(Taken) -> F + Send + 'static,
        F: Future<Output = Written<T>> + Send + 'static,
    {
        tokio::spawn(self.run_here(gate, write))
            .await
            .map_err(|e| ClaimError::Aborted(e.to_string()))?
    }

    async fn run_here<T, W, F>(self, gate: Arc<dyn StockGate>, write: W) -> Result<T, ClaimError>
    where
        W: FnOnce(Taken) -> F,
        F: Future<Output = Written<T>>,
    {
        let Self {
            pool,
            holder,
            lease,
            quantity,
        } = self;
        kernel::crash::reached(CrashPoint::BeforeTake);
        let taken = gate
            .take_claim(&pool, holder.as_str(), quantity, &lease)
            .await
            .map_err(ClaimError::Refused)?;
        kernel::crash::reached(CrashPoint::AfterTake);
        let Ok(written) = tokio::time::timeout(CLAIM_WRITE_TIMEOUT, write(taken)).await else {
            tracing::warn!(%pool, %lease, "a claim's write did not answer in time: its units \
                stay taken until the lease sweep asks the database");
            return Err(ClaimError::WriteTimedOut(CLAIM_WRITE_TIMEOUT));
        };
        Ok(match written {
            Written::Durable(answer) => {
                // Not fatal: a lease left behind is settled by the sweep.
                if let Err(error) = gate.settle(&pool, &lease).await {
                    tracing::warn!(%pool, %error, "could not settle the lease of a durable claim");
                }
                answer
            }
            Written::DurableSettled(answer) => answer,
            Written::NotWritten(answer) => {
                if let Err(error) = gate
                    .give_back_claim(&pool, holder.as_str(), quantity, &lease)
                    .await
                {
                    tracing::error!(%pool, %error, "could not give back the units of an unwritten claim");
                }
                answer
            }
            Written::Unknown(answer) => {
                tracing::warn!(%pool, %lease, "a claim's write may have committed without an \
                    answer: its units stay taken until the lease sweep asks the database \
                    (the in-memory gate: until a restart or `stampede reconcile`)");
                answer
            }
        })
    }
}
