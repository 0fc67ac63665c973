//! Campaigns as pools of the stock gate. Each campaign's public stock is one
//! pool, `coupon:<campaign id>`, whose counters the database rebuilds: units
//! taken are the campaign's public coupons, counted per user. Reward grants
//! are not in the pool (docs/adr/0010).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use gate::{Holder, Limits, PoolId, Snapshot, StockLoader};
use kernel::UserId;

use crate::model::{Campaign, CouponCampaignId, CouponId};
use crate::store::CouponStore;

const POOL_PREFIX: &str = "coupon:";

/// The gate pool of a campaign's public stock.
#[must_use]
pub fn campaign_pool(id: CouponCampaignId) -> PoolId {
    PoolId::new(format!("{POOL_PREFIX}{id}"))
}

/// The campaign whose pool this is, if it is a coupon pool.
#[must_use]
pub fn pool_campaign(pool: &PoolId) -> Option<CouponCampaignId> {
    pool.as_str().strip_prefix(POOL_PREFIX)?.parse().ok()
}

/// A campaign's public stock as the database records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignStock {
    pub total_quantity: u32,
    pub per_user_limit: u32,
    /// Public coupons each user holds; users holding none are left out.
    /// Reward grants are not counted.
    pub by_user: HashMap<UserId, u32>,
}

impl CampaignStock {
    /// A campaign nobody has a coupon of yet.
    #[must_use]
    pub fn untouched(campaign: &Campaign) -> Self {
        Self {
            total_quantity: campaign.total_quantity,
            per_user_limit: campaign.per_user_limit,
            by_user: HashMap::new(),
        }
    }

    /// Public coupons issued so far.
    #[must_use]
    pub fn issued(&self) -> u64 {
        self.by_user.values().map(|n| u64::from(*n)).sum()
    }

    #[must_use]
    pub fn limits(&self) -> Limits {
        Limits {
            stock: Some(u64::from(self.total_quantity)),
            per_user: Some(self.per_user_limit),
        }
    }

    /// The counters, each user named by [`holder`].
    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            taken: self.issued(),
            by_user: self
                .by_user
                .iter()
                .map(|(user, held)| (Holder::from(*user).into_string(), *held))
                .collect(),
        }
    }
}

/// Loads coupon pools for the stock gate from the coupon tables. The server
/// builds its gate with it; reconciliation compares what
/// [`StockLoader::load`] reads with the gate's counters, for every pool of
/// [`CouponService::stock_pools`](crate::CouponService::stock_pools).
pub struct CampaignStockLoader {
    store: Arc<dyn CouponStore>,
}

impl CampaignStockLoader {
    #[must_use]
    pub fn new(store: Arc<dyn CouponStore>) -> Self {
        Self { store }
    }
}

impl std::fmt::Debug for CampaignStockLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CampaignStockLoader")
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl StockLoader for CampaignStockLoader {
    fn owns(&self, pool: &PoolId) -> bool {
        pool.as_str().starts_with(POOL_PREFIX)
    }

    async fn load(&self, pool: &PoolId) -> Result<(Limits, Snapshot), String> {
        let id = pool_campaign(pool).ok_or_else(|| format!("{pool} is not a coupon pool"))?;
        let stock = self
            .store
            .stock(id)
            .await
            .map_err(|e| format!("cannot read coupon campaign {id}: {e}"))?
            .ok_or_else(|| format!("no coupon campaign {id}"))?;
        Ok((stock.limits(), stock.snapshot()))
    }

    /// A coupon claim is durable once its coupon row is written.
    async fn claimed(&self, pool: &PoolId, claim: &str) -> Result<bool, String> {
        if pool_campaign(pool).is_none() {
            return Err(format!("{pool} is not a coupon pool"));
        }
        let id: CouponId = claim
            .parse()
            .map_err(|_| format!("claim {claim} of {pool} is not a coupon id"))?;
        self.store
            .coupon(id)
            .await
            .map(|coupon| coupon.is_some())
            .map_err(|e| format!("cannot read coupon {id}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_campaigns_pool_names_it_and_nothing_else_reads_as_one() {
        let id = CouponCampaignId::new();
        let pool = campaign_pool(id);

        assert_eq!(pool.as_str(), format!("coupon:{id}"));
        assert_eq!(pool_campaign(&pool), Some(id));
        assert_eq!(pool_campaign(&PoolId::new(format!("reward:{id}"))), None);
        assert_eq!(pool_campaign(&PoolId::new("coupon:not-a-uuid")), None);
    }

    #[test]
    fn the_snapshot_counts_every_users_public_coupons() {
        let (ann, bob) = (UserId::new(), UserId::new());
        let stock = CampaignStock {
            total_quantity: 10,
            per_user_limit: 2,
            by_user: HashMap::from([(ann, 2), (bob, 1)]),
        };

        assert_eq!(
            stock.limits(),
            Limits {
                stock: Some(10),
                per_user: Some(2)
            }
        );
        let snapshot = stock.snapshot();
        assert_eq!(snapshot.taken, 3);
        assert_eq!(snapshot.by_user.get(&ann.to_string()), Some(&2));
        assert_eq!(snapshot.by_user.get(&bob.to_string()), Some(&1));
    }
}
