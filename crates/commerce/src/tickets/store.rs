//! The tickets table, for both backends. Tickets are written by the order
//! store in the transaction that marks the order paid.

use async_trait::async_trait;
use kernel::db::{Db, bad_row};
use kernel::{PageRequest, Timestamp, UserId};

use super::model::{Ticket, TicketCode, TicketId};
use crate::model::OrderId;
use crate::products::ProductId;

#[async_trait]
pub trait TicketStore: Send + Sync {
    /// The user's tickets in id order.
    async fn of_user(&self, user: UserId, page: PageRequest) -> Result<Vec<Ticket>, sqlx::Error>;
    /// The order's tickets in id order.
    async fn of_order(&self, order: OrderId) -> Result<Vec<Ticket>, sqlx::Error>;
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
}
