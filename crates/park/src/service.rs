//! The park's use cases. Every change is written to the database first (the
//! record); the line store follows. A line store that missed a change heals
//! on the next read: a WAITING entry it does not hold is counted in the
//! table once and added back.

use std::sync::Arc;

use contracts::park::{CalledEntry, LineEntryCalled};
use kernel::auth::Staff;
use kernel::{IdempotentEffect, Page, PageRequest, Principal, SharedClock, Timestamp};
use time::Duration;
use uuid::Uuid;

use crate::error::ParkError;
use crate::line::{LineStore, Waiting};
use crate::model::{
    Attraction, AttractionFilter, AttractionId, AttractionPatch, EntryStatus, HashtagCount,
    LineEntry, LineEntryId, LineEntryView, MAX_CALL_COUNT, NewAttraction, Observed,
    RATE_WINDOW_SECONDS, WaitBoard, estimate,
};
use crate::reconcile::{Difference, LineCheck, LineReport, SETTLE};
pub use crate::snapshots::SNAPSHOT_FOR;
use crate::snapshots::{Snapshot, SnapshotCache};
use crate::store::{AdmitOutcome, CallOutcome, JoinOutcome, ParkStore};

/// The park's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParkSettings {
    /// Active lines one user may be in at once.
    pub max_lines_per_user: u32,
    /// How long a called party has to reach the gate.
    pub call_grace_seconds: u32,
    /// The largest party one entry may hold.
    pub max_party_size: u32,
}

impl Default for ParkSettings {
    fn default() -> Self {
        Self {
            max_lines_per_user: 3,
            call_grace_seconds: 600,
            max_party_size: 12,
        }
    }
}

pub struct ParkService {
    store: Arc<dyn ParkStore>,
    lines: Arc<dyn LineStore>,
    clock: SharedClock,
    settings: ParkSettings,
    snapshots: SnapshotCache,
}

impl std::fmt::Debug for ParkService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParkService")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn waiting(entry: &LineEntry) -> Waiting {
    Waiting {
        id: entry.id,
        seq: entry.seq,
        party_size: entry.party_size,
    }
}

impl ParkService {
    /// The service, with every line loaded into `lines` from the database.
    pub async fn start(
        store: Arc<dyn ParkStore>,
        lines: Arc<dyn LineStore>,
        clock: SharedClock,
        settings: ParkSettings,
    ) -> Result<Self, ParkError> {
        let service = Self {
            store,
            lines,
            clock,
            settings,
            snapshots: SnapshotCache::default(),
        };
        service.reload().await?;
        Ok(service)
    }

    /// Loads every line from the database into the line store.
    pub async fn reload(&self) -> Result<(), ParkError> {
        let all = self.store.all_waiting().await?;
        let mut at = 0;
        while at < all.len() {
            let attraction = all[at].0;
            let end = all[at..]
                .iter()
                .position(|(a, _)| *a != attraction)
                .map_or(all.len(), |n| at + n);
            let line: Vec<Waiting> = all[at..end].iter().map(|(_, w)| *w).collect();
            self.lines.load(attraction, &line).await?;
            at = end;
        }
        Ok(())
    }

    #[must_use]
    pub const fn settings(&self) -> ParkSettings {
        self.settings
    }

    pub async fn create(
        &self,
        _: &Staff,
        request: &NewAttraction,
    ) -> Result<Attraction, ParkError> {
        let attraction = Attraction::new(AttractionId::new(), request, self.clock.now())
            .map_err(ParkError::Invalid)?;
        self.store.create_attraction(&attraction).await?;
        Ok(attraction)
    }

    pub async fn attraction(&self, id: AttractionId) -> Result<Attraction, ParkError> {
        self.store
            .attraction(id)
            .await?
            .ok_or(ParkError::AttractionNotFound)
    }

    pub async fn list(
        &self,
        filter: &AttractionFilter,
        page: PageRequest,
    ) -> Result<Page<Attraction>, ParkError> {
        let rows = self.store.attractions(filter, page).await?;
        Ok(Page::from_rows(rows, page, "attractions", |a| a.id.0))
    }

    pub async fn update(
        &self,
        _: &Staff,
        id: AttractionId,
        patch: &AttractionPatch,
    ) -> Result<Attraction, ParkError> {
        let previous = self.attraction(id).await?;
        let next = previous
            .patched(patch, self.clock.now())
            .map_err(ParkError::Invalid)?;
        let _change = self.snapshots.change(id).await;
        self.store.update_attraction(&previous, &next).await?;
        Ok(next)
    }

    pub async fn hashtags(&self, prefix: &str, limit: u32) -> Result<Vec<HashtagCount>, ParkError> {
        Ok(self.store.hashtags(prefix, limit).await?)
    }

    /// Joins the line with a party of `party_size` (default 1). Under an
    /// `Idempotency-Key` the entry takes the key's effect id, and a retry
    /// after a lost answer finds the entry it made (ADR 0019).
    pub async fn join(
        &self,
        who: &Principal,
        attraction: AttractionId,
        party_size: Option<i64>,
        effect: Option<IdempotentEffect>,
    ) -> Result<LineEntryView, ParkError> {
        let max = self.settings.max_party_size;
        let party_size = u32::try_from(party_size.unwrap_or(1))
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ParkError::invalid("party_size", format!("must be between 1 and {max}"))
            })?;
        if let Some(effect) = effect.filter(|e| e.retry)
            && let Some(made) = self.store.entry(LineEntryId(effect.id)).await?
            && made.user_id == who.user_id
        {
            return self.view(made).await;
        }
        let entry = LineEntry {
            id: effect.map_or_else(LineEntryId::new, |e| LineEntryId(e.id)),
            attraction_id: attraction,
            user_id: who.user_id,
            party_size,
            status: EntryStatus::Waiting,
            seq: 0,
            joined_at: self.clock.now(),
            called_at: None,
            return_by: None,
            admitted_at: None,
            ended_at: None,
        };
        let entry = match self
            .store
            .join(entry, self.settings.max_lines_per_user)
            .await?
        {
            JoinOutcome::Joined(entry) => entry,
            JoinOutcome::AttractionNotFound => return Err(ParkError::AttractionNotFound),
            JoinOutcome::NotOperating => return Err(ParkError::NotOperating),
            JoinOutcome::AlreadyInLine(id) => return Err(ParkError::AlreadyInLine(id)),
            JoinOutcome::LineLimitReached(n) => return Err(ParkError::LineLimitReached(n)),
        };
        if let Err(e) = self.lines.add(attraction, waiting(&entry)).await {
            // Recorded; the next read counts it in the table and adds it.
            tracing::warn!(error = %e, "line store missed a join");
        }
        self.view(entry).await
    }

    /// The caller's newest entry in this line, with its live position.
    pub async fn mine(
        &self,
        who: &Principal,
        attraction: AttractionId,
    ) -> Result<LineEntryView, ParkError> {
        let entry = self
            .store
            .latest_entry(attraction, who.user_id)
            .await?
            .ok_or(ParkError::NotInLine)?;
        self.view(entry).await
    }

    /// Leaves the line (WAITING or CALLED → LEFT).
    pub async fn leave(&self, who: &Principal, attraction: AttractionId) -> Result<(), ParkError> {
        let entry = self
            .store
            .leave(attraction, who.user_id, self.clock.now())
            .await?
            .ok_or(ParkError::NotInLine)?;
        if entry.status == EntryStatus::Waiting
            && let Err(e) = self.lines.remove(attraction, &[waiting(&entry)]).await
        {
            tracing::warn!(error = %e, "line store missed a leave");
        }
        Ok(())
    }

    /// The active entries in join order (readers): WAITING ones with their
    /// position and estimate. Paged by join number (the cursor wraps it).
    pub async fn line(
        &self,
        attraction: AttractionId,
        page: PageRequest,
    ) -> Result<Page<LineEntryView>, ParkError> {
        let (snapshot, context) = self.context(attraction).await?;
        let attraction = snapshot.attraction;
        let after = page.after.map(|cursor| cursor.as_u64_pair().1);
        let rows = self
            .store
            .line(attraction.id, after, page.fetch_limit())
            .await?;
        let rows = Page::from_rows(rows, page, "line", |e| Uuid::from_u64_pair(0, e.seq));
        let mut views = Vec::with_capacity(rows.items.len());
        for entry in rows.items {
            let position = if entry.status == EntryStatus::Waiting {
                self.lines.position(attraction.id, entry.id).await?
            } else {
                None
            };
            let eta = position.and_then(|p| context.estimate(&attraction, p));
            views.push(LineEntryView::new(entry, position, eta));
        }
        Ok(Page {
            items: views,
            next_cursor: rows.next_cursor,
        })
    }

    /// Calls the next `count` parties: CALLED with `return_by`, announced
    /// on the bus in the same transaction.
    pub async fn call(
        &self,
        _: &Staff,
        attraction: AttractionId,
        count: i64,
    ) -> Result<Vec<LineEntryView>, ParkError> {
        let count = u32::try_from(count)
            .ok()
            .filter(|n| (1..=MAX_CALL_COUNT).contains(n))
            .ok_or_else(|| {
                ParkError::invalid("count", format!("must be between 1 and {MAX_CALL_COUNT}"))
            })?;
        let name = self.attraction(attraction).await?.name.to_string();
        let now = self.clock.now();
        let return_by = now + Duration::seconds(i64::from(self.settings.call_grace_seconds));
        let announce = Box::new(move |called: &[LineEntry]| {
            let message = LineEntryCalled {
                attraction_id: attraction,
                attraction_name: name,
                entries: called
                    .iter()
                    .zip(1..)
                    .map(|(e, position)| CalledEntry {
                        entry_id: e.id,
                        user_id: e.user_id,
                        party_size: e.party_size,
                        position,
                    })
                    .collect(),
                called_at: now,
                return_by,
            };
            bus::Envelope::new(&message, now).map_err(|e| e.to_string())
        });
        let called = match self
            .store
            .call(attraction, count, now, return_by, announce)
            .await?
        {
            CallOutcome::Called(called) => called,
            CallOutcome::AttractionNotFound => return Err(ParkError::AttractionNotFound),
            CallOutcome::NotOperating => return Err(ParkError::NotOperating),
        };
        let gone: Vec<Waiting> = called.iter().map(waiting).collect();
        if let Err(e) = self.lines.remove(attraction, &gone).await {
            tracing::warn!(error = %e, "line store missed a call");
        }
        metrics_called(called.len());
        Ok(called
            .into_iter()
            .map(|e| LineEntryView::new(e, None, None))
            .collect())
    }

    /// Admits a CALLED entry at the gate (of `attraction`, when given).
    pub async fn admit(
        &self,
        _: &Staff,
        entry: LineEntryId,
        attraction: Option<AttractionId>,
    ) -> Result<LineEntryView, ParkError> {
        let admitting = self.snapshots.admitting().await;
        let refused = match self
            .store
            .admit(entry, attraction, self.clock.now())
            .await?
        {
            AdmitOutcome::Admitted(entry) => {
                admitting.admitted(entry.clone());
                return Ok(LineEntryView::new(entry, None, None));
            }
            AdmitOutcome::NotFound => ParkError::EntryNotFound,
            AdmitOutcome::NotCalled(status) => ParkError::NotCalled(status),
            AdmitOutcome::Expired => ParkError::Expired,
            AdmitOutcome::WrongAttraction => ParkError::WrongAttraction,
        };
        admitting.refused();
        Err(refused)
    }

    /// Marks CALLED entries past `return_by` EXPIRED; how many.
    pub async fn expire_due(&self) -> Result<usize, ParkError> {
        let mut total = 0;
        loop {
            let expired = self.store.expire_due(self.clock.now(), 500).await?;
            total += expired.len();
            if expired.len() < 500 {
                return Ok(total);
            }
        }
    }

    /// Compares every line's store with the table and, unless `dry_run`,
    /// mends the lines that still differ after [`SETTLE`] (changes in
    /// flight between a commit and the store heal themselves in that time).
    pub async fn reconcile_lines(&self, dry_run: bool) -> Result<LineReport, ParkError> {
        let mut report = LineReport::default();
        for attraction in self.store.attraction_ids().await? {
            report.checked += 1;
            match self.reconcile_line(attraction, dry_run).await {
                Ok(None) => {}
                Ok(Some(check)) => {
                    report.differing += 1;
                    report.repaired += usize::from(check.repaired);
                    report.lines.push(check);
                }
                Err(e) => report.errors.push(format!("{attraction}: {e}")),
            }
        }
        Ok(report)
    }

    async fn reconcile_line(
        &self,
        attraction: AttractionId,
        dry_run: bool,
    ) -> Result<Option<LineCheck>, ParkError> {
        if self.compare(attraction).await?.2.is_empty() {
            return Ok(None);
        }
        tokio::time::sleep(SETTLE).await;
        let (held, recorded, difference) = self.compare(attraction).await?;
        if difference.is_empty() {
            return Ok(None);
        }
        if !dry_run {
            if difference.inconsistent {
                self.lines.load(attraction, &recorded).await?;
            } else {
                // Both idempotent: a removal or join racing these lands
                // the same, and the next run checks what this one did.
                self.lines.remove(attraction, &difference.extra).await?;
                for entry in &difference.missing {
                    self.lines.add(attraction, *entry).await?;
                }
            }
            tracing::warn!(
                %attraction,
                missing = difference.missing.len(),
                extra = difference.extra.len(),
                inconsistent = difference.inconsistent,
                "a line store differed from the table; repaired"
            );
        }
        Ok(Some(LineCheck {
            attraction_id: attraction,
            recorded: recorded.len(),
            held,
            missing: difference.missing.len(),
            extra: difference.extra.len(),
            inconsistent: difference.inconsistent,
            repaired: !dry_run,
        }))
    }

    /// The store, then the table: a join committed between the two reads
    /// shows as missing, a call or leave as extra, until it reaches the
    /// store.
    async fn compare(
        &self,
        attraction: AttractionId,
    ) -> Result<(usize, Vec<Waiting>, Difference), ParkError> {
        let (held, totals) = self.lines.members(attraction).await?;
        let recorded = self.store.waiting(attraction).await?;
        let difference = Difference::of(&held, totals, &recorded);
        Ok((held.len(), recorded, difference))
    }

    /// The public board: status, length, estimate for a party joining
    /// now, guests admitted in the last hour.
    pub async fn wait(&self, attraction: AttractionId) -> Result<WaitBoard, ParkError> {
        let (snapshot, context) = self.context(attraction).await?;
        let attraction = &snapshot.attraction;
        Ok(WaitBoard {
            status: attraction.status,
            line_length: context.totals.parties,
            estimated_wait_seconds: context.estimate(attraction, context.totals.parties + 1),
            admitted_last_hour: snapshot.admitted_last_hour,
        })
    }

    /// The attraction and its admissions, read at most once per
    /// [`SNAPSHOT_FOR`] (and per second of the clock) per attraction
    /// ([`crate::snapshots`]); another instance's changes show within a
    /// second.
    async fn snapshot(&self, id: AttractionId) -> Result<Snapshot, ParkError> {
        let now = self.clock.now();
        if let Some(cached) = self.snapshots.fresh(id, now) {
            return Ok(cached);
        }
        let read = async {
            let attraction = self.attraction(id).await?;
            let observed = self
                .store
                .observed(id, now - Duration::seconds(RATE_WINDOW_SECONDS))
                .await?;
            let hour = self.store.observed(id, now - Duration::hours(1)).await?;
            Ok(Snapshot {
                read_at: std::time::Instant::now(),
                now,
                attraction,
                observed,
                admitted_last_hour: hour.guests,
            })
        };
        self.snapshots.refresh(id, now, read).await
    }

    async fn context(&self, id: AttractionId) -> Result<(Snapshot, Context), ParkError> {
        let snapshot = self.snapshot(id).await?;
        let context = Context {
            totals: self.lines.totals(id).await?,
            observed: snapshot.observed,
            now: self.clock.now(),
        };
        Ok((snapshot, context))
    }

    /// The entry with its position and estimate. A line store that cannot
    /// answer (Redis down) does not fail the read: the position is counted
    /// in the table and the estimate left out.
    async fn view(&self, entry: LineEntry) -> Result<LineEntryView, ParkError> {
        if entry.status != EntryStatus::Waiting {
            return Ok(LineEntryView::new(entry, None, None));
        }
        let attraction = entry.attraction_id;
        let position = match self.lines.position(attraction, entry.id).await {
            Ok(Some(p)) => p,
            Ok(None) => {
                let p = self.store.position(attraction, entry.seq).await?;
                self.take_back(attraction, &entry).await?;
                p
            }
            Err(e) => {
                tracing::warn!(error = %e, "line store cannot answer; counting in the table");
                self.store.position(attraction, entry.seq).await?
            }
        };
        let eta = match self.context(attraction).await {
            Ok((snapshot, context)) => context.estimate(&snapshot.attraction, position),
            Err(ParkError::Lines(e)) => {
                tracing::warn!(error = %e, "line store cannot answer; no estimate");
                None
            }
            Err(e) => return Err(e),
        };
        Ok(LineEntryView::new(entry, Some(position), eta))
    }

    /// Adds back a WAITING entry the line store does not hold, then asks
    /// the table again: the entry read before the add may have been called
    /// (or left) since, and its removal may already have passed the store,
    /// which would leave the add a ghost. Removed again in that case; a
    /// call committed after the second read removes it itself.
    async fn take_back(
        &self,
        attraction: AttractionId,
        entry: &LineEntry,
    ) -> Result<(), ParkError> {
        if let Err(e) = self.lines.add(attraction, waiting(entry)).await {
            tracing::warn!(error = %e, "line store cannot take a missed entry back");
            return Ok(());
        }
        let still_waiting = self
            .store
            .entry(entry.id)
            .await?
            .is_some_and(|now| now.status == EntryStatus::Waiting);
        if !still_waiting && let Err(e) = self.lines.remove(attraction, &[waiting(entry)]).await {
            tracing::warn!(error = %e, "line store cannot drop an entry taken back");
        }
        Ok(())
    }
}

/// What an estimate needs besides the position.
struct Context {
    totals: crate::line::LineTotals,
    observed: Observed,
    now: Timestamp,
}

impl Context {
    fn estimate(&self, attraction: &Attraction, position: u64) -> Option<u64> {
        estimate(
            attraction,
            position,
            self.totals.parties,
            self.totals.guests,
            self.observed,
            self.now,
        )
    }
}

fn metrics_called(n: usize) {
    tracing::debug!(called = n, "line call");
}
