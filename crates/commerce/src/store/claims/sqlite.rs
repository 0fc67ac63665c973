//! The claim writes on SQLite: a batch as multi-row `VALUES` statements of a
//! few fixed sizes, first on the writer's direct connection (ADR 0015).

use std::sync::{Arc, LazyLock};

use kernel::db::rusqlite;
use kernel::db::{Db, SqliteDb, bad_row, direct_error};
use kernel::{Timestamp, UserId};
use sqlx::SqliteConnection;

use super::{
    Conflicts, CouponClaim, IssueOutcome, IssueRows, issue_rows_sql, ordinal, statement_rows,
    write_issue,
};
use crate::model::{CouponCampaignId, CouponId};

/// A batch is written first on the writer's direct connection
/// ([`issue_direct`]), and only if that could not write every claim through
/// the general path, which skips conflicting rows.
pub(super) async fn issue(
    db: &Db,
    sqlite: &SqliteDb,
    claims: Arc<[CouponClaim]>,
) -> Result<Vec<IssueOutcome>, sqlx::Error> {
    match issue_direct(sqlite, Arc::clone(&claims)).await {
        Ok(outcomes) => Ok(outcomes),
        Err(DirectIssueError::NotAllWritten) => write_issue(db, claims, Conflicts::Skip).await,
        Err(DirectIssueError::Sql(e)) => Err(e),
    }
}

/// Rows of one multi-row issue statement, fewest first. A batch is written
/// by the smallest that holds it (or the largest, repeatedly), the rows it
/// does not fill padded with nulls that match no campaign: one statement per
/// batch, and a handful of statements in each connection's
/// prepared-statement cache.
const ISSUE_SIZES: [usize; 4] = [8, 32, 128, 512];

/// Parameters of one row of a multi-row issue statement.
const ISSUE_ROW_PARAMETERS: usize = 8;

/// The statement for `rows` coupons, eight anonymous `?` parameters each
/// (looking up a numbered one costs a scan of all of them, which made
/// binding a large statement quadratic). `insert or ignore` skips a row
/// that breaks any constraint, not only the ordinal's: a statement that
/// cannot abort halfway needs no statement journal, which copied every page
/// the batch touched (~5 % of the server's CPU, all of it on the writer).
/// A row skipped for another reason (a duplicate code) fails on its own in
/// the one-by-one retry.
fn issue_rows_sql_of(rows: usize) -> String {
    let row = format!("({})", ["?"; ISSUE_ROW_PARAMETERS].join(", "));
    let values = vec![row; rows].join(", ");
    issue_rows_sql(&format!("(values {values}) v"), "insert or ignore", "")
}

/// [`issue_rows_sql_of`] for each size of [`ISSUE_SIZES`], built once.
static ISSUE_ROWS: LazyLock<Vec<(usize, String)>> = LazyLock::new(|| {
    ISSUE_SIZES
        .iter()
        .map(|&rows| (rows, issue_rows_sql_of(rows)))
        .collect()
});

/// The smallest issue statement that holds `claims` rows, with its row
/// count; `None` past [`IssueRows::ROWS_PER_STATEMENT`].
fn issue_statement(claims: usize) -> Option<&'static (usize, String)> {
    ISSUE_ROWS.iter().find(|(rows, _)| *rows >= claims)
}

#[async_trait::async_trait]
impl IssueRows for SqliteConnection {
    const ROWS_PER_STATEMENT: usize = ISSUE_SIZES[ISSUE_SIZES.len() - 1];

    /// Skips conflicting rows whatever `conflicts` asks: SQLite's
    /// `insert or ignore` costs nothing over a plain insert.
    async fn insert_rows(
        &mut self,
        claims: &[&CouponClaim],
        _conflicts: Conflicts,
    ) -> Result<u64, sqlx::Error> {
        let (rows, sql) = issue_statement(claims.len())
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

/// A rush's claim batch, all or nothing: the multi-row statements of
/// [`issue_rows_sql_of`] on the writer's direct connection, so the batch
/// costs no hand-off to sqlx's thread and back (ADR 0015). Nearly every
/// batch writes every claim; one that does not is undone and left to the
/// general path ([`DirectIssueError::NotAllWritten`]).
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
    let Some((_, sql)) = issue_statement(claims.len()) else {
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

/// The SQLite direct path on its own: the conformance suite (`tests/store.rs`)
/// sees only outcomes, which the general path would give too if this path
/// wrote nothing.
#[cfg(test)]
mod direct_path_tests {
    use kernel::testing::TestDatabase;
    use kernel::{Clock, PageRequest, SystemClock};

    use super::*;
    use crate::model::{Campaign, Coupon, CouponCode, DiscountSpec, NewCampaign};
    use crate::store::{CampaignStore, SqlCouponStore, UserCouponStore};

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
