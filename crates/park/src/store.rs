//! The park's tables, for both backends: attractions, hashtags and their
//! join table, and the line entries, which are the record of every line.
//! A line's order lives here too (`seq`); the [`crate::line`] stores only
//! answer "where am I" quickly.

use async_trait::async_trait;
use kernel::db::{Db, bad_row, stored_count};
use kernel::text::{Description, Name};
use kernel::{Backend, PageRequest, Timestamp, UserId};
use sqlx::AssertSqlSafe;

use crate::line::Waiting;
use crate::model::{
    Attraction, AttractionFilter, AttractionId, EntryStatus, Hashtag, HashtagCount, LineEntry,
    LineEntryId, Observed,
};

/// What [`ParkStore::join`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinOutcome {
    Joined(LineEntry),
    AttractionNotFound,
    NotOperating,
    /// The user's active entry in this line.
    AlreadyInLine(LineEntryId),
    /// The user is active in this many lines already.
    LineLimitReached(u32),
}

/// What [`ParkStore::call`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    /// The entries called, first in line first.
    Called(Vec<LineEntry>),
    AttractionNotFound,
    NotOperating,
}

/// What [`ParkStore::admit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdmitOutcome {
    Admitted(LineEntry),
    NotFound,
    /// Not called (still waiting, left, or admitted already).
    NotCalled(EntryStatus),
    /// Called, but `return_by` has passed.
    Expired,
    /// The entry is in another attraction's line.
    WrongAttraction,
}

/// Builds the message a call announces, in the call's transaction.
pub type CallAnnouncement = Box<dyn FnOnce(&[LineEntry]) -> Result<bus::Envelope, String> + Send>;

#[async_trait]
pub trait ParkStore: Send + Sync {
    async fn create_attraction(&self, attraction: &Attraction) -> Result<(), sqlx::Error>;
    async fn attraction(&self, id: AttractionId) -> Result<Option<Attraction>, sqlx::Error>;
    /// In id order, after `page.after`.
    async fn attractions(
        &self,
        filter: &AttractionFilter,
        page: PageRequest,
    ) -> Result<Vec<Attraction>, sqlx::Error>;
    /// Writes `next` over `previous` (same id), hashtags and counts included.
    async fn update_attraction(
        &self,
        previous: &Attraction,
        next: &Attraction,
    ) -> Result<(), sqlx::Error>;
    /// Tags starting with `prefix` carried by at least one attraction, most
    /// used first.
    async fn hashtags(&self, prefix: &str, limit: u32) -> Result<Vec<HashtagCount>, sqlx::Error>;

    /// A new WAITING entry at the end of the line, unless refused.
    async fn join(
        &self,
        entry: LineEntry,
        max_lines_per_user: u32,
    ) -> Result<JoinOutcome, sqlx::Error>;
    /// The user's newest entry in this line (active or not).
    async fn latest_entry(
        &self,
        attraction: AttractionId,
        user: UserId,
    ) -> Result<Option<LineEntry>, sqlx::Error>;
    async fn entry(&self, id: LineEntryId) -> Result<Option<LineEntry>, sqlx::Error>;
    /// Counted in the table: 1 + the WAITING entries before `seq`. The
    /// fallback when a line store has lost an entry.
    async fn position(&self, attraction: AttractionId, seq: u64) -> Result<u64, sqlx::Error>;
    /// The active entries (WAITING, then CALLED) in join order, after `seq`.
    async fn line(
        &self,
        attraction: AttractionId,
        after_seq: Option<u64>,
        limit: i64,
    ) -> Result<Vec<LineEntry>, sqlx::Error>;
    /// Every WAITING entry of every line, to load a line store.
    async fn all_waiting(&self) -> Result<Vec<(AttractionId, Waiting)>, sqlx::Error>;
    /// One line's WAITING entries in join order, to reconcile its line store.
    async fn waiting(&self, attraction: AttractionId) -> Result<Vec<Waiting>, sqlx::Error>;
    /// Every attraction's id.
    async fn attraction_ids(&self) -> Result<Vec<AttractionId>, sqlx::Error>;
    /// Calls the first `count` WAITING entries, enqueueing `announce`'s
    /// message in the same transaction.
    async fn call(
        &self,
        attraction: AttractionId,
        count: u32,
        now: Timestamp,
        return_by: Timestamp,
        announce: CallAnnouncement,
    ) -> Result<CallOutcome, sqlx::Error>;
    async fn admit(
        &self,
        entry: LineEntryId,
        attraction: Option<AttractionId>,
        now: Timestamp,
    ) -> Result<AdmitOutcome, sqlx::Error>;
    /// Marks the user's active entry LEFT; the entry as it was.
    async fn leave(
        &self,
        attraction: AttractionId,
        user: UserId,
        now: Timestamp,
    ) -> Result<Option<LineEntry>, sqlx::Error>;
    /// Marks up to `limit` CALLED entries past `return_by` EXPIRED.
    async fn expire_due(&self, now: Timestamp, limit: i64) -> Result<Vec<LineEntry>, sqlx::Error>;
    /// Guests admitted since `since`, and the first admission's time.
    async fn observed(
        &self,
        attraction: AttractionId,
        since: Timestamp,
    ) -> Result<Observed, sqlx::Error>;
}

#[derive(Debug, Clone)]
pub struct SqlParkStore {
    db: Db,
}

impl SqlParkStore {
    #[must_use]
    pub const fn new(db: Db) -> Self {
        Self { db }
    }
}

#[derive(sqlx::FromRow)]
struct AttractionRow {
    id: AttractionId,
    name: String,
    kind: String,
    description: String,
    status: String,
    capacity_per_cycle: i64,
    cycle_seconds: i64,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl AttractionRow {
    fn into_model(self, tags: Vec<String>) -> Result<Attraction, sqlx::Error> {
        let hashtags = tags
            .iter()
            .map(|t| Hashtag::parse(t).map_err(|e| bad_row("hashtag", e)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Attraction {
            id: self.id,
            name: Name::parse(&self.name).map_err(|e| bad_row("attraction name", e))?,
            kind: self
                .kind
                .parse()
                .map_err(|e| bad_row("attraction kind", e))?,
            description: Description::parse(&self.description)
                .map_err(|e| bad_row("attraction description", e))?,
            hashtags,
            status: self
                .status
                .parse()
                .map_err(|e| bad_row("attraction status", e))?,
            capacity_per_cycle: stored_count("capacity_per_cycle", self.capacity_per_cycle)?,
            cycle_seconds: stored_count("cycle_seconds", self.cycle_seconds)?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

const ATTRACTION_COLUMNS: &str = "a.id, a.name, a.kind, a.description, a.status, \
    a.capacity_per_cycle, a.cycle_seconds, a.created_at, a.updated_at";

#[derive(sqlx::FromRow)]
struct EntryRow {
    id: LineEntryId,
    attraction_id: AttractionId,
    user_id: UserId,
    party_size: i64,
    status: String,
    seq: i64,
    joined_at: Timestamp,
    called_at: Option<Timestamp>,
    return_by: Option<Timestamp>,
    admitted_at: Option<Timestamp>,
    ended_at: Option<Timestamp>,
}

impl TryFrom<EntryRow> for LineEntry {
    type Error = sqlx::Error;
    fn try_from(row: EntryRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.id,
            attraction_id: row.attraction_id,
            user_id: row.user_id,
            party_size: stored_count("party_size", row.party_size)?,
            status: row.status.parse().map_err(|e| bad_row("entry status", e))?,
            seq: u64::try_from(row.seq).map_err(|e| bad_row("entry seq", e))?,
            joined_at: row.joined_at,
            called_at: row.called_at,
            return_by: row.return_by,
            admitted_at: row.admitted_at,
            ended_at: row.ended_at,
        })
    }
}

const ENTRY_COLUMNS: &str = "id, attraction_id, user_id, party_size, status, seq, joined_at, \
    called_at, return_by, admitted_at, ended_at";

fn entries(rows: Vec<EntryRow>) -> Result<Vec<LineEntry>, sqlx::Error> {
    rows.into_iter().map(TryInto::try_into).collect()
}

fn seq(n: u64) -> Result<i64, sqlx::Error> {
    i64::try_from(n).map_err(|e| bad_row("seq", e))
}

/// `$from, $from+1, …` for `n` values.
/// A WAITING entry as its columns hold it.
fn waiting_row(id: LineEntryId, seq: i64, party: i64) -> Result<Waiting, sqlx::Error> {
    Ok(Waiting {
        id,
        seq: u64::try_from(seq).map_err(|e| bad_row("seq", e))?,
        party_size: stored_count("party_size", party)?,
    })
}

fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The upper bound of a prefix range: no tag character sorts after it.
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

/// A transaction-scoped advisory lock key for one user's joins.
fn user_lock_key(user: UserId) -> i64 {
    let (high, _) = user.0.as_u64_pair();
    i64::from_ne_bytes(high.to_ne_bytes())
}

macro_rules! tag_ops {
    ($conn:expr, $id:expr, $add:expr, $remove:expr) => {{
        for tag in $remove {
            sqlx::query("delete from attraction_hashtags where tag = $1 and attraction_id = $2")
                .bind(tag.as_str())
                .bind($id)
                .execute(&mut *$conn)
                .await?;
            sqlx::query(
                "update hashtags set attraction_count = attraction_count - 1 where tag = $1",
            )
            .bind(tag.as_str())
            .execute(&mut *$conn)
            .await?;
        }
        for tag in $add {
            sqlx::query(
                "insert into hashtags (tag, attraction_count) values ($1, 1) \
                 on conflict (tag) do update set attraction_count = hashtags.attraction_count + 1",
            )
            .bind(tag.as_str())
            .execute(&mut *$conn)
            .await?;
            sqlx::query("insert into attraction_hashtags (tag, attraction_id) values ($1, $2)")
                .bind(tag.as_str())
                .bind($id)
                .execute(&mut *$conn)
                .await?;
        }
        Ok::<(), sqlx::Error>(())
    }};
}

impl SqlParkStore {
    async fn with_tags(&self, rows: Vec<AttractionRow>) -> Result<Vec<Attraction>, sqlx::Error> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "select attraction_id, tag from attraction_hashtags where attraction_id in ({}) \
             order by attraction_id, tag",
            placeholders(1, rows.len())
        );
        let ids: Vec<AttractionId> = rows.iter().map(|r| r.id).collect();
        let pairs: Vec<(AttractionId, String)> = kernel::read!(&self.db, |pool| {
            let mut q = sqlx::query_as(AssertSqlSafe(sql.clone()));
            for id in &ids {
                q = q.bind(*id);
            }
            q.fetch_all(pool).await
        })?;
        rows.into_iter()
            .map(|row| {
                let tags = pairs
                    .iter()
                    .filter(|(id, _)| *id == row.id)
                    .map(|(_, t)| t.clone())
                    .collect();
                row.into_model(tags)
            })
            .collect()
    }
}

#[async_trait]
impl ParkStore for SqlParkStore {
    async fn create_attraction(&self, a: &Attraction) -> Result<(), sqlx::Error> {
        let a = a.clone();
        kernel::write_tx!(&self.db, |conn| {
            sqlx::query(
                "insert into attractions (id, name, kind, description, status, \
                 capacity_per_cycle, cycle_seconds, created_at, updated_at) \
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(a.id)
            .bind(a.name.as_str())
            .bind(a.kind.as_str())
            .bind(a.description.as_str())
            .bind(a.status.as_str())
            .bind(i64::from(a.capacity_per_cycle))
            .bind(i64::from(a.cycle_seconds))
            .bind(a.created_at)
            .bind(a.updated_at)
            .execute(&mut *conn)
            .await?;
            tag_ops!(
                conn,
                a.id,
                a.hashtags.iter(),
                std::iter::empty::<&Hashtag>()
            )
        })
    }

    async fn attraction(&self, id: AttractionId) -> Result<Option<Attraction>, sqlx::Error> {
        let sql = format!("select {ATTRACTION_COLUMNS} from attractions a where a.id = $1");
        let row: Option<AttractionRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(AssertSqlSafe(sql.clone()))
                .bind(id)
                .fetch_optional(pool)
                .await
        })?;
        match row {
            None => Ok(None),
            Some(row) => Ok(self.with_tags(vec![row]).await?.pop()),
        }
    }

    async fn attractions(
        &self,
        filter: &AttractionFilter,
        page: PageRequest,
    ) -> Result<Vec<Attraction>, sqlx::Error> {
        // All of the tags: the attractions with as many matching join rows
        // as tags asked for, read off the (tag, attraction_id) key.
        let tags = &filter.hashtags;
        let all_of = if tags.is_empty() {
            String::new()
        } else {
            format!(
                " and a.id in (select h.attraction_id from attraction_hashtags h \
                 where h.tag in ({}) group by h.attraction_id having count(*) = $5)",
                placeholders(6, tags.len())
            )
        };
        let sql = format!(
            "select {ATTRACTION_COLUMNS} from attractions a \
             where ($1 is null or a.id > $1) and ($2 is null or a.kind = $2) \
             and ($3 is null or a.status = $3){all_of} order by a.id limit $4"
        );
        let count = i64::try_from(tags.len()).unwrap_or(i64::MAX);
        let rows: Vec<AttractionRow> = kernel::read!(&self.db, |pool| {
            let mut q = sqlx::query_as(AssertSqlSafe(sql.clone()))
                .bind(page.after.map(AttractionId))
                .bind(filter.kind.map(|k| k.as_str()))
                .bind(filter.status.map(|s| s.as_str()))
                .bind(page.fetch_limit());
            if !tags.is_empty() {
                q = q.bind(count);
                for tag in tags {
                    q = q.bind(tag.as_str());
                }
            }
            q.fetch_all(pool).await
        })?;
        self.with_tags(rows).await
    }

    async fn update_attraction(
        &self,
        previous: &Attraction,
        next: &Attraction,
    ) -> Result<(), sqlx::Error> {
        let removed: Vec<Hashtag> = previous
            .hashtags
            .iter()
            .filter(|t| !next.hashtags.contains(t))
            .cloned()
            .collect();
        let added: Vec<Hashtag> = next
            .hashtags
            .iter()
            .filter(|t| !previous.hashtags.contains(t))
            .cloned()
            .collect();
        let a = next.clone();
        kernel::write_tx!(&self.db, |conn| {
            sqlx::query(
                "update attractions set name = $2, description = $3, status = $4, \
                 capacity_per_cycle = $5, cycle_seconds = $6, updated_at = $7 where id = $1",
            )
            .bind(a.id)
            .bind(a.name.as_str())
            .bind(a.description.as_str())
            .bind(a.status.as_str())
            .bind(i64::from(a.capacity_per_cycle))
            .bind(i64::from(a.cycle_seconds))
            .bind(a.updated_at)
            .execute(&mut *conn)
            .await?;
            tag_ops!(conn, a.id, added.iter(), removed.iter())
        })
    }

    async fn hashtags(&self, prefix: &str, limit: u32) -> Result<Vec<HashtagCount>, sqlx::Error> {
        let (start, end) = (prefix.to_owned(), prefix_end(prefix));
        let rows: Vec<(String, i64)> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(
                "select tag, attraction_count from hashtags \
                 where tag >= $1 and tag < $2 and attraction_count > 0 \
                 order by attraction_count desc, tag limit $3",
            )
            .bind(&start)
            .bind(&end)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter()
            .map(|(tag, count)| {
                Ok(HashtagCount {
                    tag,
                    count: u64::try_from(count).map_err(|e| bad_row("hashtag count", e))?,
                })
            })
            .collect()
    }

    async fn join(
        &self,
        entry: LineEntry,
        max_lines_per_user: u32,
    ) -> Result<JoinOutcome, sqlx::Error> {
        kernel::write_tx!(&self.db, |conn, backend| {
            // PostgreSQL: one user's joins one at a time, so two at once
            // cannot both pass the checks below. SQLite has one writer.
            if backend == Backend::Postgres {
                sqlx::query("select pg_advisory_xact_lock($1)")
                    .bind(user_lock_key(entry.user_id))
                    .execute(&mut *conn)
                    .await?;
            }
            let active: Vec<(LineEntryId, AttractionId)> = sqlx::query_as(
                "select id, attraction_id from line_entries \
                 where user_id = $1 and status in ('WAITING', 'CALLED')",
            )
            .bind(entry.user_id)
            .fetch_all(&mut *conn)
            .await?;
            if let Some((id, _)) = active.iter().find(|(_, a)| *a == entry.attraction_id) {
                return Ok(JoinOutcome::AlreadyInLine(*id));
            }
            if active.len() >= max_lines_per_user as usize {
                return Ok(JoinOutcome::LineLimitReached(max_lines_per_user));
            }
            // Bumping the join number locks the attraction's row on
            // PostgreSQL: joins to one line take numbers in commit order.
            let next: Option<i64> = sqlx::query_scalar(
                "update attractions set line_seq = line_seq + 1 \
                 where id = $1 and status = 'OPERATING' returning line_seq",
            )
            .bind(entry.attraction_id)
            .fetch_optional(&mut *conn)
            .await?;
            let Some(next) = next else {
                let exists: Option<AttractionId> =
                    sqlx::query_scalar("select id from attractions where id = $1")
                        .bind(entry.attraction_id)
                        .fetch_optional(&mut *conn)
                        .await?;
                return Ok(if exists.is_some() {
                    JoinOutcome::NotOperating
                } else {
                    JoinOutcome::AttractionNotFound
                });
            };
            let entry = LineEntry {
                seq: u64::try_from(next).map_err(|e| bad_row("line_seq", e))?,
                ..entry
            };
            sqlx::query(
                "insert into line_entries (id, attraction_id, user_id, party_size, status, seq, \
                 joined_at) values ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(entry.id)
            .bind(entry.attraction_id)
            .bind(entry.user_id)
            .bind(i64::from(entry.party_size))
            .bind(entry.status.as_str())
            .bind(next)
            .bind(entry.joined_at)
            .execute(&mut *conn)
            .await?;
            Ok(JoinOutcome::Joined(entry))
        })
    }

    async fn latest_entry(
        &self,
        attraction: AttractionId,
        user: UserId,
    ) -> Result<Option<LineEntry>, sqlx::Error> {
        let sql = format!(
            "select {ENTRY_COLUMNS} from line_entries where attraction_id = $1 and user_id = $2 \
             order by seq desc limit 1"
        );
        let row: Option<EntryRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(AssertSqlSafe(sql.clone()))
                .bind(attraction)
                .bind(user)
                .fetch_optional(pool)
                .await
        })?;
        row.map(TryInto::try_into).transpose()
    }

    async fn entry(&self, id: LineEntryId) -> Result<Option<LineEntry>, sqlx::Error> {
        let sql = format!("select {ENTRY_COLUMNS} from line_entries where id = $1");
        let row: Option<EntryRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(AssertSqlSafe(sql.clone()))
                .bind(id)
                .fetch_optional(pool)
                .await
        })?;
        row.map(TryInto::try_into).transpose()
    }

    async fn position(&self, attraction: AttractionId, at: u64) -> Result<u64, sqlx::Error> {
        let at = seq(at)?;
        let ahead: i64 = kernel::read!(&self.db, |pool| {
            sqlx::query_scalar(
                "select count(*) from line_entries \
                 where attraction_id = $1 and status = 'WAITING' and seq < $2",
            )
            .bind(attraction)
            .bind(at)
            .fetch_one(pool)
            .await
        })?;
        Ok(u64::try_from(ahead).map_err(|e| bad_row("position", e))? + 1)
    }

    async fn line(
        &self,
        attraction: AttractionId,
        after_seq: Option<u64>,
        limit: i64,
    ) -> Result<Vec<LineEntry>, sqlx::Error> {
        let after = seq(after_seq.unwrap_or(0))?;
        let sql = format!(
            "select {ENTRY_COLUMNS} from line_entries where attraction_id = $1 \
             and status in ('WAITING', 'CALLED') and seq > $2 order by seq limit $3"
        );
        let rows: Vec<EntryRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(AssertSqlSafe(sql.clone()))
                .bind(attraction)
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await
        })?;
        entries(rows)
    }

    async fn all_waiting(&self) -> Result<Vec<(AttractionId, Waiting)>, sqlx::Error> {
        let rows: Vec<(AttractionId, LineEntryId, i64, i64)> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(
                "select attraction_id, id, seq, party_size from line_entries \
                 where status = 'WAITING' order by attraction_id, seq",
            )
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter()
            .map(|(attraction, id, seq, party)| Ok((attraction, waiting_row(id, seq, party)?)))
            .collect()
    }

    async fn waiting(&self, attraction: AttractionId) -> Result<Vec<Waiting>, sqlx::Error> {
        let rows: Vec<(LineEntryId, i64, i64)> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(
                "select id, seq, party_size from line_entries \
                 where attraction_id = $1 and status = 'WAITING' order by seq",
            )
            .bind(attraction)
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter()
            .map(|(id, seq, party)| waiting_row(id, seq, party))
            .collect()
    }

    async fn attraction_ids(&self) -> Result<Vec<AttractionId>, sqlx::Error> {
        kernel::read!(&self.db, |pool| {
            sqlx::query_scalar("select id from attractions order by id")
                .fetch_all(pool)
                .await
        })
    }

    async fn call(
        &self,
        attraction: AttractionId,
        count: u32,
        now: Timestamp,
        return_by: Timestamp,
        announce: CallAnnouncement,
    ) -> Result<CallOutcome, sqlx::Error> {
        kernel::write_tx!(&self.db, |conn, backend| {
            // PostgreSQL: lock the attraction so two calls take turns; SQLite
            // has one writer.
            let lock = match backend {
                Backend::Postgres => "select status from attractions where id = $1 for update",
                Backend::Sqlite => "select status from attractions where id = $1",
            };
            let status: Option<String> = sqlx::query_scalar(lock)
                .bind(attraction)
                .fetch_optional(&mut *conn)
                .await?;
            match status.as_deref() {
                None => return Ok(CallOutcome::AttractionNotFound),
                Some("OPERATING") => {}
                Some(_) => return Ok(CallOutcome::NotOperating),
            }
            let sql = format!(
                "update line_entries set status = 'CALLED', called_at = $3, return_by = $4 \
                 where status = 'WAITING' and id in (select id from line_entries \
                 where attraction_id = $1 and status = 'WAITING' order by seq limit $2) \
                 returning {ENTRY_COLUMNS}"
            );
            let rows: Vec<EntryRow> = sqlx::query_as(AssertSqlSafe(sql))
                .bind(attraction)
                .bind(i64::from(count))
                .bind(now)
                .bind(return_by)
                .fetch_all(&mut *conn)
                .await?;
            let mut called = entries(rows)?;
            called.sort_by_key(|e| e.seq);
            if !called.is_empty() {
                let envelope = announce(&called).map_err(|e| bad_row("call message", e))?;
                bus::enqueue!(conn, &envelope)?;
            }
            Ok(CallOutcome::Called(called))
        })
    }

    async fn admit(
        &self,
        id: LineEntryId,
        attraction: Option<AttractionId>,
        now: Timestamp,
    ) -> Result<AdmitOutcome, sqlx::Error> {
        kernel::write_tx!(&self.db, |conn, backend| {
            let sql = match backend {
                Backend::Postgres => {
                    format!("select {ENTRY_COLUMNS} from line_entries where id = $1 for update")
                }
                Backend::Sqlite => {
                    format!("select {ENTRY_COLUMNS} from line_entries where id = $1")
                }
            };
            let row: Option<EntryRow> = sqlx::query_as(AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
            let Some(entry) = row.map(LineEntry::try_from).transpose()? else {
                return Ok(AdmitOutcome::NotFound);
            };
            if attraction.is_some_and(|a| a != entry.attraction_id) {
                return Ok(AdmitOutcome::WrongAttraction);
            }
            match entry.status {
                EntryStatus::Called => {}
                EntryStatus::Expired => return Ok(AdmitOutcome::Expired),
                other => return Ok(AdmitOutcome::NotCalled(other)),
            }
            if entry.return_by.is_some_and(|by| by <= now) {
                return Ok(AdmitOutcome::Expired);
            }
            sqlx::query(
                "update line_entries set status = 'ADMITTED', admitted_at = $2, ended_at = $2 \
                 where id = $1 and status = 'CALLED'",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            Ok(AdmitOutcome::Admitted(LineEntry {
                status: EntryStatus::Admitted,
                admitted_at: Some(now),
                ended_at: Some(now),
                ..entry
            }))
        })
    }

    async fn leave(
        &self,
        attraction: AttractionId,
        user: UserId,
        now: Timestamp,
    ) -> Result<Option<LineEntry>, sqlx::Error> {
        kernel::write_tx!(&self.db, |conn| {
            let sql = format!(
                "select {ENTRY_COLUMNS} from line_entries where attraction_id = $1 \
                 and user_id = $2 and status in ('WAITING', 'CALLED')"
            );
            let row: Option<EntryRow> = sqlx::query_as(AssertSqlSafe(sql))
                .bind(attraction)
                .bind(user)
                .fetch_optional(&mut *conn)
                .await?;
            let Some(entry) = row.map(LineEntry::try_from).transpose()? else {
                return Ok(None);
            };
            let done = sqlx::query(
                "update line_entries set status = 'LEFT', ended_at = $2 \
                 where id = $1 and status = $3",
            )
            .bind(entry.id)
            .bind(now)
            .bind(entry.status.as_str())
            .execute(&mut *conn)
            .await?;
            Ok((done.rows_affected() == 1).then_some(entry))
        })
    }

    async fn expire_due(&self, now: Timestamp, limit: i64) -> Result<Vec<LineEntry>, sqlx::Error> {
        // A read first: the sweep runs every second, and a write (an fsync
        // on SQLite) only when a call is due.
        let due: Option<LineEntryId> = kernel::read!(&self.db, |pool| {
            sqlx::query_scalar(
                "select id from line_entries where status = 'CALLED' and return_by <= $1 limit 1",
            )
            .bind(now)
            .fetch_optional(pool)
            .await
        })?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        kernel::write_tx!(&self.db, |conn| {
            let sql = format!(
                "update line_entries set status = 'EXPIRED', ended_at = $1 \
                 where status = 'CALLED' and id in (select id from line_entries \
                 where status = 'CALLED' and return_by <= $1 order by return_by limit $2) \
                 returning {ENTRY_COLUMNS}"
            );
            let rows: Vec<EntryRow> = sqlx::query_as(AssertSqlSafe(sql))
                .bind(now)
                .bind(limit)
                .fetch_all(&mut *conn)
                .await?;
            entries(rows)
        })
    }

    async fn observed(
        &self,
        attraction: AttractionId,
        since: Timestamp,
    ) -> Result<Observed, sqlx::Error> {
        let (guests, first): (Option<i64>, Option<Timestamp>) = kernel::read!(&self.db, |pool| {
            sqlx::query_as(
                "select cast(sum(party_size) as bigint), min(admitted_at) from line_entries \
                 where attraction_id = $1 and status = 'ADMITTED' and admitted_at >= $2",
            )
            .bind(attraction)
            .bind(since)
            .fetch_one(pool)
            .await
        })?;
        Ok(Observed {
            guests: u64::try_from(guests.unwrap_or(0)).map_err(|e| bad_row("admitted", e))?,
            first_admitted_at: first,
        })
    }
}
