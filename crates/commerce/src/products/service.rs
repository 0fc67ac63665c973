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
}

impl std::fmt::Debug for ProductService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProductService").finish_non_exhaustive()
    }
}

impl ProductService {
    #[must_use]
    pub fn new(store: Arc<dyn ProductStore>, clock: SharedClock) -> Self {
        Self { store, clock }
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
            .product(id)
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
        let (product, _) = self
            .store
            .product(id)
            .await?
            .ok_or(CommerceError::ProductNotFound)?;
        let next = product
            .patched(patch, now)
            .map_err(CommerceError::Invalid)?;
        match self.store.update(next.clone()).await? {
            UpdateOutcome::Updated { taken } => Ok(ProductView::new(next, taken, now)),
            UpdateOutcome::StockBelowTaken { taken } => {
                Err(CommerceError::StockBelowTaken { taken })
            }
            UpdateOutcome::NotFound => Err(CommerceError::ProductNotFound),
        }
    }
}
