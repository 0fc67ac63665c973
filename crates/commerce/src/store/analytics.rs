//! Issues per campaign, for the analytics page.

use async_trait::async_trait;
use kernel::db::{bad_row, stored_count};

use super::SqlCouponStore;
use crate::model::{CampaignIssues, CouponCampaignId};

#[async_trait]
pub trait CampaignAnalyticsStore: Send + Sync {
    /// The `limit` most recent campaigns (newest first) with their coupons
    /// issued and granted.
    async fn issues_per_campaign(&self, limit: i64) -> Result<Vec<CampaignIssues>, sqlx::Error>;
}

/// Campaign ids are time-ordered: the newest first. Counted through the
/// `campaign_id` index, per campaign listed; `count` of a column skips its
/// nulls, so a campaign without coupons (one joined row of nulls) counts 0.
const ISSUES_PER_CAMPAIGN: &str = "select c.id, c.name, c.total_quantity, \
     count(k.id) - count(k.grant_id) as issued, count(k.grant_id) as granted \
     from (select id, name, total_quantity from coupon_campaigns order by id desc limit $1) c \
     left join coupons k on k.campaign_id = c.id \
     group by c.id, c.name, c.total_quantity \
     order by c.id desc";

#[async_trait]
impl CampaignAnalyticsStore for SqlCouponStore {
    async fn issues_per_campaign(&self, limit: i64) -> Result<Vec<CampaignIssues>, sqlx::Error> {
        let rows: Vec<(CouponCampaignId, String, i64, i64, i64)> =
            kernel::read!(&self.db, |pool| {
                sqlx::query_as(ISSUES_PER_CAMPAIGN)
                    .bind(limit)
                    .fetch_all(pool)
                    .await
            })?;
        rows.into_iter()
            .map(|(id, name, total, issued, granted)| {
                let count = |what, n: i64| u64::try_from(n).map_err(|e| bad_row(what, e));
                Ok(CampaignIssues::new(
                    id,
                    name,
                    stored_count("total_quantity", total)?,
                    count("issued", issued)?,
                    count("granted", granted)?,
                ))
            })
            .collect()
    }
}
