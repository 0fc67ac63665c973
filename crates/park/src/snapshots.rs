//! Each attraction's row and admission figures, kept for at most
//! [`SNAPSHOT_FOR`] so that every guest polling costs the database little.
//!
//! A change through this instance must show at once, so a PATCH drops the
//! attraction's snapshot and an admission is added to it. Adding (rather
//! than dropping) keeps the snapshot alive while staff admit at the gate;
//! it is exact only if no read was under way while the admission was: a
//! read that overlapped one may or may not have seen it, so it is answered
//! but not kept. Reads are told apart from changes by a change count and
//! the number of admissions under way, both under the cache's one lock.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use kernel::Timestamp;

use crate::model::{Attraction, AttractionId, LineEntry, Observed};

/// How long an attraction's snapshot serves reads.
pub const SNAPSHOT_FOR: Duration = Duration::from_secs(1);

/// An attraction and its admissions as read at `now`.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub read_at: Instant,
    pub now: Timestamp,
    pub attraction: Attraction,
    /// Admissions in the estimate's rate window.
    pub observed: Observed,
    pub admitted_last_hour: u64,
}

#[derive(Debug, Default)]
struct State {
    snapshots: HashMap<AttractionId, Snapshot>,
    /// Admissions started and not yet finished.
    admitting: u32,
    /// Changes finished: a read that saw this count move may be stale.
    changes: u64,
}

#[derive(Debug, Default)]
pub(crate) struct SnapshotCache {
    state: Mutex<State>,
}

/// Where the cache stood when a read began; `None` when an admission was
/// under way (the read is then answered but not kept).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadMark(Option<u64>);

impl SnapshotCache {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The attraction's snapshot, if it is young enough for `now`.
    pub fn fresh(&self, id: AttractionId, now: Timestamp) -> Option<Snapshot> {
        self.state()
            .snapshots
            .get(&id)
            .filter(|c| {
                c.read_at.elapsed() < SNAPSHOT_FOR && (now - c.now).abs() < time::Duration::SECOND
            })
            .cloned()
    }

    /// Taken before reading a snapshot from the database.
    pub fn mark(&self) -> ReadMark {
        let state = self.state();
        ReadMark((state.admitting == 0).then_some(state.changes))
    }

    /// Keeps `snapshot` unless a change overlapped its read.
    pub fn keep(&self, id: AttractionId, snapshot: Snapshot, mark: ReadMark) {
        let mut state = self.state();
        if state.admitting == 0 && mark.0 == Some(state.changes) {
            state.snapshots.insert(id, snapshot);
        }
    }

    /// Drops the attraction's snapshot (its row changed).
    pub fn forget(&self, id: AttractionId) {
        let mut state = self.state();
        state.changes += 1;
        state.snapshots.remove(&id);
    }

    /// Called before an admission's write; the guard finishes it.
    pub fn admitting(&self) -> Admitting<'_> {
        self.state().admitting += 1;
        Admitting {
            cache: self,
            outcome: Outcome::Unknown,
        }
    }
}

/// An admission under way, finished when dropped: admitted, the entry is
/// added to its attraction's snapshot; refused, nothing changes; dropped
/// before either (an error, or the request abandoned mid-write), every
/// snapshot is dropped, since the write may have committed.
pub(crate) struct Admitting<'a> {
    cache: &'a SnapshotCache,
    outcome: Outcome,
}

enum Outcome {
    Unknown,
    Admitted(LineEntry),
    Refused,
}

impl Admitting<'_> {
    pub fn admitted(mut self, entry: LineEntry) {
        self.outcome = Outcome::Admitted(entry);
    }

    pub fn refused(mut self) {
        self.outcome = Outcome::Refused;
    }
}

impl Drop for Admitting<'_> {
    fn drop(&mut self) {
        let mut state = self.cache.state();
        state.admitting -= 1;
        state.changes += 1;
        match &self.outcome {
            Outcome::Admitted(entry) => {
                if let Some(snapshot) = state.snapshots.get_mut(&entry.attraction_id) {
                    let guests = u64::from(entry.party_size);
                    snapshot.observed.guests += guests;
                    if snapshot.observed.first_admitted_at.is_none() {
                        snapshot.observed.first_admitted_at = entry.admitted_at;
                    }
                    snapshot.admitted_last_hour += guests;
                }
            }
            Outcome::Refused => {}
            Outcome::Unknown => state.snapshots.clear(),
        }
    }
}

#[cfg(test)]
mod tests {
    use kernel::UserId;
    use time::macros::datetime;

    use super::*;
    use crate::model::{AttractionKind, EntryStatus, LineEntryId, NewAttraction};

    fn now() -> Timestamp {
        datetime!(2026-12-03 10:00 UTC).into()
    }

    fn snapshot(id: AttractionId) -> Snapshot {
        let request = NewAttraction {
            name: "Dragon".into(),
            kind: AttractionKind::Ride,
            description: None,
            hashtags: vec![],
            capacity_per_cycle: Some(20),
            cycle_seconds: Some(60),
            status: None,
        };
        Snapshot {
            read_at: Instant::now(),
            now: now(),
            attraction: Attraction::new(id, &request, now()).expect("valid"),
            observed: Observed::default(),
            admitted_last_hour: 0,
        }
    }

    fn admitted(attraction: AttractionId, party_size: u32) -> LineEntry {
        LineEntry {
            id: LineEntryId::new(),
            attraction_id: attraction,
            user_id: UserId::new(),
            party_size,
            status: EntryStatus::Admitted,
            seq: 1,
            joined_at: now(),
            called_at: Some(now()),
            return_by: Some(now()),
            admitted_at: Some(now()),
            ended_at: None,
        }
    }

    fn guests(cache: &SnapshotCache, id: AttractionId) -> Option<(u64, u64)> {
        cache
            .fresh(id, now())
            .map(|s| (s.observed.guests, s.admitted_last_hour))
    }

    #[test]
    fn an_admission_is_added_to_a_kept_snapshot() {
        let (cache, id) = (SnapshotCache::default(), AttractionId::new());
        let mark = cache.mark();
        cache.keep(id, snapshot(id), mark);
        cache.admitting().admitted(admitted(id, 3));
        assert_eq!(guests(&cache, id), Some((3, 3)));
        let first = cache.fresh(id, now()).expect("kept");
        assert_eq!(first.observed.first_admitted_at, Some(now()));
        cache.admitting().refused();
        assert_eq!(
            guests(&cache, id),
            Some((3, 3)),
            "a refusal changes nothing"
        );
    }

    #[test]
    fn a_read_that_overlapped_a_change_is_answered_but_not_kept() {
        let (cache, id) = (SnapshotCache::default(), AttractionId::new());
        // An admission finishing while the read is under way.
        let mark = cache.mark();
        cache.admitting().admitted(admitted(id, 2));
        cache.keep(id, snapshot(id), mark);
        assert_eq!(guests(&cache, id), None);
        // A read begun while an admission is under way.
        let admitting = cache.admitting();
        let mark = cache.mark();
        drop(admitting);
        cache.keep(id, snapshot(id), mark);
        assert_eq!(guests(&cache, id), None);
        // A PATCH during the read.
        let mark = cache.mark();
        cache.forget(id);
        cache.keep(id, snapshot(id), mark);
        assert_eq!(guests(&cache, id), None);
        // A quiet read is kept.
        let mark = cache.mark();
        cache.keep(id, snapshot(id), mark);
        assert_eq!(guests(&cache, id), Some((0, 0)));
    }

    #[test]
    fn an_admission_abandoned_mid_write_drops_every_snapshot() {
        let (cache, id) = (SnapshotCache::default(), AttractionId::new());
        let mark = cache.mark();
        cache.keep(id, snapshot(id), mark);
        drop(cache.admitting());
        assert_eq!(guests(&cache, id), None, "it may have committed");
    }
}
