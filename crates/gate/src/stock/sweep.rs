//! Resolving leases whose claims never settled nor gave their units back:
//! the database, through the module's [`StockLoader`], says which claims
//! are durable. A lease is only swept once it is older than any claim's
//! durable write may take ([`CLAIM_WRITE_TIMEOUT`] with a margin), so a
//! claim whose write is still running is never judged by a missing row.

use std::time::Duration;

use super::{StockGate, StockLoader};

/// The longest a claim may spend on its durable write after taking under a
/// lease. Claims stop waiting then and leave the lease to [`sweep`], so the
/// lease age a sweep uses must be well above it.
pub const CLAIM_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// What one [`sweep`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Stale leases whose claims are durable: dropped, units kept taken.
    pub settled: usize,
    /// Stale leases whose claims never became durable: units given back.
    pub returned: usize,
    /// Leases that could not be resolved this time (they stay for the next
    /// sweep), and the first reason.
    pub failed: usize,
    pub first_error: Option<String>,
}

impl SweepReport {
    /// Whether the sweep changed or failed anything worth logging.
    #[must_use]
    pub fn is_quiet(&self) -> bool {
        self.settled == 0 && self.returned == 0 && self.failed == 0
    }

    fn fail(&mut self, error: String) {
        self.failed += 1;
        self.first_error.get_or_insert(error);
    }
}

/// Resolves every lease of `gate` older than `older_than`: settled when
/// `loader` finds the claim durable, its units given back when not.
pub async fn sweep(
    gate: &dyn StockGate,
    loader: &dyn StockLoader,
    older_than: Duration,
) -> SweepReport {
    let mut report = SweepReport::default();
    let stale = match gate.stale_claims(older_than).await {
        Ok(stale) => stale,
        Err(e) => {
            report.fail(e.to_string());
            return report;
        }
    };
    for claim in stale.into_iter().filter(|c| loader.owns(&c.pool)) {
        match loader.claimed(&claim.pool, &claim.claim).await {
            Ok(true) => match gate.settle(&claim.pool, &claim.claim).await {
                Ok(()) => report.settled += 1,
                Err(e) => report.fail(e.to_string()),
            },
            Ok(false) => match gate
                .give_back_claim(&claim.pool, &claim.user, claim.quantity, &claim.claim)
                .await
            {
                Ok(()) => report.returned += 1,
                Err(e) => report.fail(e.to_string()),
            },
            Err(e) => report.fail(e),
        }
    }
    report
}
