//! The reservations table, for both backends. A reservation's status only
//! moves by a conditional update from the statuses it may leave, so of two
//! callers racing to give its units back (release, expiry, a failed or
//! cancelled order) exactly one sees the row change.

use async_trait::async_trait;
use kernel::db::{Db, bad_row, stored_count};
use kernel::{PageRequest, Timestamp, UserId};

use super::model::{Reservation, ReservationId, ReservationStatus};
use crate::model::OrderId;
use crate::products::ProductId;

/// What a product's pool holds, as the reservations record it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductStock {
    pub stock: Option<u32>,
    pub per_user_limit: Option<u32>,
    /// Units each user's `HELD`, `ORDERED` and `SOLD` reservations take.
    pub by_user: Vec<(UserId, u64)>,
}

#[async_trait]
pub trait ReservationStore: Send + Sync {
    /// Writes a new public hold: the durable half of its claim. `false`
    /// (nothing written) while the product's waiting list has someone
    /// `WAITING`: units that come back are theirs first (ADR 0024).
    async fn insert(&self, reservation: &Reservation) -> Result<bool, sqlx::Error>;
    async fn reservation(&self, id: ReservationId) -> Result<Option<Reservation>, sqlx::Error>;
    /// The user's reservations in id order.
    async fn of_user(
        &self,
        user: UserId,
        page: PageRequest,
    ) -> Result<Vec<Reservation>, sqlx::Error>;
    /// Moves the reservation to `to` if it is in one of `from` (and, with
    /// `due`, only if it expired by then); the row as changed, or `None`
    /// when another caller moved it first.
    async fn move_status(
        &self,
        id: ReservationId,
        from: &[ReservationStatus],
        to: ReservationStatus,
        due: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Option<Reservation>, sqlx::Error>;
    /// `HELD` reservations that expired by `now`, oldest first, at most `limit`.
    async fn due(&self, now: Timestamp, limit: i64) -> Result<Vec<ReservationId>, sqlx::Error>;
    /// The product's limits and units taken per user; `None` if no product.
    async fn stock(&self, product: ProductId) -> Result<Option<ProductStock>, sqlx::Error>;
    /// Every product with limited stock or a per-user limit (a pool).
    async fn limited_products(&self) -> Result<Vec<ProductId>, sqlx::Error>;
}

#[derive(Debug, Clone)]
pub struct SqlReservationStore {
    db: Db,
}

impl SqlReservationStore {
    #[must_use]
    pub const fn new(db: Db) -> Self {
        Self { db }
    }
}

/// A public hold's insert: nothing while someone waits for the product.
const INSERT_UNLESS_WAITING: &str = "insert into reservations (id, product_id, user_id, \
    quantity, status, expires_at, order_id, created_at, updated_at) \
    select $1, $2, $3, $4, $5, $6, $7, $8, $9 where not exists (select 1 \
    from waiting_list_entries where product_id = $2 and status = 'WAITING')";

/// The insert of a reservation made for a waiting-list offer.
pub(crate) const INSERT_OFFERED: &str = "insert into reservations (id, product_id, user_id, \
    quantity, status, expires_at, order_id, created_at, updated_at) \
    values ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// Runs one of the inserts above for `$reservation` on `$conn` (inside a
/// store's transaction, on either backend); the rows it wrote.
macro_rules! insert_reservation {
    ($conn:expr, $sql:expr, $reservation:expr) => {{
        let r: &$crate::reservations::Reservation = $reservation;
        ::sqlx::query($sql)
            .bind(r.id)
            .bind(r.product_id)
            .bind(r.user_id)
            .bind(i64::from(r.quantity))
            .bind(r.status.as_str())
            .bind(r.expires_at)
            .bind(r.order_id)
            .bind(r.created_at)
            .bind(r.updated_at)
            .execute(&mut *$conn)
            .await
            .map(|done| done.rows_affected())
    }};
}
pub(crate) use insert_reservation;

macro_rules! columns {
    () => {
        "id, product_id, user_id, quantity, status, expires_at, order_id, created_at, updated_at"
    };
}

#[derive(sqlx::FromRow)]
struct Row {
    id: ReservationId,
    product_id: ProductId,
    user_id: UserId,
    quantity: i64,
    status: String,
    expires_at: Timestamp,
    order_id: Option<OrderId>,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl TryFrom<Row> for Reservation {
    type Error = sqlx::Error;
    fn try_from(row: Row) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.id,
            product_id: row.product_id,
            user_id: row.user_id,
            quantity: stored_count("quantity", row.quantity)?,
            status: row
                .status
                .parse()
                .map_err(|e| bad_row("reservation status", e))?,
            expires_at: row.expires_at,
            order_id: row.order_id,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

#[async_trait]
impl ReservationStore for SqlReservationStore {
    async fn insert(&self, reservation: &Reservation) -> Result<bool, sqlx::Error> {
        let r = reservation.clone();
        let inserted = kernel::write_tx!(&self.db, |conn| {
            insert_reservation!(conn, INSERT_UNLESS_WAITING, &r)
        })?;
        Ok(inserted == 1)
    }

    async fn reservation(&self, id: ReservationId) -> Result<Option<Reservation>, sqlx::Error> {
        let sql = concat!("select ", columns!(), " from reservations where id = $1");
        let row: Option<Row> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql).bind(id).fetch_optional(pool).await
        })?;
        row.map(TryInto::try_into).transpose()
    }

    async fn of_user(
        &self,
        user: UserId,
        page: PageRequest,
    ) -> Result<Vec<Reservation>, sqlx::Error> {
        let sql = concat!(
            "select ",
            columns!(),
            " from reservations where user_id = $1 \
             and ($2 is null or id > $2) order by id limit $3"
        );
        let rows: Vec<Row> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql)
                .bind(user)
                .bind(page.after.map(ReservationId))
                .bind(page.fetch_limit())
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn move_status(
        &self,
        id: ReservationId,
        from: &[ReservationStatus],
        to: ReservationStatus,
        due: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Option<Reservation>, sqlx::Error> {
        // At most three statuses may be left at once; unused slots repeat
        // the first, so the statement and its parameters stay fixed.
        let first = from.first().copied().unwrap_or(to);
        let pick = |i: usize| from.get(i).copied().unwrap_or(first).as_str();
        let (a, b, c) = (pick(0), pick(1), pick(2));
        let sql = concat!(
            "update reservations set status = $2, updated_at = $3 \
             where id = $1 and status in ($4, $5, $6) and ($7 is null or expires_at <= $7) \
             returning ",
            columns!()
        );
        let row: Option<Row> = kernel::write_tx!(&self.db, |conn| {
            sqlx::query_as(sql)
                .bind(id)
                .bind(to.as_str())
                .bind(now)
                .bind(a)
                .bind(b)
                .bind(c)
                .bind(due)
                .fetch_optional(&mut *conn)
                .await
        })?;
        row.map(TryInto::try_into).transpose()
    }

    async fn due(&self, now: Timestamp, limit: i64) -> Result<Vec<ReservationId>, sqlx::Error> {
        kernel::read!(&self.db, |pool| {
            sqlx::query_scalar(
                "select id from reservations where status = 'HELD' and expires_at <= $1 \
                 order by expires_at limit $2",
            )
            .bind(now)
            .bind(limit)
            .fetch_all(pool)
            .await
        })
    }

    async fn stock(&self, product: ProductId) -> Result<Option<ProductStock>, sqlx::Error> {
        let limits: Option<(Option<i64>, Option<i64>)> = kernel::read!(&self.db, |pool| {
            sqlx::query_as("select stock, per_user_limit from products where id = $1")
                .bind(product)
                .fetch_optional(pool)
                .await
        })?;
        let Some((stock, per_user_limit)) = limits else {
            return Ok(None);
        };
        let rows: Vec<(UserId, i64)> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(
                "select user_id, cast(sum(quantity) as bigint) from reservations \
                 where product_id = $1 and status in ('HELD', 'ORDERED', 'SOLD') \
                 group by user_id",
            )
            .bind(product)
            .fetch_all(pool)
            .await
        })?;
        Ok(Some(ProductStock {
            stock: stock.map(|s| stored_count("stock", s)).transpose()?,
            per_user_limit: per_user_limit
                .map(|n| stored_count("per_user_limit", n))
                .transpose()?,
            by_user: rows
                .into_iter()
                .map(|(user, n)| {
                    u64::try_from(n)
                        .map(|n| (user, n))
                        .map_err(|e| bad_row("units taken", e))
                })
                .collect::<Result<_, _>>()?,
        }))
    }

    async fn limited_products(&self) -> Result<Vec<ProductId>, sqlx::Error> {
        kernel::read!(&self.db, |pool| {
            sqlx::query_scalar(
                "select id from products where stock is not null or per_user_limit is not null \
                 order by id",
            )
            .fetch_all(pool)
            .await
        })
    }
}
