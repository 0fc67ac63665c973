//! The claims of a campaign's public stock: a claim is its coupon's insert.
//! A rush's claims arrive in batches (`kernel::batch`) and each batch is
//! written in one transaction: multi-row statements first, whose SQL each
//! backend writes out for itself ([`sqlite`], [`postgres`]), then the claims
//! they skipped one at a time, by the statements here that serve both.

mod postgres;
mod sqlite;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use kernel::UserId;
use kernel::db::{Db, stored_count};

use super::SqlCouponStore;
use crate::model::{Coupon, CouponCampaignId};
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
pub trait ClaimStore: Send + Sync {
    /// Writes coupons from their campaigns' public stock, each unless its
    /// user already holds the campaign's `per_user_limit`, in one
    /// transaction; the outcomes are in the order given. An error (a
    /// duplicate code, say) writes none of them.
    async fn issue(&self, claims: Vec<CouponClaim>) -> Result<Vec<IssueOutcome>, sqlx::Error>;
    /// A campaign's public stock as recorded; `None` if it does not exist.
    async fn stock(&self, id: CouponCampaignId) -> Result<Option<CampaignStock>, sqlx::Error>;
}

#[async_trait]
impl ClaimStore for SqlCouponStore {
    async fn issue(&self, claims: Vec<CouponClaim>) -> Result<Vec<IssueOutcome>, sqlx::Error> {
        let claims: Arc<[CouponClaim]> = claims.into();
        match &self.db {
            Db::Sqlite(sqlite) => sqlite::issue(&self.db, sqlite, claims).await,
            Db::Postgres(_) => postgres::issue(&self.db, claims).await,
        }
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

/// A backend's multi-row issue: its rows `v` (`from_rows`, naming the
/// columns `column1` to `column8`: id, code, user, status, issued at,
/// expires at, campaign, ordinal) joined to their campaigns `c` as `fresh`,
/// then inserted where within the per-user limit by `insert` (the verb, with
/// any `or ignore`), ended by `conflict`.
///
/// The highest ordinal is looked up only for a row without one (`coalesce`
/// stops at its first argument that is not null). `fresh` is materialised
/// so that lookup runs once: both databases otherwise ran it twice, for the
/// filter and for the ordinal.
fn issue_rows_sql(from_rows: &str, insert: &str, conflict: &str) -> String {
    format!(
        "with fresh as materialized (\
         select v.column1 as id, v.column2 as code, c.id as campaign_id, \
         v.column3 as user_id, v.column4 as status, v.column5 as issued_at, \
         v.column6 as expires_at, c.per_user_limit as per_user_limit, \
         coalesce(v.column8, coalesce((select max(h.ordinal) from coupons h \
           where h.campaign_id = c.id and h.user_id = v.column3), 0) + 1) as ordinal \
         from {from_rows} join coupon_campaigns c on c.id = v.column7) \
         {insert} into coupons (id, code, campaign_id, user_id, ordinal, status, \
         issued_at, expires_at, updated_at) \
         select id, code, campaign_id, user_id, ordinal, status, issued_at, expires_at, issued_at \
         from fresh where ordinal <= per_user_limit{conflict}"
    )
}

/// A gate's count as a column value. One that does not fit is left for the
/// database to number: it is over any per-user limit anyway.
fn ordinal(held: Option<u32>) -> Option<i32> {
    held.and_then(|n| i32::try_from(n).ok())
}

/// [`IssueRows::ROWS_PER_STATEMENT`] of a connection, by value (so a generic
/// body can name it without naming the connection's type).
fn rows_per_statement<C: IssueRows>(_: &C) -> usize {
    C::ROWS_PER_STATEMENT
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

/// [`ClaimStore::issue`] in one transaction on either backend, the batch
/// statements meeting conflicts as `conflicts` says.
async fn write_issue(
    db: &Db,
    claims: Arc<[CouponClaim]>,
    conflicts: Conflicts,
) -> Result<Vec<IssueOutcome>, sqlx::Error> {
    kernel::write_tx!(db, |conn| {
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

const COUPON_EXISTS: &str = "select 1 from coupons where id = $1";

/// The user's public coupons of a campaign, beside its per-user limit.
const HELD: &str = "select cast((select count(ordinal) from coupons \
     where campaign_id = c.id and user_id = $2) as bigint), c.per_user_limit \
     from coupon_campaigns c where c.id = $1";
