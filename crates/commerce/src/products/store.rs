//! The products table, for both backends. Units taken are counted from the
//! reservations that hold them, so a product row never changes on a sale;
//! the count walks every live unit of the product, so only the reads that
//! show `remaining` ask for it — a hold, an order or a payment trusts the
//! stock gate and reads the plain row.

use async_trait::async_trait;
use kernel::db::{Db, bad_row, stored_count};
use kernel::{Currency, Money, PageRequest, Timestamp};

use super::model::{Product, ProductId, ProductKind};
use kernel::text::Name;

/// What [`ProductStore::update`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Written; `taken` units are held, ordered or sold.
    Updated {
        taken: u64,
    },
    /// The new stock is below the `taken` units; nothing was written.
    StockBelowTaken {
        taken: u64,
    },
    NotFound,
}

#[async_trait]
pub trait ProductStore: Send + Sync {
    async fn create(&self, product: Product) -> Result<(), sqlx::Error>;
    /// The product as stored, without counting what is taken.
    async fn product(&self, id: ProductId) -> Result<Option<Product>, sqlx::Error>;
    /// The product and its units held, ordered or sold.
    async fn counted(&self, id: ProductId) -> Result<Option<(Product, u64)>, sqlx::Error>;
    /// Products in id order, of `kind` if given, each with its units taken.
    async fn list(
        &self,
        kind: Option<ProductKind>,
        page: PageRequest,
    ) -> Result<Vec<(Product, u64)>, sqlx::Error>;
    /// Writes the changed product unless its stock is below the units taken,
    /// counted in the same transaction.
    async fn update(&self, product: Product) -> Result<UpdateOutcome, sqlx::Error>;
}

#[derive(Debug, Clone)]
pub struct SqlProductStore {
    db: Db,
}

impl SqlProductStore {
    #[must_use]
    pub const fn new(db: Db) -> Self {
        Self { db }
    }
}

/// The units a product's live reservations take, as a column named `taken`.
macro_rules! taken_column {
    () => {
        "cast(coalesce((select sum(r.quantity) from reservations r \
         where r.product_id = p.id and r.status in ('HELD', 'ORDERED', 'SOLD')), 0) as bigint) \
         as taken"
    };
}

macro_rules! product_columns {
    () => {
        "p.id, p.name, p.kind, p.price, p.currency, p.stock, p.per_user_limit, p.hold_seconds, \
         p.sale_starts_at, p.sale_ends_at, p.valid_from, p.valid_until, p.created_at, p.updated_at"
    };
}

#[derive(sqlx::FromRow)]
struct ProductRow {
    id: ProductId,
    name: String,
    kind: String,
    price: i64,
    currency: String,
    stock: Option<i64>,
    per_user_limit: Option<i64>,
    hold_seconds: i64,
    sale_starts_at: Timestamp,
    sale_ends_at: Timestamp,
    valid_from: Option<Timestamp>,
    valid_until: Option<Timestamp>,
    created_at: Timestamp,
    updated_at: Timestamp,
}

/// A product row with its `taken` column.
#[derive(sqlx::FromRow)]
struct CountedRow {
    #[sqlx(flatten)]
    product: ProductRow,
    taken: i64,
}

impl TryFrom<ProductRow> for Product {
    type Error = sqlx::Error;
    fn try_from(row: ProductRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.id,
            name: Name::parse(&row.name).map_err(|e| bad_row("product name", e))?,
            kind: row.kind.parse().map_err(|e| bad_row("product kind", e))?,
            price: Money::new(
                row.price,
                Currency::parse(&row.currency).map_err(|e| bad_row("currency", e))?,
            ),
            stock: row.stock.map(|s| stored_count("stock", s)).transpose()?,
            per_user_limit: row
                .per_user_limit
                .map(|n| stored_count("per_user_limit", n))
                .transpose()?,
            hold_seconds: stored_count("hold_seconds", row.hold_seconds)?,
            sale_starts_at: row.sale_starts_at,
            sale_ends_at: row.sale_ends_at,
            valid_from: row.valid_from,
            valid_until: row.valid_until,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

impl TryFrom<CountedRow> for (Product, u64) {
    type Error = sqlx::Error;
    fn try_from(row: CountedRow) -> Result<Self, Self::Error> {
        let taken = u64::try_from(row.taken).map_err(|e| bad_row("units taken", e))?;
        Ok((row.product.try_into()?, taken))
    }
}

const SELECT_ONE: &str = concat!(
    "select ",
    product_columns!(),
    " from products p where p.id = $1"
);

const SELECT_COUNTED: &str = concat!(
    "select ",
    product_columns!(),
    ", ",
    taken_column!(),
    " from products p where p.id = $1"
);

const TAKEN: &str = concat!(
    "select ",
    taken_column!(),
    " from products p where p.id = $1"
);

#[async_trait]
impl ProductStore for SqlProductStore {
    async fn create(&self, product: Product) -> Result<(), sqlx::Error> {
        kernel::write_tx!(&self.db, |conn| {
            sqlx::query(
                "insert into products (id, name, kind, price, currency, stock, per_user_limit, \
                 hold_seconds, sale_starts_at, sale_ends_at, valid_from, valid_until, \
                 created_at, updated_at) \
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(product.id)
            .bind(product.name.as_str())
            .bind(product.kind.as_str())
            .bind(product.price.amount)
            .bind(product.price.currency.as_str())
            .bind(product.stock.map(i64::from))
            .bind(product.per_user_limit.map(i64::from))
            .bind(i64::from(product.hold_seconds))
            .bind(product.sale_starts_at)
            .bind(product.sale_ends_at)
            .bind(product.valid_from)
            .bind(product.valid_until)
            .bind(product.created_at)
            .bind(product.updated_at)
            .execute(&mut *conn)
            .await
            .map(drop)
        })
    }

    async fn product(&self, id: ProductId) -> Result<Option<Product>, sqlx::Error> {
        let row: Option<ProductRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(SELECT_ONE)
                .bind(id)
                .fetch_optional(pool)
                .await
        })?;
        row.map(TryInto::try_into).transpose()
    }

    async fn counted(&self, id: ProductId) -> Result<Option<(Product, u64)>, sqlx::Error> {
        let row: Option<CountedRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(SELECT_COUNTED)
                .bind(id)
                .fetch_optional(pool)
                .await
        })?;
        row.map(TryInto::try_into).transpose()
    }

    async fn list(
        &self,
        kind: Option<ProductKind>,
        page: PageRequest,
    ) -> Result<Vec<(Product, u64)>, sqlx::Error> {
        let sql = concat!(
            "select ",
            product_columns!(),
            ", ",
            taken_column!(),
            " from products p where ($1 is null or p.id > $1) and ($2 is null or p.kind = $2) \
             order by p.id limit $3"
        );
        let rows: Vec<CountedRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql)
                .bind(page.after.map(ProductId))
                .bind(kind.map(ProductKind::as_str))
                .bind(page.fetch_limit())
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn update(&self, product: Product) -> Result<UpdateOutcome, sqlx::Error> {
        kernel::write_tx!(&self.db, |conn, backend| {
            // PostgreSQL: lock the row so a concurrent patch waits; SQLite's
            // one writer already serialises them.
            let lock = match backend {
                kernel::Backend::Postgres => "select id from products where id = $1 for update",
                kernel::Backend::Sqlite => "select id from products where id = $1",
            };
            let found: Option<ProductId> = sqlx::query_scalar(lock)
                .bind(product.id)
                .fetch_optional(&mut *conn)
                .await?;
            if found.is_none() {
                return Ok(UpdateOutcome::NotFound);
            }
            let taken: i64 = sqlx::query_scalar(TAKEN)
                .bind(product.id)
                .fetch_one(&mut *conn)
                .await?;
            let taken = u64::try_from(taken).map_err(|e| bad_row("units taken", e))?;
            if product.stock.is_some_and(|stock| u64::from(stock) < taken) {
                return Ok(UpdateOutcome::StockBelowTaken { taken });
            }
            sqlx::query(
                "update products set name = $2, price = $3, stock = $4, per_user_limit = $5, \
                 hold_seconds = $6, sale_starts_at = $7, sale_ends_at = $8, updated_at = $9 \
                 where id = $1",
            )
            .bind(product.id)
            .bind(product.name.as_str())
            .bind(product.price.amount)
            .bind(product.stock.map(i64::from))
            .bind(product.per_user_limit.map(i64::from))
            .bind(i64::from(product.hold_seconds))
            .bind(product.sale_starts_at)
            .bind(product.sale_ends_at)
            .bind(product.updated_at)
            .execute(&mut *conn)
            .await?;
            Ok(UpdateOutcome::Updated { taken })
        })
    }
}
