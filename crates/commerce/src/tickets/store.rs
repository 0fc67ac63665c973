//! The tickets table, for both backends. Tickets are written by the order
//! store in the transaction that marks the order paid.

use async_trait::async_trait;
use kernel::db::{Db, bad_row};
use kernel::{PageRequest, Timestamp, UserId};

use super::model::{
    CheckIn, CheckInResult, CheckedTicket, Ticket, TicketCode, TicketId, TicketStatus,
};
use crate::model::OrderId;
use crate::products::ProductId;

#[async_trait]
pub trait TicketStore: Send + Sync {
    /// The user's tickets in id order.
    async fn of_user(&self, user: UserId, page: PageRequest) -> Result<Vec<Ticket>, sqlx::Error>;
    /// The order's tickets in id order.
    async fn of_order(&self, order: OrderId) -> Result<Vec<Ticket>, sqlx::Error>;
    /// Redeems the ticket of `code` once: `VALID → USED` by a conditional
    /// update, so of many scans at once exactly one is `OK`. A `nonce` seen
    /// before answers as it did the first time.
    async fn check_in(
        &self,
        code: &str,
        nonce: &str,
        now: Timestamp,
    ) -> Result<CheckIn, sqlx::Error>;
}

#[derive(Debug, Clone)]
pub struct SqlTicketStore {
    db: Db,
}

impl SqlTicketStore {
    #[must_use]
    pub const fn new(db: Db) -> Self {
        Self { db }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TicketRow {
    id: TicketId,
    order_id: OrderId,
    product_id: ProductId,
    user_id: UserId,
    code: String,
    status: String,
    valid_from: Option<Timestamp>,
    valid_until: Option<Timestamp>,
    checked_in_at: Option<Timestamp>,
}

impl TryFrom<TicketRow> for Ticket {
    type Error = sqlx::Error;
    fn try_from(row: TicketRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.id,
            order_id: row.order_id,
            product_id: row.product_id,
            user_id: row.user_id,
            code: TicketCode::stored(row.code),
            status: row
                .status
                .parse()
                .map_err(|e| bad_row("ticket status", e))?,
            valid_from: row.valid_from,
            valid_until: row.valid_until,
            checked_in_at: row.checked_in_at,
        })
    }
}

macro_rules! ticket_columns {
    () => {
        "id, order_id, product_id, user_id, code, status, valid_from, valid_until, checked_in_at"
    };
}

#[async_trait]
impl TicketStore for SqlTicketStore {
    async fn of_user(&self, user: UserId, page: PageRequest) -> Result<Vec<Ticket>, sqlx::Error> {
        let sql = concat!(
            "select ",
            ticket_columns!(),
            " from tickets where user_id = $1 and ($2 is null or id > $2) order by id limit $3"
        );
        let rows: Vec<TicketRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql)
                .bind(user)
                .bind(page.after.map(TicketId))
                .bind(page.fetch_limit())
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn of_order(&self, order: OrderId) -> Result<Vec<Ticket>, sqlx::Error> {
        let sql = concat!(
            "select ",
            ticket_columns!(),
            " from tickets where order_id = $1 order by id"
        );
        let rows: Vec<TicketRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql).bind(order).fetch_all(pool).await
        })?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn check_in(
        &self,
        code: &str,
        nonce: &str,
        now: Timestamp,
    ) -> Result<CheckIn, sqlx::Error> {
        let (code, nonce) = (code.to_owned(), nonce.to_owned());
        let replay = nonce.clone();
        let written: Result<CheckIn, sqlx::Error> = kernel::write_tx!(&self.db, |conn| {
            let first: Option<String> =
                sqlx::query_scalar("select answer from check_ins where nonce = $1")
                    .bind(&nonce)
                    .fetch_optional(&mut *conn)
                    .await?;
            if let Some(answer) = first {
                return serde_json::from_str(&answer).map_err(|e| bad_row("check-in answer", e));
            }
            let used = sqlx::query(
                "update tickets set status = 'USED', checked_in_at = $2 \
                 where code = $1 and status = 'VALID'",
            )
            .bind(&code)
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            let sql = concat!(
                "select ",
                ticket_columns!(),
                " from tickets where code = $1"
            );
            let row: Option<TicketRow> = sqlx::query_as(sql)
                .bind(&code)
                .fetch_optional(&mut *conn)
                .await?;
            let ticket: Option<Ticket> = row.map(TryInto::try_into).transpose()?;
            let answer = match ticket {
                None => CheckIn {
                    result: CheckInResult::Unknown,
                    ticket: None,
                    checked_in_at: None,
                },
                Some(t) => CheckIn {
                    result: match (used, t.status) {
                        (1, _) => CheckInResult::Ok,
                        (_, TicketStatus::Void) => CheckInResult::Void,
                        _ => CheckInResult::AlreadyUsed,
                    },
                    checked_in_at: t.checked_in_at,
                    ticket: Some(CheckedTicket {
                        id: t.id,
                        order_id: t.order_id,
                        product_id: t.product_id,
                        user_id: t.user_id,
                        status: t.status,
                    }),
                },
            };
            let stored =
                serde_json::to_string(&answer).map_err(|e| bad_row("check-in answer", e))?;
            sqlx::query("insert into check_ins (nonce, code, answer, at) values ($1, $2, $3, $4)")
                .bind(&nonce)
                .bind(&code)
                .bind(stored)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            Ok(answer)
        });
        match written {
            // The same nonce raced in on another connection and won: its
            // answer is the one to replay.
            Err(e) if kernel::db::is_any_unique_violation(&e) => {
                let first: Option<String> = kernel::read!(&self.db, |pool| {
                    sqlx::query_scalar("select answer from check_ins where nonce = $1")
                        .bind(replay.as_str())
                        .fetch_optional(pool)
                        .await
                })?;
                let first = first.ok_or(e)?;
                serde_json::from_str(&first).map_err(|e| bad_row("check-in answer", e))
            }
            other => other,
        }
    }
}
