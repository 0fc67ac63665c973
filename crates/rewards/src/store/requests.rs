//! Reward requests and the wallet ledger. A claim and a decision each run in
//! one transaction that also checks the last guards (the user's holdings
//! against the limit, the units left) and writes the grant and its outgoing
//! messages, so an approval and its grant commit together or not at all.

use async_trait::async_trait;
use bus::Envelope;
use kernel::db::{Backend, bad_row, stored_count};
use kernel::{Lifecycle as _, PageRequest, Timestamp, UserId};

use super::SqlRewardsStore;
use crate::model::{
    EventId, EventRewardId, Grant, InvalidTransition, ItemHolding, RequestStatus, RewardRequest,
    RewardRequestId, Wallet, WalletCredit,
};

/// Which requests a list shows; `None` matches all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestFilter {
    pub user: Option<UserId>,
    pub status: Option<RequestStatus>,
    pub event: Option<EventId>,
    pub event_reward: Option<EventRewardId>,
}

/// A request the stock gate let through, to record as PENDING or APPROVED.
#[derive(Debug, Clone)]
pub struct Claim {
    pub request: RewardRequest,
    /// The grant of an APPROVED request, written in the same transaction.
    pub grant: Option<Grant>,
    /// Outgoing messages committed with it.
    pub messages: Vec<Envelope>,
}

/// The outcome of recording a claim.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimOutcome {
    Claimed,
    /// The user already holds `per_user_limit` requests; one of them.
    AlreadyRequested(RewardRequestId),
    /// No unit of the limited quantity is left.
    OutOfStock,
    /// The event reward was removed meanwhile.
    EventRewardGone,
}

/// A staff decision on a PENDING request.
#[derive(Debug, Clone)]
pub struct Decision {
    pub id: RewardRequestId,
    pub to: RequestStatus,
    pub reason: Option<String>,
    pub by: UserId,
    pub at: Timestamp,
    /// The grant when approving.
    pub grant: Option<Grant>,
    pub messages: Vec<Envelope>,
}

/// The outcome of a decision.
#[derive(Debug, Clone, PartialEq)]
pub enum Decide {
    Decided(RewardRequest),
    NotFound,
    InvalidTransition(InvalidTransition),
}

/// An event reward's stock as the database records it, for the stock gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSnapshot {
    pub quantity: Option<u32>,
    pub remaining: Option<u32>,
    pub per_user_limit: u32,
    /// Users holding PENDING or APPROVED requests, with how many.
    pub holders: Vec<(UserId, u32)>,
}

#[async_trait]
pub trait RequestStore: Send + Sync {
    /// Records a request rejected when made.
    async fn record_rejection(&self, request: &RewardRequest) -> Result<(), sqlx::Error>;
    /// Records a PENDING or APPROVED request if the user is under the limit
    /// and (for a limited quantity) a unit is left, taking it from `remaining`.
    async fn claim(&self, claim: Claim) -> Result<ClaimOutcome, sqlx::Error>;
    /// The user's PENDING or APPROVED requests on an event reward, oldest first.
    async fn holdings(
        &self,
        event_reward: EventRewardId,
        user: UserId,
    ) -> Result<Vec<RewardRequestId>, sqlx::Error>;
    async fn request(&self, id: RewardRequestId) -> Result<Option<RewardRequest>, sqlx::Error>;
    /// Requests in id order.
    async fn list_requests(
        &self,
        filter: RequestFilter,
        page: PageRequest,
    ) -> Result<Vec<RewardRequest>, sqlx::Error>;
    /// Moves a PENDING request, committing its messages with it; a
    /// rejection gives its held unit back to `remaining`.
    async fn decide(&self, decision: Decision) -> Result<Decide, sqlx::Error>;
    /// `None` when there is no such event reward.
    async fn pool_snapshot(
        &self,
        event_reward: EventRewardId,
    ) -> Result<Option<PoolSnapshot>, sqlx::Error>;
    /// Every event reward, each one a stock-gate pool (for reconciliation).
    async fn event_reward_ids(&self) -> Result<Vec<EventRewardId>, sqlx::Error>;
    /// The wallet summed from the ledger.
    async fn wallet(&self, user: UserId) -> Result<Wallet, sqlx::Error>;
}

macro_rules! request_columns {
    () => {
        "id, user_id, event_id, event_reward_id, reward_id, status, reason_code, reason, \
         created_at, decided_at, decided_by"
    };
}

#[derive(sqlx::FromRow)]
struct RequestRow {
    id: RewardRequestId,
    user_id: UserId,
    event_id: EventId,
    event_reward_id: EventRewardId,
    reward_id: crate::model::RewardId,
    status: String,
    reason_code: Option<String>,
    reason: Option<String>,
    created_at: Timestamp,
    decided_at: Option<Timestamp>,
    decided_by: Option<UserId>,
}

impl TryFrom<RequestRow> for RewardRequest {
    type Error = sqlx::Error;
    fn try_from(row: RequestRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.id,
            user_id: row.user_id,
            event_id: row.event_id,
            event_reward_id: row.event_reward_id,
            reward_id: row.reward_id,
            status: row
                .status
                .parse()
                .map_err(|e| bad_row("request status", e))?,
            reason_code: row
                .reason_code
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|e| bad_row("reason code", e))?,
            reason: row.reason,
            created_at: row.created_at,
            decided_at: row.decided_at,
            decided_by: row.decided_by,
        })
    }
}

const INSERT_REQUEST: &str = concat!(
    "insert into reward_requests (",
    request_columns!(),
    ", holds_unit) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
);

/// Inserts `$request` (a `&RewardRequest`) with its `holds_unit` flag.
macro_rules! insert_request {
    ($conn:expr, $request:expr, $holds_unit:expr) => {{
        let r: &RewardRequest = $request;
        sqlx::query(INSERT_REQUEST)
            .bind(r.id)
            .bind(r.user_id)
            .bind(r.event_id)
            .bind(r.event_reward_id)
            .bind(r.reward_id)
            .bind(r.status.as_str())
            .bind(r.reason_code.map(|c| c.as_str()))
            .bind(r.reason.as_deref())
            .bind(r.created_at)
            .bind(r.decided_at)
            .bind(r.decided_by)
            .bind($holds_unit)
            .execute(&mut *$conn)
            .await
            .map(drop)
    }};
}

/// Writes the grant of an approved request and the outgoing messages, in the
/// caller's transaction. The ledger's unique request id makes a grant once.
macro_rules! write_grant {
    ($conn:expr, $request:expr, $grant:expr, $messages:expr, $at:expr) => {{
        let request: &RewardRequest = $request;
        if let Some(Grant::Wallet(credit)) = $grant {
            let (points, item, quantity, badge) = match credit {
                WalletCredit::Points(n) => (Some(i64::from(n.get())), None, None, None),
                WalletCredit::Item { item_id, quantity } => (
                    None,
                    Some(item_id.as_str().to_owned()),
                    Some(i64::from(quantity.get())),
                    None,
                ),
                WalletCredit::Badge(badge) => (None, None, None, Some(badge.as_str().to_owned())),
            };
            sqlx::query(
                "insert into wallet_entries (id, user_id, request_id, points, item_id, \
                 item_quantity, badge_id, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(uuid::Uuid::now_v7())
            .bind(request.user_id)
            .bind(request.id)
            .bind(points)
            .bind(item)
            .bind(quantity)
            .bind(badge)
            .bind($at)
            .execute(&mut *$conn)
            .await?;
        }
        for message in $messages {
            bus::enqueue!($conn, message)?;
        }
    }};
}

#[derive(sqlx::FromRow)]
struct StockRow {
    quantity: Option<i64>,
    remaining: Option<i64>,
    per_user_limit: i64,
}

const HOLDINGS: &str = "select id from reward_requests where event_reward_id = $1 and user_id = $2 \
     and status in ('PENDING', 'APPROVED') order by id";

#[async_trait]
impl RequestStore for SqlRewardsStore {
    async fn record_rejection(&self, request: &RewardRequest) -> Result<(), sqlx::Error> {
        let request = request.clone();
        kernel::write_tx!(&self.db, |conn| insert_request!(conn, &request, false))
    }

    async fn claim(&self, claim: Claim) -> Result<ClaimOutcome, sqlx::Error> {
        kernel::write_tx!(&self.db, |conn, backend| {
            let Claim {
                request,
                grant,
                messages,
            } = claim;
            // PostgreSQL: the row lock orders claims on one event reward, so
            // the checks below see every committed claim. SQLite's single
            // writer already does.
            let sql = if backend == Backend::Postgres {
                "select quantity, remaining, per_user_limit from event_rewards where id = $1 for update"
            } else {
                "select quantity, remaining, per_user_limit from event_rewards where id = $1"
            };
            let stock: Option<StockRow> = sqlx::query_as(sql)
                .bind(request.event_reward_id)
                .fetch_optional(&mut *conn)
                .await?;
            let Some(stock) = stock else {
                return Ok(ClaimOutcome::EventRewardGone);
            };
            let held: Vec<RewardRequestId> = sqlx::query_scalar(HOLDINGS)
                .bind(request.event_reward_id)
                .bind(request.user_id)
                .fetch_all(&mut *conn)
                .await?;
            let limit = usize::try_from(stock.per_user_limit).unwrap_or(usize::MAX);
            if held.len() >= limit
                && let Some(first) = held.first()
            {
                return Ok(ClaimOutcome::AlreadyRequested(*first));
            }
            let limited = stock.quantity.is_some();
            if let Some(remaining) = stock.remaining {
                if remaining < 1 {
                    return Ok(ClaimOutcome::OutOfStock);
                }
                sqlx::query("update event_rewards set remaining = remaining - 1 where id = $1")
                    .bind(request.event_reward_id)
                    .execute(&mut *conn)
                    .await?;
            }
            insert_request!(conn, &request, limited)?;
            write_grant!(conn, &request, grant, &messages, request.created_at);
            Ok(ClaimOutcome::Claimed)
        })
    }

    async fn holdings(
        &self,
        event_reward: EventRewardId,
        user: UserId,
    ) -> Result<Vec<RewardRequestId>, sqlx::Error> {
        kernel::read!(&self.db, |pool| {
            sqlx::query_scalar(HOLDINGS)
                .bind(event_reward)
                .bind(user)
                .fetch_all(pool)
                .await
        })
    }

    async fn request(&self, id: RewardRequestId) -> Result<Option<RewardRequest>, sqlx::Error> {
        let sql = concat!(
            "select ",
            request_columns!(),
            " from reward_requests where id = $1"
        );
        let row: Option<RequestRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql).bind(id).fetch_optional(pool).await
        })?;
        row.map(RewardRequest::try_from).transpose()
    }

    async fn list_requests(
        &self,
        filter: RequestFilter,
        page: PageRequest,
    ) -> Result<Vec<RewardRequest>, sqlx::Error> {
        let sql = concat!(
            "select ",
            request_columns!(),
            " from reward_requests where ($1 is null or user_id = $1) \
             and ($2 is null or status = $2) and ($3 is null or event_id = $3) \
             and ($4 is null or event_reward_id = $4) and ($5 is null or id > $5) \
             order by id limit $6"
        );
        let rows: Vec<RequestRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql)
                .bind(filter.user)
                .bind(filter.status.map(RequestStatus::as_str))
                .bind(filter.event)
                .bind(filter.event_reward)
                .bind(page.after.map(RewardRequestId))
                .bind(page.fetch_limit())
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter().map(RewardRequest::try_from).collect()
    }

    async fn decide(&self, decision: Decision) -> Result<Decide, sqlx::Error> {
        kernel::write_tx!(&self.db, |conn, backend| {
            let sql = if backend == Backend::Postgres {
                concat!(
                    "select ",
                    request_columns!(),
                    ", holds_unit from reward_requests where id = $1 for update"
                )
            } else {
                concat!(
                    "select ",
                    request_columns!(),
                    ", holds_unit from reward_requests where id = $1"
                )
            };
            let found: Option<DecidedRow> = sqlx::query_as(sql)
                .bind(decision.id)
                .fetch_optional(&mut *conn)
                .await?;
            let Some(found) = found else {
                return Ok(Decide::NotFound);
            };
            let holds_unit = found.holds_unit;
            let mut request = RewardRequest::try_from(found.request)?;
            request.status = match request.status.move_to(decision.to) {
                Ok(next) => next,
                Err(e) => return Ok(Decide::InvalidTransition(e)),
            };
            request.reason = decision.reason;
            request.decided_at = Some(decision.at);
            request.decided_by = Some(decision.by);
            let moved = sqlx::query(
                "update reward_requests set status = $2, reason = $3, decided_at = $4, \
                 decided_by = $5 where id = $1 and status = 'PENDING'",
            )
            .bind(request.id)
            .bind(request.status.as_str())
            .bind(request.reason.as_deref())
            .bind(request.decided_at)
            .bind(request.decided_by)
            .execute(&mut *conn)
            .await?;
            if moved.rows_affected() != 1 {
                // Decided by someone else between the read and the update
                // (possible only without the row lock); never decide twice.
                return Ok(Decide::InvalidTransition(InvalidTransition {
                    from: "a decided status",
                    to: decision.to.as_str(),
                }));
            }
            if request.status == RequestStatus::Rejected {
                if holds_unit {
                    sqlx::query(
                        "update event_rewards set remaining = remaining + 1 \
                         where id = $1 and remaining is not null and remaining < quantity",
                    )
                    .bind(request.event_reward_id)
                    .execute(&mut *conn)
                    .await?;
                }
                for message in &decision.messages {
                    bus::enqueue!(conn, message)?;
                }
            }
            if request.status == RequestStatus::Approved {
                write_grant!(
                    conn,
                    &request,
                    decision.grant,
                    &decision.messages,
                    decision.at
                );
            }
            Ok(Decide::Decided(request))
        })
    }

    async fn pool_snapshot(
        &self,
        event_reward: EventRewardId,
    ) -> Result<Option<PoolSnapshot>, sqlx::Error> {
        kernel::read!(&self.db, |pool| {
            let stock: Option<StockRow> = sqlx::query_as(
                "select quantity, remaining, per_user_limit from event_rewards where id = $1",
            )
            .bind(event_reward)
            .fetch_optional(pool)
            .await?;
            let Some(stock) = stock else {
                return Ok(None);
            };
            let holders: Vec<(UserId, i64)> = sqlx::query_as(
                "select user_id, count(*) from reward_requests where event_reward_id = $1 \
                 and status in ('PENDING', 'APPROVED') group by user_id",
            )
            .bind(event_reward)
            .fetch_all(pool)
            .await?;
            Ok(Some(PoolSnapshot {
                quantity: stock
                    .quantity
                    .map(|n| stored_count("quantity", n))
                    .transpose()?,
                remaining: stock
                    .remaining
                    .map(|n| stored_count("remaining", n))
                    .transpose()?,
                per_user_limit: stored_count("per_user_limit", stock.per_user_limit)?,
                holders: holders
                    .into_iter()
                    .map(|(user, n)| stored_count("holdings", n).map(|n| (user, n)))
                    .collect::<Result<_, _>>()?,
            }))
        })
    }

    async fn event_reward_ids(&self) -> Result<Vec<EventRewardId>, sqlx::Error> {
        kernel::read!(&self.db, |pool| {
            sqlx::query_scalar("select id from event_rewards order by id")
                .fetch_all(pool)
                .await
        })
    }

    async fn wallet(&self, user: UserId) -> Result<Wallet, sqlx::Error> {
        kernel::read!(&self.db, |pool| {
            let points: Option<i64> = sqlx::query_scalar(
                "select cast(sum(points) as bigint) from wallet_entries where user_id = $1",
            )
            .bind(user)
            .fetch_one(pool)
            .await?;
            let items: Vec<(String, i64)> = sqlx::query_as(
                "select item_id, cast(sum(item_quantity) as bigint) from wallet_entries \
                 where user_id = $1 and item_id is not null group by item_id order by item_id",
            )
            .bind(user)
            .fetch_all(pool)
            .await?;
            let badges: Vec<String> = sqlx::query_scalar(
                "select distinct badge_id from wallet_entries \
                 where user_id = $1 and badge_id is not null order by badge_id",
            )
            .bind(user)
            .fetch_all(pool)
            .await?;
            let sum = |what, n: i64| u64::try_from(n).map_err(|e| bad_row(what, e));
            Ok(Wallet {
                points: points.map(|n| sum("points", n)).transpose()?.unwrap_or(0),
                items: items
                    .into_iter()
                    .map(|(item_id, n)| {
                        sum("item quantity", n).map(|quantity| ItemHolding { item_id, quantity })
                    })
                    .collect::<Result<_, _>>()?,
                badges,
            })
        })
    }
}

#[derive(sqlx::FromRow)]
struct DecidedRow {
    #[sqlx(flatten)]
    request: RequestRow,
    holds_unit: bool,
}
