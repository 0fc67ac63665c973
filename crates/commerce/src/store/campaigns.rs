//! Coupon campaigns: created once, never changed, read by id and listed.

use async_trait::async_trait;
use kernel::db::{bad_row, stored_count};
use kernel::text::Name;
use kernel::{PageRequest, Timestamp};

use super::SqlCouponStore;
use crate::model::{Campaign, CouponCampaignId, Discount, DiscountSpec, Schedule};

#[async_trait]
pub trait CampaignStore: Send + Sync {
    async fn create_campaign(&self, campaign: Campaign) -> Result<(), sqlx::Error>;
    async fn campaign(&self, id: CouponCampaignId) -> Result<Option<Campaign>, sqlx::Error>;
    /// Campaigns in id order.
    async fn list_campaigns(&self, page: PageRequest) -> Result<Vec<Campaign>, sqlx::Error>;
    /// Every campaign's id, in id order.
    async fn campaign_ids(&self) -> Result<Vec<CouponCampaignId>, sqlx::Error>;
}

/// The columns a [`CampaignRow`] reads, for `concat!` (sqlx takes only static SQL).
macro_rules! campaign_columns {
    () => {
        "id, name, discount_kind, discount_value, discount_currency, total_quantity, \
         per_user_limit, issue_starts_at, issue_ends_at, valid_until, created_at"
    };
}

#[derive(sqlx::FromRow)]
struct CampaignRow {
    id: CouponCampaignId,
    name: String,
    discount_kind: String,
    discount_value: i64,
    discount_currency: Option<String>,
    total_quantity: i64,
    per_user_limit: i64,
    issue_starts_at: Timestamp,
    issue_ends_at: Timestamp,
    valid_until: Timestamp,
    created_at: Timestamp,
}

impl TryFrom<CampaignRow> for Campaign {
    type Error = sqlx::Error;
    fn try_from(row: CampaignRow) -> Result<Self, Self::Error> {
        let discount = Discount::parse(&DiscountSpec {
            kind: row.discount_kind,
            value: row.discount_value,
            currency: row.discount_currency,
        })
        .map_err(|errors| {
            let reasons: Vec<String> = errors
                .into_iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect();
            bad_row("discount", reasons.join("; "))
        })?;
        Ok(Self {
            id: row.id,
            name: Name::parse(&row.name).map_err(|e| bad_row("campaign name", e))?,
            discount,
            total_quantity: stored_count("total_quantity", row.total_quantity)?,
            per_user_limit: stored_count("per_user_limit", row.per_user_limit)?,
            schedule: Schedule::new(row.issue_starts_at, row.issue_ends_at, row.valid_until)
                .map_err(|e| bad_row("campaign schedule", e))?,
            created_at: row.created_at,
        })
    }
}

#[async_trait]
impl CampaignStore for SqlCouponStore {
    async fn create_campaign(&self, campaign: Campaign) -> Result<(), sqlx::Error> {
        let discount = DiscountSpec::from(campaign.discount);
        kernel::write_tx!(&self.db, |conn| {
            sqlx::query(concat!(
                "insert into coupon_campaigns (",
                campaign_columns!(),
                ") values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            ))
            .bind(campaign.id)
            .bind(campaign.name.as_str())
            .bind(discount.kind)
            .bind(discount.value)
            .bind(discount.currency)
            .bind(i64::from(campaign.total_quantity))
            .bind(i64::from(campaign.per_user_limit))
            .bind(campaign.schedule.issue_starts_at())
            .bind(campaign.schedule.issue_ends_at())
            .bind(campaign.schedule.valid_until())
            .bind(campaign.created_at)
            .execute(&mut *conn)
            .await
            .map(drop)
        })
    }

    async fn campaign(&self, id: CouponCampaignId) -> Result<Option<Campaign>, sqlx::Error> {
        let sql = concat!(
            "select ",
            campaign_columns!(),
            " from coupon_campaigns where id = $1"
        );
        let row: Option<CampaignRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql).bind(id).fetch_optional(pool).await
        })?;
        row.map(Campaign::try_from).transpose()
    }

    async fn list_campaigns(&self, page: PageRequest) -> Result<Vec<Campaign>, sqlx::Error> {
        let sql = concat!(
            "select ",
            campaign_columns!(),
            " from coupon_campaigns where ($1 is null or id > $1) order by id limit $2"
        );
        let rows: Vec<CampaignRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql)
                .bind(page.after.map(CouponCampaignId))
                .bind(page.fetch_limit())
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter().map(Campaign::try_from).collect()
    }

    async fn campaign_ids(&self) -> Result<Vec<CouponCampaignId>, sqlx::Error> {
        kernel::read!(&self.db, |pool| {
            sqlx::query_scalar("select id from coupon_campaigns order by id")
                .fetch_all(pool)
                .await
        })
    }
}
