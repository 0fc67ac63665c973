//! The coupon tables, behind a trait shaped like the use cases. One SQL
//! implementation serves SQLite and PostgreSQL through `kernel::write_tx!`
//! and `kernel::read!`; the conformance suite in `tests/store.rs` runs it on
//! each.
//!
//! Issuing never updates a shared row: the coupon insert is the claim, and a
//! campaign's issued count is the count of its public coupons.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use kernel::db::rusqlite;
use kernel::db::{Db, SqliteDb, bad_row, direct_error, is_any_unique_violation, stored_count};
use kernel::text::Name;
use kernel::{PageRequest, Timestamp, UserId};
use sqlx::SqliteConnection;

use crate::model::{
    Campaign, CampaignIssues, Coupon, CouponCampaignId, CouponCode, CouponId, Discount,
    DiscountSpec, GrantId, Schedule,
};
use crate::stock::CampaignStock;

/// A public issue to write: the coupon, and its number among the user's
/// coupons of the campaign when the stock gate counted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponClaim {
    pub coupon: Coupon,
    /// What the gate counted the user holding from the campaign's stock with
    /// this coupon ([`gate::Taken::held`]): 1 for the first. `None` when it
    /// did not count, and the database numbers the coupon after the user's
    /// highest. Either way the unique (user, campaign, ordinal) decides, and
    /// a number already used (a give-back raced with takes) is replaced by
    /// the lowest free one.
    pub ordinal: Option<u32>,
}

/// The outcome of writing a public issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IssueOutcome {
    /// The coupon is written: the claim is durable.
    Issued,
    /// The user already holds `per_user_limit` public coupons of the
    /// campaign; nothing was written.
    LimitReached,
    CampaignNotFound,
}

#[async_trait]
pub trait CouponStore: Send + Sync {
    async fn create_campaign(&self, campaign: Campaign) -> Result<(), sqlx::Error>;
    async fn campaign(&self, id: CouponCampaignId) -> Result<Option<Campaign>, sqlx::Error>;
    /// Campaigns in id order.
    async fn list_campaigns(&self, page: PageRequest) -> Result<Vec<Campaign>, sqlx::Error>;
    /// Every campaign's id, in id order.
    async fn campaign_ids(&self) -> Result<Vec<CouponCampaignId>, sqlx::Error>;
    /// Writes coupons from their campaigns' public stock, each unless its
    /// user already holds the campaign's `per_user_limit`, in one
    /// transaction; the outcomes are in the order given. An error (a
    /// duplicate code, say) writes none of them.
    async fn issue(&self, claims: Vec<CouponClaim>) -> Result<Vec<IssueOutcome>, sqlx::Error>;
    /// Writes a reward grant's coupon unless the grant already has one, and
    /// returns the grant's coupon either way; `None` if the campaign does not
    /// exist. Grants are outside the public stock and the per-user limit.
    async fn grant(&self, grant: GrantId, coupon: Coupon) -> Result<Option<Coupon>, sqlx::Error>;
    /// A user's coupons in id order, as stored (not yet read as of now).
    async fn coupons_of(&self, user: UserId, page: PageRequest)
    -> Result<Vec<Coupon>, sqlx::Error>;
    /// A campaign's public stock as recorded; `None` if it does not exist.
    async fn stock(&self, id: CouponCampaignId) -> Result<Option<CampaignStock>, sqlx::Error>;
    /// The coupon, as stored, if it is written (the stock gate's claim is
    /// durable, or a keyed issue's first attempt made it).
    async fn coupon(&self, id: CouponId) -> Result<Option<Coupon>, sqlx::Error>;
    /// The `limit` most recent campaigns (newest first) with their coupons
    /// issued and granted.
    async fn issues_per_campaign(&self, limit: i64) -> Result<Vec<CampaignIssues>, sqlx::Error>;
    /// Where the claim batcher runs ([`kernel::Db::writer_runtime`]).
    fn writer_runtime(&self) -> tokio::runtime::Handle {
        tokio::runtime::Handle::current()
    }
}

/// The SQL implementation for both backends.
#[derive(Debug, Clone)]
pub struct SqlCouponStore {
    db: Db,
}

impl SqlCouponStore {
    #[must_use]
    pub const fn new(db: Db) -> Self {
        Self { db }
    }

    /// [`CouponStore::issue`] in one transaction, the batch statements
    /// meeting conflicts as `conflicts` says.
    async fn write_issue(
        &self,
        claims: Arc<[CouponClaim]>,
        conflicts: Conflicts,
    ) -> Result<Vec<IssueOutcome>, sqlx::Error> {
        kernel::write_tx!(&self.db, |conn| {
            // A user's later unnumbered claims are written one by one after
            // the statements, in order, so they are answered as if written
            // in turn.
            let rows = statement_rows(&claims);
            let mut written = HashSet::with_capacity(claims.len());
            for chunk in rows.chunks(rows_per_statement(&*conn)) {
                let inserted = conn.insert_rows(chunk, conflicts).await?;
                if usize::try_from(inserted) == Ok(chunk.len()) {
                    written.extend(chunk.iter().map(|c| c.coupon.id));
                } else {
                    // Some rows were skipped: which ones, by id (rare: a
                    // drifted gate, a number used twice after a give-back,
                    // or a race with another instance).
                    for claim in chunk {
                        if sqlx::query(COUPON_EXISTS)
                            .bind(claim.coupon.id)
                            .fetch_optional(&mut *conn)
                            .await?
                            .is_some()
                        {
                            written.insert(claim.coupon.id);
                        }
                    }
                }
            }
            let mut outcomes = Vec::with_capacity(claims.len());
            for CouponClaim { coupon, .. } in claims.iter() {
                if written.contains(&coupon.id) {
                    outcomes.push(IssueOutcome::Issued);
                    continue;
                }
                // Skipped by the batch: one at a time. Each lost race means
                // another coupon of this user was committed, so the next try
                // sees one more coupon held: this ends by the limit.
                let outcome = loop {
                    let inserted = sqlx::query(ISSUE)
                        .bind(coupon.id)
                        .bind(coupon.code.as_str())
                        .bind(coupon.user_id)
                        .bind(coupon.status.as_str())
                        .bind(coupon.issued_at)
                        .bind(coupon.expires_at)
                        .bind(coupon.campaign_id)
                        .execute(&mut *conn)
                        .await?;
                    if inserted.rows_affected() == 1 {
                        break IssueOutcome::Issued;
                    }
                    let held: Option<(i64, i64)> = sqlx::query_as(HELD)
                        .bind(coupon.campaign_id)
                        .bind(coupon.user_id)
                        .fetch_optional(&mut *conn)
                        .await?;
                    match held {
                        None => break IssueOutcome::CampaignNotFound,
                        Some((held, limit)) if held >= limit => break IssueOutcome::LimitReached,
                        Some(_) => {}
                    }
                };
                outcomes.push(outcome);
            }
            Ok(outcomes)
        })
    }
}

/// The claims of a batch that go into the multi-row statements: those the
/// gate numbered, and of the others each user's first (two unnumbered rows
/// of one user would compute the same ordinal).
fn statement_rows(claims: &[CouponClaim]) -> Vec<&CouponClaim> {
    let mut users = HashSet::with_capacity(claims.len());
    claims
        .iter()
        .filter(|c| c.ordinal.is_some() || users.insert((c.coupon.campaign_id, c.coupon.user_id)))
        .collect()
}

/// The columns a [`CampaignRow`] reads, for `concat!` (sqlx takes only static SQL).
macro_rules! campaign_columns {
    () => {
        "id, name, discount_kind, discount_value, discount_currency, total_quantity, \
         per_user_limit, issue_starts_at, issue_ends_at, valid_until, created_at"
    };
}

#[derive(sqlx::FromRow)]
struct CampaignRow {
    id: CouponCampaignId,
    name: String,
    discount_kind: String,
    discount_value: i64,
    discount_currency: Option<String>,
    total_quantity: i64,
    per_user_limit: i64,
    issue_starts_at: Timestamp,
    issue_ends_at: Timestamp,
    valid_until: Timestamp,
    created_at: Timestamp,
}

impl TryFrom<CampaignRow> for Campaign {
    type Error = sqlx::Error;
    fn try_from(row: CampaignRow) -> Result<Self, Self::Error> {
        let discount = Discount::parse(&DiscountSpec {
            kind: row.discount_kind,
            value: row.discount_value,
            currency: row.discount_currency,
        })
        .map_err(|errors| {
            let reasons: Vec<String> = errors
                .into_iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect();
            bad_row("discount", reasons.join("; "))
        })?;
        Ok(Self {
            id: row.id,
            name: Name::parse(&row.name).map_err(|e| bad_row("campaign name", e))?,
            discount,
            total_quantity: stored_count("total_quantity", row.total_quantity)?,
            per_user_limit: stored_count("per_user_limit", row.per_user_limit)?,
            schedule: Schedule::new(row.issue_starts_at, row.issue_ends_at, row.valid_until)
                .map_err(|e| bad_row("campaign schedule", e))?,
            created_at: row.created_at,
        })
    }
}

/// The columns a [`CouponRow`] reads.
macro_rules! coupon_columns {
    () => {
        "id, code, campaign_id, user_id, status, issued_at, expires_at"
    };
}

#[derive(sqlx::FromRow)]
struct CouponRow {
    id: CouponId,
    code: String,
    campaign_id: CouponCampaignId,
    user_id: UserId,
    status: String,
    issued_at: Timestamp,
    expires_at: Timestamp,
}

impl TryFrom<CouponRow> for Coupon {
    type Error = sqlx::Error;
    fn try_from(row: CouponRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.id,
            code: CouponCode::parse(&row.code).map_err(|e| bad_row("coupon code", e))?,
            campaign_id: row.campaign_id,
            user_id: row.user_id,
            status: row
                .status
                .parse()
                .map_err(|e| bad_row("coupon status", e))?,
            issued_at: row.issued_at,
            expires_at: row.expires_at,
        })
    }
}

/// A public issue on its own: the user's lowest free ordinal (1, or one
/// above an ordinal they hold, that they do not hold), written only while it
/// stays within the campaign's per-user limit. Ordinals the stock gate gave
/// can leave a gap (a unit given back while the user's later take was in
/// flight), which this fills. Two writers racing for the same ordinal meet
/// at the unique (user_id, campaign_id, ordinal); the loser writes nothing
/// and tries again.
const ISSUE: &str = "insert into coupons (id, code, campaign_id, user_id, ordinal, status, \
     issued_at, expires_at, updated_at) \
     select $1, $2, c.id, $3, free.ordinal, $4, $5, $6, $5 \
     from coupon_campaigns c, \
     (select min(next.ordinal) as ordinal from \
       (select 1 as ordinal union all \
        select ordinal + 1 from coupons \
        where campaign_id = $7 and user_id = $3 and ordinal is not null) next \
      where not exists (select 1 from coupons held \
        where held.campaign_id = $7 and held.user_id = $3 and held.ordinal = next.ordinal)) free \
     where c.id = $7 and free.ordinal <= c.per_user_limit \
     on conflict (user_id, campaign_id, ordinal) do nothing";

/// Rows of one multi-row SQLite issue statement, fewest first. A batch is
/// written by the smallest that holds it (or the largest, repeatedly), the
/// rows it does not fill padded with nulls that match no campaign: one
/// statement per batch, and a handful of statements in each connection's
/// prepared-statement cache.
const SQLITE_ISSUE_SIZES: [usize; 4] = [8, 32, 128, 512];

/// How a batch's claims become rows: a backend's multi-row issue. A claim
/// the gate numbered is written with its ordinal; one it did not, with the
/// user's highest plus one (two such rows of one user would compute the
/// same ordinal, so the caller puts only a user's first in a statement). A
/// row over the per-user limit is skipped by the `where`. A row that breaks
/// a unique constraint — its ordinal taken (by a concurrent writer, or by a
/// claim numbered the same after a give-back), a coupon already written (a
/// batch written again after its commit's answer was lost), a duplicate
/// code — fails the statement under [`Conflicts::Fail`] (PostgreSQL's first
/// try) and is skipped under [`Conflicts::Skip`], by a conflict clause that
/// names no constraint. The caller looks the skipped rows up by id and
/// writes the missing ones one at a time, where a duplicate code fails.
///
/// The statements return no rows: when they wrote as many as they were given
/// (nearly always) the count says enough, and otherwise the caller looks the
/// written ones up by id. `returning id` cost sqlx's SQLite thread a
/// hand-off to its caller for every row.
///
/// The highest ordinal is looked up only for a row without one (`coalesce`
/// stops at its first argument that is not null). `fresh` is materialised
/// so that lookup runs once: both databases otherwise ran it twice, for the
/// filter and for the ordinal.
#[async_trait]
trait IssueRows {
    /// Most rows one statement takes.
    const ROWS_PER_STATEMENT: usize;
    /// Writes what it may of `claims`; returns how many rows it wrote.
    async fn insert_rows(
        &mut self,
        claims: &[&CouponClaim],
        conflicts: Conflicts,
    ) -> Result<u64, sqlx::Error>;
}

/// How a batch statement meets a row that breaks a unique constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conflicts {
    /// The statement fails, and the transaction with it.
    Fail,
    /// The row is skipped.
    Skip,
}

/// The part of the multi-row issue after its rows (`fresh`), given how the
/// backend skips a row that conflicts: `$insert` opens it, `$conflict` ends it.
macro_rules! issue_rows_tail {
    ($insert:literal, $conflict:literal) => {
        concat!(
            $insert,
            " into coupons (id, code, campaign_id, user_id, ordinal, status, \
             issued_at, expires_at, updated_at) \
             select id, code, campaign_id, user_id, ordinal, status, issued_at, expires_at, issued_at \
             from fresh where ordinal <= per_user_limit",
            $conflict
        )
    };
}

/// The columns of `fresh` for a row `v` of the given names, and its campaign `c`.
macro_rules! issue_rows_fresh {
    ($id:literal, $code:literal, $user:literal, $status:literal, $issued:literal, $expires:literal,
     $ordinal:literal) => {
        concat!(
            "select v.",
            $id,
            " as id, v.",
            $code,
            " as code, c.id as campaign_id, \
             v.",
            $user,
            " as user_id, v.",
            $status,
            " as status, v.",
            $issued,
            " as issued_at, \
             v.",
            $expires,
            " as expires_at, c.per_user_limit as per_user_limit, \
             coalesce(v.",
            $ordinal,
            ", coalesce((select max(h.ordinal) from coupons h \
                          where h.campaign_id = c.id and h.user_id = v.",
            $user,
            "), 0) + 1) as ordinal "
        )
    };
}

/// PostgreSQL takes the whole batch as eight arrays: one statement of eight
/// parameters, whatever the batch's size, so one prepared statement and a
/// generic plan serve every batch. The padded `VALUES` form had PostgreSQL
/// plan each batch afresh over thousands of parameters. `$conflict` ends it.
macro_rules! postgres_issue_rows {
    ($conflict:literal) => {
        concat!(
            "with fresh as materialized (",
            issue_rows_fresh!(
                "id",
                "code",
                "user_id",
                "status",
                "issued_at",
                "expires_at",
                "ordinal"
            ),
            "from unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::timestamptz[], \
             $6::timestamptz[], $7::uuid[], $8::int4[]) \
             as v (id, code, user_id, status, issued_at, expires_at, campaign_id, ordinal) \
             join coupon_campaigns c on c.id = v.campaign_id) ",
            issue_rows_tail!("insert", $conflict)
        )
    };
}

/// [`Conflicts::Fail`] on PostgreSQL: a plain insert.
const POSTGRES_ISSUE_ROWS: &str = postgres_issue_rows!("");
/// [`Conflicts::Skip`] on PostgreSQL.
const POSTGRES_ISSUE_ROWS_SKIPPING: &str = postgres_issue_rows!(" on conflict do nothing");

#[async_trait]
impl IssueRows for sqlx::PgConnection {
    const ROWS_PER_STATEMENT: usize = usize::MAX;

    async fn insert_rows(
        &mut self,
        claims: &[&CouponClaim],
        conflicts: Conflicts,
    ) -> Result<u64, sqlx::Error> {
        let column =
            |f: fn(&Coupon) -> uuid::Uuid| claims.iter().map(|c| f(&c.coupon)).collect::<Vec<_>>();
        let text = |f: fn(&Coupon) -> &str| claims.iter().map(|c| f(&c.coupon)).collect::<Vec<_>>();
        let time = |f: fn(&Coupon) -> Timestamp| {
            claims
                .iter()
                .map(|c| f(&c.coupon).as_datetime())
                .collect::<Vec<_>>()
        };
        let ordinals: Vec<Option<i32>> = claims.iter().map(|c| ordinal(c.ordinal)).collect();
        let sql = match conflicts {
            Conflicts::Fail => POSTGRES_ISSUE_ROWS,
            Conflicts::Skip => POSTGRES_ISSUE_ROWS_SKIPPING,
        };
        let done = sqlx::query(sql)
            .bind(column(|c| c.id.0))
            .bind(text(|c| c.code.as_str()))
            .bind(column(|c| c.user_id.0))
            .bind(text(|c| c.status.as_str()))
            .bind(time(|c| c.issued_at))
            .bind(time(|c| c.expires_at))
            .bind(column(|c| c.campaign_id.0))
            .bind(ordinals)
            .execute(self)
            .await?;
        Ok(done.rows_affected())
    }
}

/// A gate's count as a column value. One that does not fit is left for the
/// database to number: it is over any per-user limit anyway.
fn ordinal(held: Option<u32>) -> Option<i32> {
    held.and_then(|n| i32::try_from(n).ok())
}

/// Parameters of one row of a SQLite multi-row issue statement.
const ISSUE_ROW_PARAMETERS: usize = 8;

/// The SQLite statement for `rows` coupons, eight anonymous `?` parameters
/// each (looking up a numbered one costs a scan of all of them, which made
/// binding a large statement quadratic). `insert or ignore` skips a row
/// that breaks any constraint, not only the ordinal's: a statement that
/// cannot abort halfway needs no statement journal, which copied every page
/// the batch touched (~5 % of the server's CPU, all of it on the writer).
/// A row skipped for another reason (a duplicate code) fails on its own in
/// the one-by-one retry.
fn sqlite_issue_rows_sql(rows: usize) -> String {
    let row = format!("({})", ["?"; ISSUE_ROW_PARAMETERS].join(", "));
    let values = vec![row; rows].join(", ");
    format!(
        concat!(
            "with fresh as materialized (",
            issue_rows_fresh!(
                "column1", "column2", "column3", "column4", "column5", "column6", "column8"
            ),
            "from (values {}) v join coupon_campaigns c on c.id = v.column7) ",
            issue_rows_tail!("insert or ignore", "")
        ),
        values
    )
}

/// [`sqlite_issue_rows_sql`] for each size of [`SQLITE_ISSUE_SIZES`], built once.
static SQLITE_ISSUE_ROWS: LazyLock<Vec<(usize, String)>> = LazyLock::new(|| {
    SQLITE_ISSUE_SIZES
        .iter()
        .map(|&rows| (rows, sqlite_issue_rows_sql(rows)))
        .collect()
});

/// The smallest SQLite issue statement that holds `claims` rows, with its
/// row count; `None` past [`IssueRows::ROWS_PER_STATEMENT`].
fn sqlite_issue_statement(claims: usize) -> Option<&'static (usize, String)> {
    SQLITE_ISSUE_ROWS.iter().find(|(rows, _)| *rows >= claims)
}

#[async_trait]
impl IssueRows for sqlx::SqliteConnection {
    const ROWS_PER_STATEMENT: usize = SQLITE_ISSUE_SIZES[SQLITE_ISSUE_SIZES.len() - 1];

    /// Skips conflicting rows whatever `conflicts` asks: SQLite's
    /// `insert or ignore` costs nothing over a plain insert.
    async fn insert_rows(
        &mut self,
        claims: &[&CouponClaim],
        _conflicts: Conflicts,
    ) -> Result<u64, sqlx::Error> {
        let (rows, sql) = sqlite_issue_statement(claims.len())
            .ok_or_else(|| bad_row("issue statements", "none holds the batch"))?;
        let mut query = sqlx::query(sql.as_str());
        for claim in claims {
            let coupon = &claim.coupon;
            query = query
                .bind(Some(coupon.id))
                .bind(Some(coupon.code.as_str()))
                .bind(Some(coupon.user_id))
                .bind(Some(coupon.status.as_str()))
                .bind(Some(coupon.issued_at))
                .bind(Some(coupon.expires_at))
                .bind(Some(coupon.campaign_id))
                .bind(ordinal(claim.ordinal));
        }
        for _ in claims.len()..*rows {
            query = query
                .bind(None::<CouponId>)
                .bind(None::<&str>)
                .bind(None::<UserId>)
                .bind(None::<&str>)
                .bind(None::<Timestamp>)
                .bind(None::<Timestamp>)
                .bind(None::<CouponCampaignId>)
                .bind(None::<i32>);
        }
        Ok(query.execute(self).await?.rows_affected())
    }
}

/// Why [`issue_direct`] wrote nothing.
#[derive(Debug)]
enum DirectIssueError {
    /// Some claim needs the general path: a user's second unnumbered claim,
    /// or a row the statement skipped (over the per-user limit, a unique
    /// conflict, no such campaign). Nothing of the batch was kept.
    NotAllWritten,
    Sql(sqlx::Error),
}

impl From<sqlx::Error> for DirectIssueError {
    fn from(e: sqlx::Error) -> Self {
        Self::Sql(e)
    }
}

/// A rush's claim batch on SQLite, all or nothing: the multi-row statements
/// of [`sqlite_issue_rows_sql`] on the writer's direct connection, so the
/// batch costs no hand-off to sqlx's thread and back (ADR 0015). Nearly
/// every batch writes every claim; one that does not is undone and left to
/// the general path ([`DirectIssueError::NotAllWritten`]).
async fn issue_direct(
    db: &SqliteDb,
    claims: Arc<[CouponClaim]>,
) -> Result<Vec<IssueOutcome>, DirectIssueError> {
    if statement_rows(&claims).len() < claims.len() {
        return Err(DirectIssueError::NotAllWritten);
    }
    db.write_direct(move |conn| {
        for chunk in claims.chunks(SqliteConnection::ROWS_PER_STATEMENT) {
            if insert_rows_direct(conn, chunk).map_err(direct_error)? < chunk.len() {
                return Err(DirectIssueError::NotAllWritten);
            }
        }
        Ok(vec![IssueOutcome::Issued; claims.len()])
    })
    .await
}

/// One multi-row issue statement on the direct connection; returns how many
/// rows it wrote. The rows it does not fill stay unbound, so null: a cached
/// statement's bindings are cleared when it goes back to the cache.
fn insert_rows_direct(
    conn: &rusqlite::Connection,
    claims: &[CouponClaim],
) -> Result<usize, rusqlite::Error> {
    let Some((_, sql)) = sqlite_issue_statement(claims.len()) else {
        return Err(rusqlite::Error::InvalidParameterCount(
            claims.len() * ISSUE_ROW_PARAMETERS,
            SqliteConnection::ROWS_PER_STATEMENT * ISSUE_ROW_PARAMETERS,
        ));
    };
    let mut statement = conn.prepare_cached(sql)?;
    for (row, claim) in claims.iter().enumerate() {
        let at = row * ISSUE_ROW_PARAMETERS;
        let coupon = &claim.coupon;
        statement.raw_bind_parameter(at + 1, coupon.id)?;
        statement.raw_bind_parameter(at + 2, coupon.code.as_str())?;
        statement.raw_bind_parameter(at + 3, coupon.user_id)?;
        statement.raw_bind_parameter(at + 4, coupon.status.as_str())?;
        statement.raw_bind_parameter(at + 5, coupon.issued_at)?;
        statement.raw_bind_parameter(at + 6, coupon.expires_at)?;
        statement.raw_bind_parameter(at + 7, coupon.campaign_id)?;
        statement.raw_bind_parameter(at + 8, ordinal(claim.ordinal))?;
    }
    statement.raw_execute()
}

/// [`IssueRows::ROWS_PER_STATEMENT`] of a connection, by value (so a generic
/// body can name it without naming the connection's type).
fn rows_per_statement<C: IssueRows>(_: &C) -> usize {
    C::ROWS_PER_STATEMENT
}

const COUPON_EXISTS: &str = "select 1 from coupons where id = $1";

/// Campaign ids are time-ordered: the newest first. Counted through the
/// `campaign_id` index, per campaign listed; `count` of a column skips its
/// nulls, so a campaign without coupons (one joined row of nulls) counts 0.
const ISSUES_PER_CAMPAIGN: &str = "select c.id, c.name, c.total_quantity, \
     count(k.id) - count(k.grant_id) as issued, count(k.grant_id) as granted \
     from (select id, name, total_quantity from coupon_campaigns order by id desc limit $1) c \
     left join coupons k on k.campaign_id = c.id \
     group by c.id, c.name, c.total_quantity \
     order by c.id desc";

/// The user's public coupons of a campaign, beside its per-user limit.
const HELD: &str = "select cast((select count(ordinal) from coupons \
     where campaign_id = c.id and user_id = $2) as bigint), c.per_user_limit \
     from coupon_campaigns c where c.id = $1";

const GRANT: &str = "insert into coupons (id, code, campaign_id, user_id, grant_id, status, \
     issued_at, expires_at, updated_at) \
     select $1, $2, c.id, $3, $4, $5, $6, $7, $6 from coupon_campaigns c where c.id = $8 \
     on conflict (grant_id) where grant_id is not null do nothing";

const COUPON_BY_GRANT: &str = concat!(
    "select ",
    coupon_columns!(),
    " from coupons where grant_id = $1"
);

#[async_trait]
impl CouponStore for SqlCouponStore {
    async fn create_campaign(&self, campaign: Campaign) -> Result<(), sqlx::Error> {
        let discount = DiscountSpec::from(campaign.discount);
        kernel::write_tx!(&self.db, |conn| {
            sqlx::query(concat!(
                "insert into coupon_campaigns (",
                campaign_columns!(),
                ") values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            ))
            .bind(campaign.id)
            .bind(campaign.name.as_str())
            .bind(discount.kind)
            .bind(discount.value)
            .bind(discount.currency)
            .bind(i64::from(campaign.total_quantity))
            .bind(i64::from(campaign.per_user_limit))
            .bind(campaign.schedule.issue_starts_at())
            .bind(campaign.schedule.issue_ends_at())
            .bind(campaign.schedule.valid_until())
            .bind(campaign.created_at)
            .execute(&mut *conn)
            .await
            .map(drop)
        })
    }

    async fn campaign(&self, id: CouponCampaignId) -> Result<Option<Campaign>, sqlx::Error> {
        let sql = concat!(
            "select ",
            campaign_columns!(),
            " from coupon_campaigns where id = $1"
        );
        let row: Option<CampaignRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql).bind(id).fetch_optional(pool).await
        })?;
        row.map(Campaign::try_from).transpose()
    }

    async fn list_campaigns(&self, page: PageRequest) -> Result<Vec<Campaign>, sqlx::Error> {
        let sql = concat!(
            "select ",
            campaign_columns!(),
            " from coupon_campaigns where ($1 is null or id > $1) order by id limit $2"
        );
        let rows: Vec<CampaignRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql)
                .bind(page.after.map(CouponCampaignId))
                .bind(page.fetch_limit())
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter().map(Campaign::try_from).collect()
    }

    async fn campaign_ids(&self) -> Result<Vec<CouponCampaignId>, sqlx::Error> {
        kernel::read!(&self.db, |pool| {
            sqlx::query_scalar("select id from coupon_campaigns order by id")
                .fetch_all(pool)
                .await
        })
    }

    /// PostgreSQL's `on conflict` costs every row a probe of each unique
    /// index and a second write to confirm the insert (about a fifth of its
    /// CPU per claim in the firehose), though a batch almost never
    /// conflicts. So a batch is written first as a plain insert there, and
    /// only if a row broke a unique constraint (the statement then failed
    /// and its transaction wrote nothing) again, skipping conflicting rows.
    ///
    /// On SQLite a batch is written first on the writer's direct connection
    /// ([`issue_direct`]), and only if that could not write every claim
    /// through the general path.
    async fn issue(&self, claims: Vec<CouponClaim>) -> Result<Vec<IssueOutcome>, sqlx::Error> {
        let claims: Arc<[CouponClaim]> = claims.into();
        match &self.db {
            Db::Sqlite(sqlite) => match issue_direct(sqlite, Arc::clone(&claims)).await {
                Ok(outcomes) => Ok(outcomes),
                Err(DirectIssueError::NotAllWritten) => {
                    self.write_issue(claims, Conflicts::Skip).await
                }
                Err(DirectIssueError::Sql(e)) => Err(e),
            },
            Db::Postgres(_) => match self.write_issue(Arc::clone(&claims), Conflicts::Fail).await {
                Err(e) if is_any_unique_violation(&e) => {
                    self.write_issue(claims, Conflicts::Skip).await
                }
                written => written,
            },
        }
    }

    async fn grant(&self, grant: GrantId, coupon: Coupon) -> Result<Option<Coupon>, sqlx::Error> {
        kernel::write_tx!(&self.db, |conn| {
            sqlx::query(GRANT)
                .bind(coupon.id)
                .bind(coupon.code.as_str())
                .bind(coupon.user_id)
                .bind(grant)
                .bind(coupon.status.as_str())
                .bind(coupon.issued_at)
                .bind(coupon.expires_at)
                .bind(coupon.campaign_id)
                .execute(&mut *conn)
                .await?;
            let row: Option<CouponRow> = sqlx::query_as(COUPON_BY_GRANT)
                .bind(grant)
                .fetch_optional(&mut *conn)
                .await?;
            row.map(Coupon::try_from).transpose()
        })
    }

    async fn coupons_of(
        &self,
        user: UserId,
        page: PageRequest,
    ) -> Result<Vec<Coupon>, sqlx::Error> {
        let sql = concat!(
            "select ",
            coupon_columns!(),
            " from coupons where user_id = $1 and ($2 is null or id > $2) order by id limit $3"
        );
        let rows: Vec<CouponRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql)
                .bind(user)
                .bind(page.after.map(CouponId))
                .bind(page.fetch_limit())
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter().map(Coupon::try_from).collect()
    }

    fn writer_runtime(&self) -> tokio::runtime::Handle {
        self.db.writer_runtime()
    }

    async fn coupon(&self, id: CouponId) -> Result<Option<Coupon>, sqlx::Error> {
        let sql = concat!("select ", coupon_columns!(), " from coupons where id = $1");
        let row: Option<CouponRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql).bind(id).fetch_optional(pool).await
        })?;
        row.map(Coupon::try_from).transpose()
    }

    async fn issues_per_campaign(&self, limit: i64) -> Result<Vec<CampaignIssues>, sqlx::Error> {
        let rows: Vec<(CouponCampaignId, String, i64, i64, i64)> =
            kernel::read!(&self.db, |pool| {
                sqlx::query_as(ISSUES_PER_CAMPAIGN)
                    .bind(limit)
                    .fetch_all(pool)
                    .await
            })?;
        rows.into_iter()
            .map(|(id, name, total, issued, granted)| {
                let count = |what, n: i64| u64::try_from(n).map_err(|e| bad_row(what, e));
                Ok(CampaignIssues::new(
                    id,
                    name,
                    stored_count("total_quantity", total)?,
                    count("issued", issued)?,
                    count("granted", granted)?,
                ))
            })
            .collect()
    }

    async fn stock(&self, id: CouponCampaignId) -> Result<Option<CampaignStock>, sqlx::Error> {
        let limits: Option<(i64, i64)> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(
                "select total_quantity, per_user_limit from coupon_campaigns where id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
        })?;
        let Some((total_quantity, per_user_limit)) = limits else {
            return Ok(None);
        };
        let held: Vec<(UserId, i64)> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(
                "select user_id, count(*) from coupons \
                 where campaign_id = $1 and ordinal is not null group by user_id",
            )
            .bind(id)
            .fetch_all(pool)
            .await
        })?;
        let by_user = held
            .into_iter()
            .map(|(user, n)| Ok((user, stored_count("coupons held", n)?)))
            .collect::<Result<HashMap<_, _>, sqlx::Error>>()?;
        Ok(Some(CampaignStock {
            total_quantity: stored_count("total_quantity", total_quantity)?,
            per_user_limit: stored_count("per_user_limit", per_user_limit)?,
            by_user,
        }))
    }
}

/// The SQLite direct path on its own: the conformance suite (`tests/store.rs`)
/// sees only outcomes, which the general path would give too if this path
/// wrote nothing.
#[cfg(test)]
mod direct_path_tests {
    use kernel::testing::TestDatabase;
    use kernel::{Clock, SystemClock};

    use super::*;
    use crate::model::NewCampaign;

    async fn open() -> Option<(TestDatabase, SqliteDb, SqlCouponStore)> {
        let test = TestDatabase::create().await;
        let db = Db::connect(test.url(), &kernel::db::DbOptions::default())
            .await
            .expect("connect");
        db.migrate(crate::migrations()).await.expect("migrate");
        let Db::Sqlite(sqlite) = db.clone() else {
            println!("skipped: PostgreSQL has no direct claim path");
            return None;
        };
        Some((test, sqlite, SqlCouponStore::new(db)))
    }

    async fn campaign(store: &SqlCouponStore, per_user_limit: i64) -> Campaign {
        let now = SystemClock.now();
        let request = NewCampaign {
            name: "Direct drop".into(),
            discount: DiscountSpec {
                kind: "PERCENT".into(),
                value: 10,
                currency: None,
            },
            total_quantity: 100,
            per_user_limit: Some(per_user_limit),
            issue_starts_at: now,
            issue_ends_at: now + time::Duration::hours(1),
            valid_until: now + time::Duration::days(1),
        };
        let campaign = Campaign::new(CouponCampaignId::new(), &request, now).expect("valid");
        store
            .create_campaign(campaign.clone())
            .await
            .expect("create");
        campaign
    }

    fn claim(campaign: &Campaign, user: UserId, ordinal: Option<u32>) -> CouponClaim {
        let now = SystemClock.now();
        CouponClaim {
            coupon: Coupon::new(
                CouponId::new(),
                campaign,
                user,
                CouponCode::generate(now),
                now,
            ),
            ordinal,
        }
    }

    async fn written(store: &SqlCouponStore, users: &[UserId]) -> Vec<Coupon> {
        let mut coupons = Vec::new();
        for user in users {
            let page = PageRequest {
                limit: 100,
                after: None,
            };
            coupons.extend(store.coupons_of(*user, page).await.expect("read"));
        }
        coupons
    }

    #[tokio::test]
    async fn a_batch_the_statements_can_take_whole_is_written_directly_as_given() {
        let Some((_test, sqlite, store)) = open().await else {
            return;
        };
        let drop = campaign(&store, 2).await;
        let (ann, bob) = (UserId::new(), UserId::new());
        let claims: Arc<[CouponClaim]> = vec![
            claim(&drop, ann, Some(1)),
            claim(&drop, bob, None),
            claim(&drop, ann, Some(2)),
        ]
        .into();
        let outcomes = issue_direct(&sqlite, Arc::clone(&claims))
            .await
            .expect("written directly");
        assert_eq!(outcomes, [IssueOutcome::Issued; 3]);
        let mut stored = written(&store, &[ann, bob]).await;
        stored.sort_by_key(|c| c.id);
        let mut given: Vec<Coupon> = claims.iter().map(|c| c.coupon.clone()).collect();
        given.sort_by_key(|c| c.id);
        assert_eq!(stored, given, "every column reads back as written");
    }

    #[tokio::test]
    async fn a_batch_with_a_row_the_statement_skips_is_undone_whole() {
        let Some((_test, sqlite, store)) = open().await else {
            return;
        };
        let drop = campaign(&store, 1).await;
        let (ann, bob) = (UserId::new(), UserId::new());
        // Bob's number is over the limit: the statement skips his row.
        let claims = vec![claim(&drop, ann, Some(1)), claim(&drop, bob, Some(2))];
        let outcome = issue_direct(&sqlite, claims.into()).await;
        assert!(matches!(outcome, Err(DirectIssueError::NotAllWritten)));
        assert!(
            written(&store, &[ann, bob]).await.is_empty(),
            "Ann's row is undone with the batch"
        );
    }

    #[tokio::test]
    async fn a_users_second_unnumbered_claim_goes_to_the_general_path_untried() {
        let Some((_test, sqlite, store)) = open().await else {
            return;
        };
        let drop = campaign(&store, 2).await;
        let ann = UserId::new();
        let claims = vec![claim(&drop, ann, None), claim(&drop, ann, None)];
        let outcome = issue_direct(&sqlite, claims.into()).await;
        assert!(matches!(outcome, Err(DirectIssueError::NotAllWritten)));
        assert!(written(&store, &[ann]).await.is_empty());
    }
}
