//! The claim writes on PostgreSQL: a batch as eight arrays.

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use kernel::Timestamp;
use kernel::db::{Db, is_any_unique_violation};

use super::{
    Conflicts, CouponClaim, IssueOutcome, IssueRows, issue_rows_sql, ordinal, write_issue,
};
use crate::model::Coupon;

/// PostgreSQL's `on conflict` costs every row a probe of each unique
/// index and a second write to confirm the insert (about a fifth of its
/// CPU per claim in the firehose), though a batch almost never
/// conflicts. So a batch is written first as a plain insert, and only if
/// a row broke a unique constraint (the statement then failed and its
/// transaction wrote nothing) again, skipping conflicting rows.
pub(super) async fn issue(
    db: &Db,
    claims: Arc<[CouponClaim]>,
) -> Result<Vec<IssueOutcome>, sqlx::Error> {
    match write_issue(db, Arc::clone(&claims), Conflicts::Fail).await {
        Err(e) if is_any_unique_violation(&e) => write_issue(db, claims, Conflicts::Skip).await,
        written => written,
    }
}

/// The batch's rows: eight arrays, so one statement of eight parameters,
/// whatever the batch's size, and one prepared statement and a generic plan
/// serve every batch. The padded `VALUES` form had PostgreSQL plan each
/// batch afresh over thousands of parameters.
const ROWS: &str = "unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], \
     $5::timestamptz[], $6::timestamptz[], $7::uuid[], $8::int4[]) \
     as v (column1, column2, column3, column4, column5, column6, column7, column8)";

/// [`Conflicts::Fail`]: a plain insert.
static ISSUE_ROWS: LazyLock<String> = LazyLock::new(|| issue_rows_sql(ROWS, "insert", ""));

/// [`Conflicts::Skip`].
static ISSUE_ROWS_SKIPPING: LazyLock<String> =
    LazyLock::new(|| issue_rows_sql(ROWS, "insert", " on conflict do nothing"));

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
            Conflicts::Fail => ISSUE_ROWS.as_str(),
            Conflicts::Skip => ISSUE_ROWS_SKIPPING.as_str(),
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
