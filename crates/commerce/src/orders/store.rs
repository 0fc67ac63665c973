//! The order tables, for both backends. Every status change is a
//! conditional update from the status it leaves, in one transaction with
//! the reservations and the coupon it moves; the rows it returns are the
//! units this caller alone gives back.

use async_trait::async_trait;
use bus::Envelope;
use kernel::db::{Db, bad_row, stored_count};
use kernel::{Currency, Money, PageRequest, Timestamp, UserId};

use super::model::{Order, OrderItem, OrderStatus, Payment, PaymentStatus};
use crate::model::{CouponId, Discount, OrderId, Percent};
use crate::products::ProductId;
use crate::reservations::{Reservation, ReservationId};
use crate::tickets::Ticket;
use crate::tickets::store::TicketRow;

/// A coupon as an order sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderCoupon {
    pub id: CouponId,
    pub user_id: UserId,
    pub usable: bool,
    pub discount: Discount,
}

/// Why an order was not placed; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error("reservation {0} is no longer held")]
    NotHeld(ReservationId),
    #[error("the coupon is no longer usable")]
    CouponTaken,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// How [`OrderStore::close_unpaid`] closes an unpaid order.
#[derive(Debug, Clone, PartialEq)]
pub struct Close {
    /// The payment status the order must be in.
    pub payment: PaymentStatus,
    pub to: OrderStatus,
    /// The payment status and provider code to write, if they change.
    pub to_payment: Option<(PaymentStatus, Option<String>)>,
    /// The history line.
    pub event: &'static str,
    /// Only if its window ended by then.
    pub due: Option<Timestamp>,
    /// Messages committed with the close (a cancel announces itself).
    pub announce: Vec<Envelope>,
}

/// What [`OrderStore::cancel_paid`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelPaid {
    /// `CANCELLED` with its refund pending; the units it released.
    Cancelled(Returned),
    /// The order was not `PAID` (cancelled meanwhile, or never paid).
    NotPaid,
    /// A ticket was checked in: nothing changed.
    TicketUsed,
}

/// Why [`OrderStore::cancel_paid`] rolled back.
enum CancelAbort {
    NotPaid,
    TicketUsed,
    Database(sqlx::Error),
}

impl From<sqlx::Error> for CancelAbort {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(e)
    }
}

/// Units a closed order gave up: one entry per reservation it moved.
pub type Returned = Vec<Reservation>;

#[async_trait]
pub trait OrderStore: Send + Sync {
    /// Writes the order, moves its reservations `HELD → ORDERED` with
    /// `expires_at` set to the order's, and sets its coupon aside; all or
    /// nothing.
    async fn place(&self, order: &Order, now: Timestamp) -> Result<(), PlaceError>;
    async fn order(&self, id: OrderId) -> Result<Option<Order>, sqlx::Error>;
    async fn list(
        &self,
        user: Option<UserId>,
        status: Option<OrderStatus>,
        page: PageRequest,
    ) -> Result<Vec<Order>, sqlx::Error>;
    /// The coupon of this code, as of `now`.
    async fn coupon(&self, code: &str, now: Timestamp) -> Result<Option<OrderCoupon>, sqlx::Error>;
    /// Closes an unpaid order whose payment is `payment` into `to`: its
    /// reservations `ORDERED → to_reservation`, its coupon back to its
    /// owner, a history line. `None` when it was not in that state.
    async fn close_unpaid(
        &self,
        id: OrderId,
        close: Close,
        now: Timestamp,
    ) -> Result<Option<Returned>, sqlx::Error>;
    /// Starts a charge attempt: `payment_status NONE → UNKNOWN` while the
    /// order is unpaid and inside its window. The attempt's number, or
    /// `None` when the order was not payable.
    async fn begin_attempt(
        &self,
        id: OrderId,
        provider: &str,
        payment_key: &str,
        now: Timestamp,
    ) -> Result<Option<u32>, sqlx::Error>;
    /// The charge was approved: `PAID` with `tickets`, reservations `SOLD`,
    /// coupon `USED` and `announce` on the outbox, all at once; `false`
    /// when the order no longer waits for this charge (it expired, failed
    /// or was cancelled meanwhile), and then nothing is announced.
    async fn settle_paid(
        &self,
        id: OrderId,
        payment_key: &str,
        approved_at: Timestamp,
        tickets: &[Ticket],
        announce: &[Envelope],
        now: Timestamp,
    ) -> Result<bool, sqlx::Error>;
    /// Records on a closed order that it was paid late, with the refund of
    /// that payment (under `payment_key`): done already (`refunded`), or
    /// pending with `announce` (the refund command) on the outbox.
    async fn record_late_refund(
        &self,
        id: OrderId,
        payment_key: &str,
        detail: &str,
        refunded: bool,
        announce: &[Envelope],
        now: Timestamp,
    ) -> Result<(), sqlx::Error>;
    /// Cancels a paid order in one transaction: `CANCELLED` with its refund
    /// `PENDING` (the whole total), its tickets `VOID`, reservations
    /// `SOLD → RELEASED`, its coupon `ISSUED` again, and `announce` (the
    /// cancellation and the refund command) on the outbox. A checked-in
    /// ticket changes nothing.
    async fn cancel_paid(
        &self,
        id: OrderId,
        announce: &[Envelope],
        now: Timestamp,
    ) -> Result<CancelPaid, sqlx::Error>;
    /// The provider gave the money back: refund `PENDING → REFUNDED`,
    /// payment `REFUNDED`, `announce` on the outbox; `false` when the refund
    /// was not pending (done by an earlier delivery).
    async fn complete_refund(
        &self,
        id: OrderId,
        refunded_at: Timestamp,
        announce: &[Envelope],
        now: Timestamp,
    ) -> Result<bool, sqlx::Error>;
    /// Unpaid orders with a charge whose answer is not known.
    async fn unknown_payments(&self, limit: i64) -> Result<Vec<OrderId>, sqlx::Error>;
    /// Unpaid orders without a charge in flight, past their window.
    async fn due(&self, now: Timestamp, limit: i64) -> Result<Vec<OrderId>, sqlx::Error>;
    /// The order's history: `(event, detail, at)` in order.
    async fn history(
        &self,
        id: OrderId,
    ) -> Result<Vec<(String, Option<String>, Timestamp)>, sqlx::Error>;
}

#[derive(Debug, Clone)]
pub struct SqlOrderStore {
    db: Db,
}

impl SqlOrderStore {
    #[must_use]
    pub const fn new(db: Db) -> Self {
        Self { db }
    }

    async fn tickets(&self, id: OrderId) -> Result<Vec<Ticket>, sqlx::Error> {
        let rows: Vec<TicketRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(
                "select id, order_id, product_id, user_id, code, status, valid_from, \
                 valid_until, checked_in_at from tickets where order_id = $1 order by id",
            )
            .bind(id)
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter().map(TryInto::try_into).collect()
    }
}

macro_rules! order_columns {
    () => {
        "id, user_id, status, subtotal, discount, total, currency, coupon_id, coupon_code, \
         payment_provider, payment_status, payment_key, payment_code, approved_at, attempts, \
         refund_amount, refund_status, refunded_at, expires_at, created_at, updated_at"
    };
}

#[derive(sqlx::FromRow)]
struct OrderRow {
    id: OrderId,
    user_id: UserId,
    status: String,
    subtotal: i64,
    discount: i64,
    total: i64,
    currency: String,
    coupon_id: Option<CouponId>,
    coupon_code: Option<String>,
    payment_provider: Option<String>,
    payment_status: String,
    payment_key: Option<String>,
    payment_code: Option<String>,
    approved_at: Option<Timestamp>,
    attempts: i64,
    refund_amount: Option<i64>,
    refund_status: Option<String>,
    refunded_at: Option<Timestamp>,
    expires_at: Timestamp,
    created_at: Timestamp,
    updated_at: Timestamp,
}

#[derive(sqlx::FromRow)]
struct ItemRow {
    order_id: OrderId,
    reservation_id: ReservationId,
    product_id: ProductId,
    quantity: i64,
    unit_price: i64,
    amount: i64,
}

fn order_of(
    row: OrderRow,
    items: Vec<OrderItem>,
    tickets: Vec<Ticket>,
) -> Result<Order, sqlx::Error> {
    Ok(Order {
        tickets,
        id: row.id,
        user_id: row.user_id,
        status: row.status.parse().map_err(|e| bad_row("order status", e))?,
        items,
        subtotal: row.subtotal,
        discount: row.discount,
        total: row.total,
        currency: row.currency,
        coupon_code: row.coupon_code,
        payment: Payment {
            provider: row.payment_provider,
            status: row
                .payment_status
                .parse()
                .map_err(|e| bad_row("payment status", e))?,
            payment_key: row.payment_key,
            approved_at: row.approved_at,
            code: row.payment_code,
        },
        refund: row
            .refund_amount
            .map(|amount| {
                Ok::<_, sqlx::Error>(super::model::OrderRefund {
                    amount,
                    status: row
                        .refund_status
                        .as_deref()
                        .unwrap_or("REFUNDED")
                        .parse()
                        .map_err(|e| bad_row("refund status", e))?,
                    refunded_at: row.refunded_at,
                })
            })
            .transpose()?,
        expires_at: row.expires_at,
        created_at: row.created_at,
        updated_at: row.updated_at,
        coupon_id: row.coupon_id,
        attempts: stored_count("attempts", row.attempts)?,
    })
}

fn item_of(row: ItemRow) -> Result<OrderItem, sqlx::Error> {
    Ok(OrderItem {
        product_id: row.product_id,
        reservation_id: row.reservation_id,
        quantity: stored_count("quantity", row.quantity)?,
        unit_price: row.unit_price,
        amount: row.amount,
    })
}

#[derive(sqlx::FromRow)]
struct ReturnedRow {
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

impl TryFrom<ReturnedRow> for Reservation {
    type Error = sqlx::Error;
    fn try_from(row: ReturnedRow) -> Result<Self, Self::Error> {
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

/// Appends a line to an order's history, inside the caller's transaction.
macro_rules! append_history {
    ($conn:expr, $id:expr, $event:expr, $detail:expr, $at:expr) => {
        sqlx::query(
            "insert into order_history (order_id, seq, event, detail, at) \
             select $1, coalesce(max(seq), 0) + 1, $2, $3, $4 from order_history \
             where order_id = $1",
        )
        .bind($id)
        .bind($event)
        .bind($detail)
        .bind($at)
        .execute(&mut *$conn)
        .await
    };
}

#[async_trait]
impl OrderStore for SqlOrderStore {
    async fn place(&self, order: &Order, now: Timestamp) -> Result<(), PlaceError> {
        let o = order.clone();
        kernel::write_tx!(&self.db, |conn| {
            for item in &o.items {
                let moved = sqlx::query(
                    "update reservations set status = 'ORDERED', order_id = $2, \
                     expires_at = $3, updated_at = $4 \
                     where id = $1 and user_id = $5 and status = 'HELD' and expires_at > $4",
                )
                .bind(item.reservation_id)
                .bind(o.id)
                .bind(o.expires_at)
                .bind(now)
                .bind(o.user_id)
                .execute(&mut *conn)
                .await?
                .rows_affected();
                if moved != 1 {
                    return Err(PlaceError::NotHeld(item.reservation_id));
                }
            }
            if let Some(coupon) = o.coupon_id {
                let set_aside = sqlx::query(
                    "update coupons set order_id = $2, updated_at = $3 \
                     where id = $1 and user_id = $4 and status = 'ISSUED' \
                     and order_id is null and expires_at > $3",
                )
                .bind(coupon)
                .bind(o.id)
                .bind(now)
                .bind(o.user_id)
                .execute(&mut *conn)
                .await?
                .rows_affected();
                if set_aside != 1 {
                    return Err(PlaceError::CouponTaken);
                }
            }
            sqlx::query(
                "insert into orders (id, user_id, status, subtotal, discount, total, currency, \
                 coupon_id, coupon_code, payment_provider, payment_status, payment_key, \
                 payment_code, approved_at, attempts, expires_at, created_at, updated_at) \
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, null, $10, null, null, null, 0, \
                 $11, $12, $13)",
            )
            .bind(o.id)
            .bind(o.user_id)
            .bind(o.status.as_str())
            .bind(o.subtotal)
            .bind(o.discount)
            .bind(o.total)
            .bind(&o.currency)
            .bind(o.coupon_id)
            .bind(&o.coupon_code)
            .bind(o.payment.status.as_str())
            .bind(o.expires_at)
            .bind(o.created_at)
            .bind(o.updated_at)
            .execute(&mut *conn)
            .await?;
            for item in &o.items {
                sqlx::query(
                    "insert into order_items (order_id, reservation_id, product_id, quantity, \
                     unit_price, amount) values ($1, $2, $3, $4, $5, $6)",
                )
                .bind(o.id)
                .bind(item.reservation_id)
                .bind(item.product_id)
                .bind(i64::from(item.quantity))
                .bind(item.unit_price)
                .bind(item.amount)
                .execute(&mut *conn)
                .await?;
            }
            append_history!(conn, o.id, "PLACED", None::<String>, now)?;
            Ok::<_, PlaceError>(())
        })
    }

    async fn order(&self, id: OrderId) -> Result<Option<Order>, sqlx::Error> {
        let sql = concat!("select ", order_columns!(), " from orders where id = $1");
        let row: Option<OrderRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql).bind(id).fetch_optional(pool).await
        })?;
        let Some(row) = row else { return Ok(None) };
        let items: Vec<ItemRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(
                "select order_id, reservation_id, product_id, quantity, unit_price, amount \
                 from order_items where order_id = $1 order by reservation_id",
            )
            .bind(id)
            .fetch_all(pool)
            .await
        })?;
        let items = items.into_iter().map(item_of).collect::<Result<_, _>>()?;
        let tickets = self.tickets(id).await?;
        order_of(row, items, tickets).map(Some)
    }

    async fn list(
        &self,
        user: Option<UserId>,
        status: Option<OrderStatus>,
        page: PageRequest,
    ) -> Result<Vec<Order>, sqlx::Error> {
        let sql = concat!(
            "select ",
            order_columns!(),
            " from orders where ($1 is null or user_id = $1) and ($2 is null or status = $2) \
             and ($3 is null or id > $3) order by id limit $4"
        );
        let rows: Vec<OrderRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql)
                .bind(user)
                .bind(status.map(OrderStatus::as_str))
                .bind(page.after.map(OrderId))
                .bind(page.fetch_limit())
                .fetch_all(pool)
                .await
        })?;
        let mut orders = Vec::with_capacity(rows.len());
        for row in rows {
            let items: Vec<ItemRow> = kernel::read!(&self.db, |pool| {
                sqlx::query_as(
                    "select order_id, reservation_id, product_id, quantity, unit_price, amount \
                     from order_items where order_id = $1 order by reservation_id",
                )
                .bind(row.id)
                .fetch_all(pool)
                .await
            })?;
            debug_assert!(items.iter().all(|i| i.order_id == row.id));
            let items = items.into_iter().map(item_of).collect::<Result<_, _>>()?;
            let tickets = self.tickets(row.id).await?;
            orders.push(order_of(row, items, tickets)?);
        }
        Ok(orders)
    }

    async fn coupon(&self, code: &str, now: Timestamp) -> Result<Option<OrderCoupon>, sqlx::Error> {
        type Row = (
            CouponId,
            UserId,
            String,
            Timestamp,
            Option<OrderId>,
            String,
            i64,
            Option<String>,
        );
        let row: Option<Row> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(
                "select c.id, c.user_id, c.status, c.expires_at, c.order_id, \
                 k.discount_kind, k.discount_value, k.discount_currency \
                 from coupons c join coupon_campaigns k on k.id = c.campaign_id \
                 where c.code = $1",
            )
            .bind(code)
            .fetch_optional(pool)
            .await
        })?;
        let Some((id, user_id, status, expires_at, order_id, kind, value, currency)) = row else {
            return Ok(None);
        };
        let discount = match kind.as_str() {
            "PERCENT" => {
                Discount::Percent(Percent::new(value).map_err(|e| bad_row("coupon percent", e))?)
            }
            _ => Discount::Fixed(Money::new(
                value,
                Currency::parse(currency.as_deref().unwrap_or("KRW"))
                    .map_err(|e| bad_row("coupon currency", e))?,
            )),
        };
        Ok(Some(OrderCoupon {
            id,
            user_id,
            usable: status == "ISSUED" && order_id.is_none() && expires_at > now,
            discount,
        }))
    }

    async fn close_unpaid(
        &self,
        id: OrderId,
        close: Close,
        now: Timestamp,
    ) -> Result<Option<Returned>, sqlx::Error> {
        let Close {
            payment,
            to,
            to_payment,
            event,
            due,
            announce,
        } = close;
        let (new_payment, code) = to_payment.map_or((payment, None), |(p, c)| (p, c));
        let detail = code.clone();
        let (event, to_reservation) = (
            event.to_owned(),
            if to == OrderStatus::Cancelled {
                "RELEASED"
            } else {
                "EXPIRED"
            },
        );
        kernel::write_tx!(&self.db, |conn| {
            let closed = sqlx::query(
                "update orders set status = $2, updated_at = $3, payment_status = $6, \
                 payment_code = coalesce($7, payment_code) \
                 where id = $1 and status = 'PENDING_PAYMENT' and payment_status = $4 \
                 and ($5 is null or expires_at <= $5)",
            )
            .bind(id)
            .bind(to.as_str())
            .bind(now)
            .bind(payment.as_str())
            .bind(due)
            .bind(new_payment.as_str())
            .bind(code)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if closed != 1 {
                return Ok(None);
            }
            let returned: Vec<ReturnedRow> = sqlx::query_as(
                "update reservations set status = $2, updated_at = $3 \
                 where order_id = $1 and status = 'ORDERED' \
                 returning id, product_id, user_id, quantity, status, expires_at, order_id, \
                 created_at, updated_at",
            )
            .bind(id)
            .bind(to_reservation)
            .bind(now)
            .fetch_all(&mut *conn)
            .await?;
            sqlx::query(
                "update coupons set order_id = null, updated_at = $2 \
                 where order_id = $1 and status = 'ISSUED'",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            append_history!(conn, id, &event, detail, now)?;
            for message in &announce {
                bus::enqueue!(conn, message)?;
            }
            returned
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<Vec<Reservation>, _>>()
                .map(Some)
        })
    }

    async fn begin_attempt(
        &self,
        id: OrderId,
        provider: &str,
        payment_key: &str,
        now: Timestamp,
    ) -> Result<Option<u32>, sqlx::Error> {
        let (provider, payment_key) = (provider.to_owned(), payment_key.to_owned());
        let attempts: Option<i64> = kernel::write_tx!(&self.db, |conn| {
            let attempts: Option<i64> = sqlx::query_scalar(
                "update orders set payment_status = 'UNKNOWN', payment_provider = $2, \
                 payment_key = $3, attempts = attempts + 1, updated_at = $4 \
                 where id = $1 and status = 'PENDING_PAYMENT' and payment_status = 'NONE' \
                 and expires_at > $4 returning attempts",
            )
            .bind(id)
            .bind(&provider)
            .bind(&payment_key)
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?;
            if attempts.is_some() {
                append_history!(conn, id, "CHARGE_STARTED", Some(provider.clone()), now)?;
            }
            Ok::<_, sqlx::Error>(attempts)
        })?;
        attempts.map(|n| stored_count("attempts", n)).transpose()
    }

    async fn settle_paid(
        &self,
        id: OrderId,
        payment_key: &str,
        approved_at: Timestamp,
        tickets: &[Ticket],
        announce: &[Envelope],
        now: Timestamp,
    ) -> Result<bool, sqlx::Error> {
        let (payment_key, tickets) = (payment_key.to_owned(), tickets.to_vec());
        let announce = announce.to_vec();
        kernel::write_tx!(&self.db, |conn| {
            let paid = sqlx::query(
                "update orders set status = 'PAID', payment_status = 'DONE', payment_key = $2, \
                 approved_at = $3, updated_at = $4 \
                 where id = $1 and status = 'PENDING_PAYMENT' and payment_status = 'UNKNOWN'",
            )
            .bind(id)
            .bind(&payment_key)
            .bind(approved_at)
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if paid != 1 {
                return Ok(false);
            }
            sqlx::query(
                "update reservations set status = 'SOLD', updated_at = $2 \
                 where order_id = $1 and status = 'ORDERED'",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "update coupons set status = 'USED', updated_at = $2 \
                 where order_id = $1 and status = 'ISSUED'",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            for t in &tickets {
                sqlx::query(
                    "insert into tickets (id, order_id, product_id, user_id, code, status, \
                     valid_from, valid_until, checked_in_at, created_at) \
                     values ($1, $2, $3, $4, $5, $6, $7, $8, null, $9)",
                )
                .bind(t.id)
                .bind(t.order_id)
                .bind(t.product_id)
                .bind(t.user_id)
                .bind(t.code.as_str())
                .bind(t.status.as_str())
                .bind(t.valid_from)
                .bind(t.valid_until)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            }
            append_history!(conn, id, "PAID", Some(payment_key.clone()), now)?;
            for message in &announce {
                bus::enqueue!(conn, message)?;
            }
            Ok::<_, sqlx::Error>(true)
        })
    }

    async fn record_late_refund(
        &self,
        id: OrderId,
        payment_key: &str,
        detail: &str,
        refunded: bool,
        announce: &[Envelope],
        now: Timestamp,
    ) -> Result<(), sqlx::Error> {
        let (payment_key, detail) = (payment_key.to_owned(), detail.to_owned());
        let announce = announce.to_vec();
        kernel::write_tx!(&self.db, |conn| {
            let (payment, refund, refunded_at) = if refunded {
                ("REFUNDED", "REFUNDED", Some(now))
            } else {
                ("DONE", "PENDING", None)
            };
            sqlx::query(
                "update orders set payment_status = $2, payment_key = $3, \
                 refund_amount = total, refund_status = $4, refunded_at = $5, updated_at = $6 \
                 where id = $1",
            )
            .bind(id)
            .bind(payment)
            .bind(&payment_key)
            .bind(refund)
            .bind(refunded_at)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            append_history!(conn, id, "PAID_AFTER_EXPIRY", Some(detail.clone()), now)?;
            for message in &announce {
                bus::enqueue!(conn, message)?;
            }
            Ok::<_, sqlx::Error>(())
        })
    }

    async fn cancel_paid(
        &self,
        id: OrderId,
        announce: &[Envelope],
        now: Timestamp,
    ) -> Result<CancelPaid, sqlx::Error> {
        let announce = announce.to_vec();
        let cancelled = kernel::write_tx!(&self.db, |conn| {
            // First, so that concurrent cancels queue on the order's row.
            let cancelled = sqlx::query(
                "update orders set status = 'CANCELLED', refund_amount = total, \
                 refund_status = 'PENDING', refunded_at = null, updated_at = $2 \
                 where id = $1 and status = 'PAID'",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if cancelled != 1 {
                return Err(CancelAbort::NotPaid);
            }
            let (all, valid): (i64, i64) = sqlx::query_as(
                "select cast(count(*) as bigint), \
                 cast(coalesce(sum(case when status = 'VALID' then 1 else 0 end), 0) as bigint) \
                 from tickets where order_id = $1 and status <> 'VOID'",
            )
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
            if valid != all {
                return Err(CancelAbort::TicketUsed);
            }
            let voided = sqlx::query(
                "update tickets set status = 'VOID' where order_id = $1 and status = 'VALID'",
            )
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if i64::try_from(voided).unwrap_or(i64::MAX) != valid {
                // A check-in won the race between the count and the update.
                return Err(CancelAbort::TicketUsed);
            }
            let returned: Vec<ReturnedRow> = sqlx::query_as(
                "update reservations set status = 'RELEASED', updated_at = $2 \
                 where order_id = $1 and status = 'SOLD' \
                 returning id, product_id, user_id, quantity, status, expires_at, order_id, \
                 created_at, updated_at",
            )
            .bind(id)
            .bind(now)
            .fetch_all(&mut *conn)
            .await?;
            sqlx::query(
                "update coupons set status = 'ISSUED', order_id = null, updated_at = $2 \
                 where order_id = $1 and status = 'USED'",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            append_history!(
                conn,
                id,
                "CANCELLED",
                Some("refund pending".to_owned()),
                now
            )?;
            for message in &announce {
                bus::enqueue!(conn, message)?;
            }
            returned
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<Vec<Reservation>, _>>()
                .map_err(CancelAbort::Database)
        });
        match cancelled {
            Ok(returned) => Ok(CancelPaid::Cancelled(returned)),
            Err(CancelAbort::NotPaid) => Ok(CancelPaid::NotPaid),
            Err(CancelAbort::TicketUsed) => Ok(CancelPaid::TicketUsed),
            Err(CancelAbort::Database(e)) => Err(e),
        }
    }

    async fn complete_refund(
        &self,
        id: OrderId,
        refunded_at: Timestamp,
        announce: &[Envelope],
        now: Timestamp,
    ) -> Result<bool, sqlx::Error> {
        let announce = announce.to_vec();
        kernel::write_tx!(&self.db, |conn| {
            let done = sqlx::query(
                "update orders set payment_status = 'REFUNDED', refund_status = 'REFUNDED', \
                 refunded_at = $2, updated_at = $3 where id = $1 and refund_status = 'PENDING'",
            )
            .bind(id)
            .bind(refunded_at)
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if done != 1 {
                return Ok(false);
            }
            append_history!(conn, id, "REFUNDED", None::<String>, now)?;
            for message in &announce {
                bus::enqueue!(conn, message)?;
            }
            Ok::<_, sqlx::Error>(true)
        })
    }

    async fn unknown_payments(&self, limit: i64) -> Result<Vec<OrderId>, sqlx::Error> {
        kernel::read!(&self.db, |pool| {
            sqlx::query_scalar(
                "select id from orders where status = 'PENDING_PAYMENT' \
                 and payment_status = 'UNKNOWN' order by updated_at limit $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await
        })
    }

    async fn due(&self, now: Timestamp, limit: i64) -> Result<Vec<OrderId>, sqlx::Error> {
        kernel::read!(&self.db, |pool| {
            sqlx::query_scalar(
                "select id from orders where status = 'PENDING_PAYMENT' \
                 and payment_status = 'NONE' and expires_at <= $1 order by expires_at limit $2",
            )
            .bind(now)
            .bind(limit)
            .fetch_all(pool)
            .await
        })
    }

    async fn history(
        &self,
        id: OrderId,
    ) -> Result<Vec<(String, Option<String>, Timestamp)>, sqlx::Error> {
        kernel::read!(&self.db, |pool| {
            sqlx::query_as(
                "select event, detail, at from order_history where order_id = $1 order by seq",
            )
            .bind(id)
            .fetch_all(pool)
            .await
        })
    }
}
