//! Products as pools of the stock gate: `product:<product id>`, whose
//! counters the database rebuilds from the reservations that take units
//! (`HELD`, `ORDERED`, `SOLD`), per user. A hold's lease is named by its
//! reservation id.

use std::sync::Arc;

use async_trait::async_trait;
use gate::{Holder, Limits, PoolId, Snapshot, StockLoader};

use super::model::ReservationId;
use super::store::{ProductStock, ReservationStore};
use crate::products::ProductId;

const POOL_PREFIX: &str = "product:";

/// The gate pool of a product's units.
#[must_use]
pub fn product_pool(id: ProductId) -> PoolId {
    PoolId::new(format!("{POOL_PREFIX}{id}"))
}

/// The product whose pool this is, if it is a product pool.
#[must_use]
pub fn pool_product(pool: &PoolId) -> Option<ProductId> {
    pool.as_str().strip_prefix(POOL_PREFIX)?.parse().ok()
}

impl ProductStock {
    #[must_use]
    pub fn limits(&self) -> Limits {
        Limits {
            stock: self.stock.map(u64::from),
            per_user: self.per_user_limit,
        }
    }

    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            taken: self.by_user.iter().map(|(_, n)| *n).sum(),
            by_user: self
                .by_user
                .iter()
                .map(|(user, n)| {
                    (
                        Holder::from(*user).into_string(),
                        u32::try_from(*n).unwrap_or(u32::MAX),
                    )
                })
                .collect(),
        }
    }
}

/// Loads product pools for the stock gate from the reservations table.
pub struct ProductStockLoader {
    store: Arc<dyn ReservationStore>,
}

impl ProductStockLoader {
    #[must_use]
    pub fn new(store: Arc<dyn ReservationStore>) -> Self {
        Self { store }
    }
}

impl std::fmt::Debug for ProductStockLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProductStockLoader").finish_non_exhaustive()
    }
}

#[async_trait]
impl StockLoader for ProductStockLoader {
    fn owns(&self, pool: &PoolId) -> bool {
        pool.as_str().starts_with(POOL_PREFIX)
    }

    async fn load(&self, pool: &PoolId) -> Result<(Limits, Snapshot), String> {
        let id = pool_product(pool).ok_or_else(|| format!("{pool} is not a product pool"))?;
        let stock = self
            .store
            .stock(id)
            .await
            .map_err(|e| format!("cannot read product {id}: {e}"))?
            .ok_or_else(|| format!("no product {id}"))?;
        Ok((stock.limits(), stock.snapshot()))
    }

    /// A hold's claim is durable once its reservation row is written.
    async fn claimed(&self, pool: &PoolId, claim: &str) -> Result<bool, String> {
        if pool_product(pool).is_none() {
            return Err(format!("{pool} is not a product pool"));
        }
        let id: ReservationId = claim
            .parse()
            .map_err(|_| format!("claim {claim} of {pool} is not a reservation id"))?;
        self.store
            .reservation(id)
            .await
            .map(|r| r.is_some())
            .map_err(|e| format!("cannot read reservation {id}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernel::UserId;

    #[test]
    fn a_products_pool_names_it_and_nothing_else_reads_as_one() {
        let id = ProductId::new();
        assert_eq!(pool_product(&product_pool(id)), Some(id));
        assert_eq!(pool_product(&PoolId::new(format!("coupon:{id}"))), None);
    }

    #[test]
    fn the_snapshot_counts_every_users_units() {
        let (ann, bob) = (UserId::new(), UserId::new());
        let stock = ProductStock {
            stock: Some(10),
            per_user_limit: Some(4),
            by_user: vec![(ann, 3), (bob, 1)],
        };
        let snapshot = stock.snapshot();
        assert_eq!(snapshot.taken, 4);
        assert_eq!(snapshot.by_user.get(&ann.to_string()), Some(&3));
        assert_eq!(
            stock.limits(),
            Limits {
                stock: Some(10),
                per_user: Some(4)
            }
        );
    }
}
