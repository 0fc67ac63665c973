//! Each attraction's row and admission figures, kept for at most
//! [`SNAPSHOT_FOR`] so that every guest polling costs the database little.
//!
//! A change through this instance shows at once: a PATCH drops the
//! attraction's snapshot and an admission is added to it — adding rather
//! than dropping keeps the snapshot alive while staff admit at the gate.
//! That is exact only if no read of a snapshot overlaps a change (the read
//! might or might not see it), so changes hold a shared lock over their
//! write and a refresh holds it exclusively over
//! its read: at most once a second per attraction, admissions wait for one
//! read. Refreshes run one at a time, and a poll that waited for one finds
//! its result instead of reading again.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use kernel::Timestamp;
use tokio::sync::{RwLock, RwLockReadGuard};

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
pub(crate) struct SnapshotCache {
    snapshots: Mutex<HashMap<AttractionId, Snapshot>>,
    /// Shared by changes over their write, exclusive over a refresh's read.
    changes: RwLock<()>,
    /// One refresh at a time.
    refreshing: tokio::sync::Mutex<()>,
}

impl SnapshotCache {
    fn snapshots(&self) -> MutexGuard<'_, HashMap<AttractionId, Snapshot>> {
        self.snapshots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The attraction's snapshot, if it is young enough for `now`.
    pub fn fresh(&self, id: AttractionId, now: Timestamp) -> Option<Snapshot> {
        self.snapshots()
            .get(&id)
            .filter(|c| {
                c.read_at.elapsed() < SNAPSHOT_FOR && (now - c.now).abs() < time::Duration::SECOND
            })
            .cloned()
    }

    /// The fresh snapshot, or the one `read` makes (with no change under
    /// way), kept for the next polls.
    pub async fn refresh<E, F>(
        &self,
        id: AttractionId,
        now: Timestamp,
        read: F,
    ) -> Result<Snapshot, E>
    where
        F: Future<Output = Result<Snapshot, E>>,
    {
        let _one_at_a_time = self.refreshing.lock().await;
        if let Some(cached) = self.fresh(id, now) {
            return Ok(cached);
        }
        let _no_change = self.changes.write().await;
        let snapshot = read.await?;
        self.snapshots().insert(id, snapshot.clone());
        Ok(snapshot)
    }

    /// Held over a PATCH of attraction `id`; its snapshot goes when the
    /// guard is dropped, whether the write committed or not.
    pub async fn change(&self, id: AttractionId) -> Change<'_> {
        Change {
            cache: self,
            id,
            _shared: self.changes.read().await,
        }
    }

    /// Held over an admission's write, finished when dropped.
    pub async fn admitting(&self) -> Admitting<'_> {
        Admitting {
            cache: self,
            outcome: Outcome::Unknown,
            _shared: self.changes.read().await,
        }
    }
}

/// A PATCH under way.
pub(crate) struct Change<'a> {
    cache: &'a SnapshotCache,
    id: AttractionId,
    _shared: RwLockReadGuard<'a, ()>,
}

impl Drop for Change<'_> {
    fn drop(&mut self) {
        self.cache.snapshots().remove(&self.id);
    }
}

/// An admission under way, finished when dropped: admitted, the entry is
/// added to its attraction's snapshot; refused, nothing changes; dropped
/// before either (an error, or the request abandoned mid-write), every
/// snapshot is dropped, since the write may have committed.
pub(crate) struct Admitting<'a> {
    cache: &'a SnapshotCache,
    outcome: Outcome,
    _shared: RwLockReadGuard<'a, ()>,
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
    // Runs before the shared lock is released (fields drop after this).
    fn drop(&mut self) {
        let mut snapshots = self.cache.snapshots();
        match &self.outcome {
            Outcome::Admitted(entry) => {
                if let Some(snapshot) = snapshots.get_mut(&entry.attraction_id) {
                    let guests = u64::from(entry.party_size);
                    snapshot.observed.guests += guests;
                    if snapshot.observed.first_admitted_at.is_none() {
                        snapshot.observed.first_admitted_at = entry.admitted_at;
                    }
                    snapshot.admitted_last_hour += guests;
                }
            }
            Outcome::Refused => {}
            Outcome::Unknown => snapshots.clear(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::Arc;

    use kernel::UserId;
    use time::macros::datetime;

    use super::*;
    use crate::model::{AttractionKind, EntryStatus, LineEntryId, NewAttraction};

    fn now() -> Timestamp {
        datetime!(2026-12-03 10:00 UTC).into()
    }

    fn snapshot(id: AttractionId, guests: u64) -> Snapshot {
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
            observed: Observed {
                guests,
                first_admitted_at: None,
            },
            admitted_last_hour: guests,
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

    async fn read(cache: &SnapshotCache, id: AttractionId, guests: u64) -> Snapshot {
        let read = async { Ok::<_, Infallible>(snapshot(id, guests)) };
        match cache.refresh(id, now(), read).await {
            Ok(snapshot) => snapshot,
            Err(never) => match never {},
        }
    }

    #[tokio::test]
    async fn an_admission_is_added_to_a_kept_snapshot_and_a_refusal_changes_nothing() {
        let (cache, id) = (SnapshotCache::default(), AttractionId::new());
        read(&cache, id, 0).await;
        cache.admitting().await.admitted(admitted(id, 3));
        assert_eq!(guests(&cache, id), Some((3, 3)));
        let kept = cache.fresh(id, now()).expect("kept");
        assert_eq!(kept.observed.first_admitted_at, Some(now()));
        cache.admitting().await.refused();
        assert_eq!(guests(&cache, id), Some((3, 3)));
        // A fresh snapshot is served, not read again.
        assert_eq!(read(&cache, id, 99).await.admitted_last_hour, 3);
        drop(cache.change(id).await);
        assert_eq!(guests(&cache, id), None);
    }

    #[tokio::test]
    async fn a_refresh_waits_for_the_admission_under_way_and_reads_after_it() {
        let cache = Arc::new(SnapshotCache::default());
        let id = AttractionId::new();
        let admitting = cache.admitting().await;
        let refresh = tokio::spawn({
            let cache = Arc::clone(&cache);
            async move { read(&cache, id, 2).await.admitted_last_hour }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!refresh.is_finished(), "no read while a write is under way");
        // Finished before the read: the read counts it (2), nothing adds it twice.
        admitting.admitted(admitted(id, 2));
        assert_eq!(refresh.await.expect("the refresh"), 2);
        assert_eq!(guests(&cache, id), Some((2, 2)));
    }

    #[tokio::test]
    async fn an_admission_abandoned_mid_write_drops_every_snapshot() {
        let (cache, id) = (SnapshotCache::default(), AttractionId::new());
        read(&cache, id, 0).await;
        drop(cache.admitting().await);
        assert_eq!(guests(&cache, id), None, "it may have committed");
    }
}
