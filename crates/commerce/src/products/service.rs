//! The product use cases. `remaining` is read live from the reservations
//! on every read, so `remaining_as_of` is the moment of the read.

use std::sync::Arc;

use kernel::auth::Staff;
use kernel::{Page, PageRequest, SharedClock};

use super::model::{NewProduct, Product, ProductId, ProductKind, ProductPatch, ProductView};
use super::store::{ProductStore, UpdateOutcome};
use crate::error::CommerceError;

pub struct ProductService {
    store: Arc<dyn ProductStore>,
    clock: SharedClock,
    /// The gate holding the products' pools, told when limits change.
    gate: Option<Arc<dyn gate::StockGate>>,
}

impl std::fmt::Debug for ProductService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProductService").finish_non_exhaustive()
    }
}

impl ProductService {
    #[must_use]
    pub fn new(store: Arc<dyn ProductStore>, clock: SharedClock) -> Self {
        Self {
            store,
            clock,
            gate: None,
        }
    }

    /// Tells `gate` (the reservations' gate) when a product's stock or
    /// per-user limit changes, so it reloads the pool from the database.
    #[must_use]
    pub fn with_gate(mut self, gate: Arc<dyn gate::StockGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Creates a product with its whole stock remaining.
    #[tracing::instrument(name = "products.create", skip_all)]
    pub async fn create(
        &self,
        _: &Staff,
        request: &NewProduct,
    ) -> Result<ProductView, CommerceError> {
        let now = self.clock.now();
        let product =
            Product::new(ProductId::new(), request, now).map_err(CommerceError::Invalid)?;
        self.store.create(product.clone()).await?;
        Ok(ProductView::new(product, 0, now))
    }

    /// One product with its live `remaining`.
    #[tracing::instrument(name = "products.product", skip_all)]
    pub async fn product(&self, id: ProductId) -> Result<ProductView, CommerceError> {
        let (product, taken) = self
            .store
            .counted(id)
            .await?
            .ok_or(CommerceError::ProductNotFound)?;
        Ok(ProductView::new(product, taken, self.clock.now()))
    }

    /// Products in id order, of `kind` if given.
    #[tracing::instrument(name = "products.list", skip_all)]
    pub async fn list(
        &self,
        kind: Option<ProductKind>,
        page: PageRequest,
    ) -> Result<Page<ProductView>, CommerceError> {
        let now = self.clock.now();
        let rows = self.store.list(kind, page).await?;
        Ok(Page::from_rows(rows, page, "products", |(p, _)| p.id.0)
            .map(|(product, taken)| ProductView::new(product, taken, now)))
    }

    /// Changes a product; a stock below the units held, ordered or sold is
    /// refused and nothing changes.
    #[tracing::instrument(name = "products.update", skip_all)]
    pub async fn update(
        &self,
        _: &Staff,
        id: ProductId,
        patch: &ProductPatch,
    ) -> Result<ProductView, CommerceError> {
        let now = self.clock.now();
        let product = self
            .store
            .product(id)
            .await?
            .ok_or(CommerceError::ProductNotFound)?;
        let next = product
            .patched(patch, now)
            .map_err(CommerceError::Invalid)?;
        match self.store.update(next.clone()).await? {
            UpdateOutcome::Updated { taken } => {
                let limits_changed =
                    (next.stock, next.per_user_limit) != (product.stock, product.per_user_limit);
                if limits_changed && let Some(gate) = &self.gate {
                    // The pool reloads its limits and counters on next use.
                    // Not fatal: reconciliation repairs a gate that missed it.
                    let pool = crate::reservations::product_pool(id);
                    if let Err(e) = gate.forget(&pool).await {
                        tracing::warn!(%pool, error = %e, "a product's new limits were not told to the stock gate");
                    }
                }
                Ok(ProductView::new(next, taken, now))
            }
            UpdateOutcome::StockBelowTaken { taken } => {
                Err(CommerceError::StockBelowTaken { taken })
            }
            UpdateOutcome::NotFound => Err(CommerceError::ProductNotFound),
        }
    }
}
