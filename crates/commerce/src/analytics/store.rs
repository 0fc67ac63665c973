//! Read-only aggregates over commerce's tables, for both backends. Status
//! names are bound from the model's enums, never spelled in the SQL.

use async_trait::async_trait;
use kernel::db::Db;
use kernel::{Bucket, Period, Timestamp};
use sqlx::AssertSqlSafe;

use kernel::UserId;

use super::model::{OpenIssues, OpenOrder, OrderDayCount, ProductSales, TimeCount};
use crate::model::OrderId;
use crate::orders::{OrderStatus, PaymentStatus};
use crate::products::ProductId;

/// Products listed in the sales, highest revenue first.
const PRODUCTS_LISTED: i64 = 100;

/// A cancelled order's refund while its money has not gone back (the refund
/// retry of the outbox marks it so).
pub const REFUND_PENDING: &str = "PENDING";

#[async_trait]
pub trait AnalyticsStore: Send + Sync {
    /// Public coupon issues (grants left out) in the period, per bucket.
    async fn coupons_issued(
        &self,
        period: Period,
        bucket: Bucket,
    ) -> Result<Vec<TimeCount>, sqlx::Error>;
    /// Units and amounts of the orders paid in the period, per product.
    async fn sales_per_product(&self, period: Period) -> Result<Vec<ProductSales>, sqlx::Error>;
    /// Orders placed in the period per UTC day and current status.
    async fn orders_per_day(&self, period: Period) -> Result<Vec<OrderDayCount>, sqlx::Error>;
    async fn open_issues(&self) -> Result<OpenIssues, sqlx::Error>;
    /// The orders [`Self::open_issues`] counts, longest waiting first, at
    /// most `limit`.
    async fn open_orders(&self, limit: i64) -> Result<Vec<OpenOrder>, sqlx::Error>;
}

#[derive(Debug, Clone)]
pub struct SqlAnalyticsStore {
    db: Db,
}

impl SqlAnalyticsStore {
    #[must_use]
    pub const fn new(db: Db) -> Self {
        Self { db }
    }
}

const SALES_PER_PRODUCT: &str = "select i.product_id, p.name, p.currency, \
     cast(sum(i.quantity) as bigint), cast(sum(i.amount) as bigint), \
     cast(coalesce(sum(case when o.payment_status = $3 then i.quantity end), 0) as bigint), \
     cast(coalesce(sum(case when o.payment_status = $3 then i.amount end), 0) as bigint) \
     from order_items i join orders o on o.id = i.order_id \
     join products p on p.id = i.product_id \
     where o.approved_at >= $1 and o.approved_at < $2 \
     group by i.product_id, p.name, p.currency \
     order by 5 desc, i.product_id limit $4";

const OPEN_ISSUES: &str = "select \
     (select count(*) from orders where status = $1 and payment_status = $2), \
     (select min(updated_at) from orders where status = $1 and payment_status = $2), \
     (select count(*) from orders where refund_status = $3), \
     (select min(updated_at) from orders where refund_status = $3)";

const OPEN_ORDERS: &str = "select id, user_id, total, currency, payment_status = $2, updated_at \
     from orders where (status = $1 and payment_status = $2) or refund_status = $3 \
     order by updated_at, id limit $4";

type SalesRow = (ProductId, String, String, i64, i64, i64, i64);

#[async_trait]
impl AnalyticsStore for SqlAnalyticsStore {
    async fn coupons_issued(
        &self,
        period: Period,
        bucket: Bucket,
    ) -> Result<Vec<TimeCount>, sqlx::Error> {
        let key = bucket.key_sql(self.db.backend(), "issued_at");
        let sql = format!(
            "select {key}, count(*) from coupons where grant_id is null \
             and issued_at >= $1 and issued_at < $2 group by 1 order by 1"
        );
        let rows: Vec<(String, i64)> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(AssertSqlSafe(sql.clone()))
                .bind(period.from)
                .bind(period.to)
                .fetch_all(pool)
                .await
        })?;
        Ok(rows
            .into_iter()
            .map(|(key, count)| TimeCount {
                at: bucket.start_of(&key),
                count,
            })
            .collect())
    }

    async fn sales_per_product(&self, period: Period) -> Result<Vec<ProductSales>, sqlx::Error> {
        let rows: Vec<SalesRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(SALES_PER_PRODUCT)
                .bind(period.from)
                .bind(period.to)
                .bind(PaymentStatus::Refunded.as_str())
                .bind(PRODUCTS_LISTED)
                .fetch_all(pool)
                .await
        })?;
        Ok(rows
            .into_iter()
            .map(
                |(product_id, name, currency, units_sold, revenue, units_refunded, refunded)| {
                    ProductSales {
                        product_id,
                        name,
                        currency,
                        units_sold,
                        revenue,
                        units_refunded,
                        refunded,
                    }
                },
            )
            .collect())
    }

    async fn orders_per_day(&self, period: Period) -> Result<Vec<OrderDayCount>, sqlx::Error> {
        let day = Bucket::Day.key_sql(self.db.backend(), "created_at");
        let sql = format!(
            "select {day}, status, count(*) from orders \
             where created_at >= $1 and created_at < $2 group by 1, 2 order by 1, 2"
        );
        let rows: Vec<(String, String, i64)> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(AssertSqlSafe(sql.clone()))
                .bind(period.from)
                .bind(period.to)
                .fetch_all(pool)
                .await
        })?;
        Ok(rows
            .into_iter()
            .map(|(day, status, count)| OrderDayCount { day, status, count })
            .collect())
    }

    async fn open_issues(&self) -> Result<OpenIssues, sqlx::Error> {
        let row: (i64, Option<Timestamp>, i64, Option<Timestamp>) =
            kernel::read!(&self.db, |pool| {
                sqlx::query_as(OPEN_ISSUES)
                    .bind(OrderStatus::PendingPayment.as_str())
                    .bind(PaymentStatus::Unknown.as_str())
                    .bind(REFUND_PENDING)
                    .fetch_one(pool)
                    .await
            })?;
        Ok(OpenIssues {
            unknown_payments: row.0,
            oldest_unknown_payment: row.1,
            pending_refunds: row.2,
            oldest_pending_refund: row.3,
        })
    }

    async fn open_orders(&self, limit: i64) -> Result<Vec<OpenOrder>, sqlx::Error> {
        let rows: Vec<(OrderId, UserId, i64, String, bool, Timestamp)> =
            kernel::read!(&self.db, |pool| {
                sqlx::query_as(OPEN_ORDERS)
                    .bind(OrderStatus::PendingPayment.as_str())
                    .bind(PaymentStatus::Unknown.as_str())
                    .bind(REFUND_PENDING)
                    .bind(limit)
                    .fetch_all(pool)
                    .await
            })?;
        Ok(rows
            .into_iter()
            .map(
                |(order_id, user_id, total, currency, unknown_payment, since)| OpenOrder {
                    order_id,
                    user_id,
                    total,
                    currency,
                    unknown_payment,
                    since,
                },
            )
            .collect())
    }
}
