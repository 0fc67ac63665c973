//! Reconciliation of the line stores with the table, the record. A Redis
//! store misses a change when Redis is unreachable just after a commit (a
//! removal lost leaves a ghost that overstates every position behind it);
//! a worker compares every line every [`RECONCILE_PERIOD`] and repairs what
//! still differs after a moment, as the stock gate's reconciliation does
//! (`gate::reconcile`). This module holds the comparison; the service
//! drives it ([`crate::ParkService::reconcile_lines`]).

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

use crate::line::{LineTotals, Waiting};
use crate::model::{AttractionId, LineEntryId};

/// How often the server's worker reconciles every line.
pub const RECONCILE_PERIOD: Duration = Duration::from_secs(30);

/// How long a difference must last to count: a join between its commit
/// and its add, or a call between its commit and its removal, is a
/// difference that heals itself.
pub const SETTLE: Duration = Duration::from_millis(250);

/// How one line's store differs from the table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Difference {
    /// WAITING in the table, not held by the store: positions behind them
    /// are understated.
    pub missing: Vec<Waiting>,
    /// Held by the store, not WAITING in the table (called, left, expired):
    /// positions behind them are overstated.
    pub extra: Vec<Waiting>,
    /// Held under another join number or party size, or totals that do not
    /// add up to the entries held: only a reload mends these.
    pub inconsistent: bool,
}

impl Difference {
    /// `held` and `totals` as the store answers, against `recorded`, the
    /// table's WAITING entries.
    #[must_use]
    pub fn of(held: &[Waiting], totals: LineTotals, recorded: &[Waiting]) -> Self {
        let by_id: HashMap<LineEntryId, &Waiting> = held.iter().map(|w| (w.id, w)).collect();
        let recorded_ids: HashMap<LineEntryId, &Waiting> =
            recorded.iter().map(|w| (w.id, w)).collect();
        let missing = recorded
            .iter()
            .filter(|w| !by_id.contains_key(&w.id))
            .copied()
            .collect();
        let extra = held
            .iter()
            .filter(|w| !recorded_ids.contains_key(&w.id))
            .copied()
            .collect();
        let altered = recorded
            .iter()
            .any(|w| by_id.get(&w.id).is_some_and(|h| *h != w));
        let guests: u64 = held.iter().map(|w| u64::from(w.party_size)).sum();
        let adds_up = totals.parties == held.len() as u64 && totals.guests == guests;
        Self {
            missing,
            extra,
            inconsistent: altered || !adds_up,
        }
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty() && !self.inconsistent
    }
}

/// One line that did not agree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LineCheck {
    #[schema(value_type = String, format = Uuid)]
    pub attraction_id: AttractionId,
    /// WAITING entries in the table.
    pub recorded: usize,
    /// Entries the store held.
    pub held: usize,
    pub missing: usize,
    pub extra: usize,
    pub inconsistent: bool,
    /// Mended: missing entries added, extra ones removed, or (inconsistent)
    /// the line reloaded from the table.
    pub repaired: bool,
}

/// A whole reconciliation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct LineReport {
    /// Lines compared.
    pub checked: usize,
    pub differing: usize,
    pub repaired: usize,
    /// Only lines that did not agree.
    pub lines: Vec<LineCheck>,
    /// Lines that could not be compared, with why.
    pub errors: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(seq: u64, party_size: u32) -> Waiting {
        Waiting {
            id: LineEntryId::new(),
            seq,
            party_size,
        }
    }

    fn totals(of: &[Waiting]) -> LineTotals {
        LineTotals {
            parties: of.len() as u64,
            guests: of.iter().map(|w| u64::from(w.party_size)).sum(),
        }
    }

    #[test]
    fn a_store_holding_the_table_agrees() {
        let line = [waiting(1, 2), waiting(2, 1)];
        assert!(Difference::of(&line, totals(&line), &line).is_empty());
        assert!(Difference::of(&[], LineTotals::default(), &[]).is_empty());
    }

    #[test]
    fn ghosts_and_gaps_are_named() {
        let (a, b, c) = (waiting(1, 2), waiting(2, 1), waiting(3, 4));
        let held = [a, b];
        let difference = Difference::of(&held, totals(&held), &[a, c]);
        assert_eq!(difference.missing, vec![c]);
        assert_eq!(difference.extra, vec![b]);
        assert!(!difference.inconsistent);
    }

    #[test]
    fn another_party_size_or_totals_that_do_not_add_up_are_inconsistent() {
        let a = waiting(1, 2);
        let resized = Waiting { party_size: 0, ..a };
        assert!(Difference::of(&[resized], totals(&[resized]), &[a]).inconsistent);
        let off = LineTotals {
            parties: 1,
            guests: 5,
        };
        let difference = Difference::of(&[a], off, &[a]);
        assert!(difference.inconsistent && difference.missing.is_empty());
    }
}
