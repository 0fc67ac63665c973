//! The waiting-list table, for both backends. An entry's status only moves
//! by a conditional update from the status it was read in, so of two
//! workers offering the same entry exactly one writes the offer; the offer's
//! reservation and its bus message are written in that same transaction.
//!
//! An `OFFERED` entry reads as `ACCEPTED` once its reservation was ordered,
//! and as `EXPIRED` once the reservation gave its units back: the reads
//! join the reservation, so the answer is live before the worker writes it
//! down ([`WaitlistStore::settle_offers`]).

use async_trait::async_trait;
use bus::Envelope;
use kernel::db::{Db, bad_row, stored_count};
use kernel::{PageRequest, Timestamp, UserId};

use super::model::{EntryStatus, WaitingListEntry, WaitingListEntryId};
use crate::products::ProductId;
use crate::reservations::store::{INSERT_OFFERED, insert_reservation};
use crate::reservations::{Reservation, ReservationId};

/// A `WAITING` entry as the offer worker needs it: who, and how many.
pub type Waiting = (WaitingListEntryId, UserId, u32);

#[async_trait]
pub trait WaitlistStore: Send + Sync {
    /// Writes a new `WAITING` entry; `false` (nothing written) when the
    /// user already has a live (`WAITING` or `OFFERED`) entry for the product.
    async fn insert(&self, entry: &WaitingListEntry) -> Result<bool, sqlx::Error>;
    /// The user's latest entry for the product, live or done.
    async fn latest_of(
        &self,
        product: ProductId,
        user: UserId,
    ) -> Result<Option<WaitingListEntry>, sqlx::Error>;
    /// The product's entries in join order.
    async fn of_product(
        &self,
        product: ProductId,
        page: PageRequest,
    ) -> Result<Vec<WaitingListEntry>, sqlx::Error>;
    /// How many of the product's entries joined before `id` and still wait.
    async fn waiting_before(
        &self,
        product: ProductId,
        id: WaitingListEntryId,
    ) -> Result<u64, sqlx::Error>;
    /// Whether anyone waits for the product.
    async fn has_waiting(&self, product: ProductId) -> Result<bool, sqlx::Error>;
    /// Units of the product the user's `HELD`, `ORDERED` and `SOLD`
    /// reservations take.
    async fn units_taken(&self, product: ProductId, user: UserId) -> Result<u64, sqlx::Error>;
    /// The product's `WAITING` entries in join order, at most `limit`.
    async fn waiting(&self, product: ProductId, limit: i64) -> Result<Vec<Waiting>, sqlx::Error>;
    /// Every product someone waits for.
    async fn waiting_products(&self) -> Result<Vec<ProductId>, sqlx::Error>;
    /// Offers `reservation` to the entry: `WAITING → OFFERED` with the
    /// reservation written and `announce` enqueued, in one transaction.
    /// `false` (nothing written) when the entry no longer waits.
    async fn offer(
        &self,
        entry: WaitingListEntryId,
        reservation: &Reservation,
        announce: &Envelope,
    ) -> Result<bool, sqlx::Error>;
    /// Moves the user's live entry for the product to `LEFT` (an offer only
    /// while its reservation is still `HELD`); the entry as it was left, or
    /// `None` when there was none.
    async fn leave(
        &self,
        product: ProductId,
        user: UserId,
        now: Timestamp,
    ) -> Result<Option<WaitingListEntry>, sqlx::Error>;
    /// `WAITING → EXPIRED`: the entry can no longer take its units. Whether
    /// this call moved it.
    async fn expire_waiting(
        &self,
        id: WaitingListEntryId,
        now: Timestamp,
    ) -> Result<bool, sqlx::Error>;
    /// Writes down what the offers' reservations became: ordered →
    /// `ACCEPTED`, units given back unordered → `EXPIRED`; how many moved.
    async fn settle_offers(&self, now: Timestamp) -> Result<u64, sqlx::Error>;
}

/// Why an offer's transaction wrote nothing.
enum OfferError {
    NotWaiting,
    Database(sqlx::Error),
}

impl From<sqlx::Error> for OfferError {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(e)
    }
}

#[derive(Debug, Clone)]
pub struct SqlWaitlistStore {
    db: Db,
}

impl SqlWaitlistStore {
    #[must_use]
    pub const fn new(db: Db) -> Self {
        Self { db }
    }
}

/// An entry with its live status (see the module's comment).
macro_rules! select_entries {
    () => {
        "select w.id, w.product_id, w.user_id, w.quantity, \
         case when w.status = 'OFFERED' and r.order_id is not null then 'ACCEPTED' \
         when w.status = 'OFFERED' and r.status in ('EXPIRED', 'RELEASED') then 'EXPIRED' \
         else w.status end as status, \
         w.joined_at, w.offered_at, w.reservation_id, w.offer_expires_at \
         from waiting_list_entries w left join reservations r on r.id = w.reservation_id "
    };
}

#[derive(sqlx::FromRow)]
struct Row {
    id: WaitingListEntryId,
    product_id: ProductId,
    user_id: UserId,
    quantity: i64,
    status: String,
    joined_at: Timestamp,
    offered_at: Option<Timestamp>,
    reservation_id: Option<ReservationId>,
    offer_expires_at: Option<Timestamp>,
}

impl TryFrom<Row> for WaitingListEntry {
    type Error = sqlx::Error;
    fn try_from(row: Row) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.id,
            product_id: row.product_id,
            user_id: row.user_id,
            quantity: stored_count("quantity", row.quantity)?,
            status: row
                .status
                .parse::<EntryStatus>()
                .map_err(|e| bad_row("waiting-list status", e))?,
            rank: None,
            joined_at: row.joined_at,
            offered_at: row.offered_at,
            reservation_id: row.reservation_id,
            offer_expires_at: row.offer_expires_at,
        })
    }
}

#[async_trait]
impl WaitlistStore for SqlWaitlistStore {
    async fn insert(&self, entry: &WaitingListEntry) -> Result<bool, sqlx::Error> {
        let e = entry.clone();
        let written = kernel::write_tx!(&self.db, |conn| {
            sqlx::query(
                "insert into waiting_list_entries (id, product_id, user_id, quantity, status, \
                 joined_at, updated_at) values ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(e.id)
            .bind(e.product_id)
            .bind(e.user_id)
            .bind(i64::from(e.quantity))
            .bind(e.status.as_str())
            .bind(e.joined_at)
            .execute(&mut *conn)
            .await
            .map(drop)
        });
        match written {
            Ok(()) => Ok(true),
            Err(e) if kernel::db::is_any_unique_violation(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn latest_of(
        &self,
        product: ProductId,
        user: UserId,
    ) -> Result<Option<WaitingListEntry>, sqlx::Error> {
        let sql = concat!(
            select_entries!(),
            "where w.product_id = $1 and w.user_id = $2 order by w.id desc limit 1"
        );
        let row: Option<Row> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql)
                .bind(product)
                .bind(user)
                .fetch_optional(pool)
                .await
        })?;
        row.map(TryInto::try_into).transpose()
    }

    async fn of_product(
        &self,
        product: ProductId,
        page: PageRequest,
    ) -> Result<Vec<WaitingListEntry>, sqlx::Error> {
        let sql = concat!(
            select_entries!(),
            "where w.product_id = $1 and ($2 is null or w.id > $2) order by w.id limit $3"
        );
        let rows: Vec<Row> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql)
                .bind(product)
                .bind(page.after.map(WaitingListEntryId))
                .bind(page.fetch_limit())
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn waiting_before(
        &self,
        product: ProductId,
        id: WaitingListEntryId,
    ) -> Result<u64, sqlx::Error> {
        let n: i64 = kernel::read!(&self.db, |pool| {
            sqlx::query_scalar(
                "select count(*) from waiting_list_entries \
                 where product_id = $1 and status = 'WAITING' and id < $2",
            )
            .bind(product)
            .bind(id)
            .fetch_one(pool)
            .await
        })?;
        u64::try_from(n).map_err(|e| bad_row("rank", e))
    }

    async fn has_waiting(&self, product: ProductId) -> Result<bool, sqlx::Error> {
        let found: Option<i32> = kernel::read!(&self.db, |pool| {
            sqlx::query_scalar(
                "select 1 from waiting_list_entries \
                 where product_id = $1 and status = 'WAITING' limit 1",
            )
            .bind(product)
            .fetch_optional(pool)
            .await
        })?;
        Ok(found.is_some())
    }

    async fn units_taken(&self, product: ProductId, user: UserId) -> Result<u64, sqlx::Error> {
        let n: Option<i64> = kernel::read!(&self.db, |pool| {
            sqlx::query_scalar(
                "select cast(sum(quantity) as bigint) from reservations \
                 where product_id = $1 and user_id = $2 \
                 and status in ('HELD', 'ORDERED', 'SOLD')",
            )
            .bind(product)
            .bind(user)
            .fetch_one(pool)
            .await
        })?;
        u64::try_from(n.unwrap_or(0)).map_err(|e| bad_row("units taken", e))
    }

    async fn waiting(&self, product: ProductId, limit: i64) -> Result<Vec<Waiting>, sqlx::Error> {
        let rows: Vec<(WaitingListEntryId, UserId, i64)> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(
                "select id, user_id, quantity from waiting_list_entries \
                 where product_id = $1 and status = 'WAITING' order by id limit $2",
            )
            .bind(product)
            .bind(limit)
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter()
            .map(|(id, user, quantity)| Ok((id, user, stored_count("quantity", quantity)?)))
            .collect()
    }

    async fn waiting_products(&self) -> Result<Vec<ProductId>, sqlx::Error> {
        kernel::read!(&self.db, |pool| {
            sqlx::query_scalar(
                "select distinct product_id from waiting_list_entries where status = 'WAITING'",
            )
            .fetch_all(pool)
            .await
        })
    }

    async fn offer(
        &self,
        entry: WaitingListEntryId,
        reservation: &Reservation,
        announce: &Envelope,
    ) -> Result<bool, sqlx::Error> {
        let (r, envelope) = (reservation.clone(), announce.clone());
        let offered = kernel::write_tx!(&self.db, |conn| {
            // The reservation first: the entry's row names it.
            insert_reservation!(conn, INSERT_OFFERED, &r)?;
            let moved = sqlx::query(
                "update waiting_list_entries set status = 'OFFERED', offered_at = $2, \
                 reservation_id = $3, offer_expires_at = $4, updated_at = $2 \
                 where id = $1 and status = 'WAITING'",
            )
            .bind(entry)
            .bind(r.created_at)
            .bind(r.id)
            .bind(r.expires_at)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if moved == 0 {
                // Offered by someone else, or the user left: the error
                // rolls the reservation back with the rest.
                return Err(OfferError::NotWaiting);
            }
            bus::enqueue!(conn, &envelope)?;
            Ok(())
        });
        match offered {
            Ok(()) => Ok(true),
            Err(OfferError::NotWaiting) => Ok(false),
            Err(OfferError::Database(e)) => Err(e),
        }
    }

    async fn leave(
        &self,
        product: ProductId,
        user: UserId,
        now: Timestamp,
    ) -> Result<Option<WaitingListEntry>, sqlx::Error> {
        let row: Option<Row> = kernel::write_tx!(&self.db, |conn| {
            sqlx::query_as(
                "update waiting_list_entries set status = 'LEFT', updated_at = $3 \
                 where product_id = $1 and user_id = $2 and (status = 'WAITING' \
                 or (status = 'OFFERED' and reservation_id in \
                 (select id from reservations where status = 'HELD'))) \
                 returning id, product_id, user_id, quantity, status, joined_at, offered_at, \
                 reservation_id, offer_expires_at",
            )
            .bind(product)
            .bind(user)
            .bind(now)
            .fetch_optional(&mut *conn)
            .await
        })?;
        row.map(TryInto::try_into).transpose()
    }

    async fn expire_waiting(
        &self,
        id: WaitingListEntryId,
        now: Timestamp,
    ) -> Result<bool, sqlx::Error> {
        let moved = kernel::write_tx!(&self.db, |conn| {
            sqlx::query(
                "update waiting_list_entries set status = 'EXPIRED', updated_at = $2 \
                 where id = $1 and status = 'WAITING'",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map(|done| done.rows_affected())
        })?;
        Ok(moved == 1)
    }

    async fn settle_offers(&self, now: Timestamp) -> Result<u64, sqlx::Error> {
        // Most rounds find no offer open: a read spares them a commit.
        let open: Option<i32> = kernel::read!(&self.db, |pool| {
            sqlx::query_scalar(
                "select 1 from waiting_list_entries where status = 'OFFERED' limit 1",
            )
            .fetch_optional(pool)
            .await
        })?;
        if open.is_none() {
            return Ok(0);
        }
        kernel::write_tx!(&self.db, |conn| {
            let accepted = sqlx::query(
                "update waiting_list_entries set status = 'ACCEPTED', updated_at = $1 \
                 where status = 'OFFERED' and reservation_id in \
                 (select id from reservations where order_id is not null)",
            )
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            let expired = sqlx::query(
                "update waiting_list_entries set status = 'EXPIRED', updated_at = $1 \
                 where status = 'OFFERED' and reservation_id in (select id from reservations \
                 where order_id is null and status in ('EXPIRED', 'RELEASED'))",
            )
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            Ok(accepted + expired)
        })
    }
}
