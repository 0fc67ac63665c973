//! Users' coupons as stored: one by id, a user's listed, and a reward
//! grant's, written once per grant outside the public stock.

use async_trait::async_trait;
use kernel::db::bad_row;
use kernel::{PageRequest, Timestamp, UserId};

use super::SqlCouponStore;
use crate::model::{Coupon, CouponCampaignId, CouponCode, CouponId, GrantId};

#[async_trait]
pub trait UserCouponStore: Send + Sync {
    /// Writes a reward grant's coupon unless the grant already has one, and
    /// returns the grant's coupon either way; `None` if the campaign does not
    /// exist. Grants are outside the public stock and the per-user limit.
    async fn grant(&self, grant: GrantId, coupon: Coupon) -> Result<Option<Coupon>, sqlx::Error>;
    /// A user's coupons in id order, as stored (not yet read as of now).
    async fn coupons_of(&self, user: UserId, page: PageRequest)
    -> Result<Vec<Coupon>, sqlx::Error>;
    /// The coupon, as stored, if it is written (the stock gate's claim is
    /// durable, or a keyed issue's first attempt made it).
    async fn coupon(&self, id: CouponId) -> Result<Option<Coupon>, sqlx::Error>;
}

/// The columns a [`CouponRow`] reads.
macro_rules! coupon_columns {
    () => {
        "id, code, campaign_id, user_id, status, issued_at, expires_at"
    };
}

#[derive(sqlx::FromRow)]
struct CouponRow {
    id: CouponId,
    code: String,
    campaign_id: CouponCampaignId,
    user_id: UserId,
    status: String,
    issued_at: Timestamp,
    expires_at: Timestamp,
}

impl TryFrom<CouponRow> for Coupon {
    type Error = sqlx::Error;
    fn try_from(row: CouponRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.id,
            code: CouponCode::parse(&row.code).map_err(|e| bad_row("coupon code", e))?,
            campaign_id: row.campaign_id,
            user_id: row.user_id,
            status: row
                .status
                .parse()
                .map_err(|e| bad_row("coupon status", e))?,
            issued_at: row.issued_at,
            expires_at: row.expires_at,
        })
    }
}

const GRANT: &str = "insert into coupons (id, code, campaign_id, user_id, grant_id, status, \
     issued_at, expires_at, updated_at) \
     select $1, $2, c.id, $3, $4, $5, $6, $7, $6 from coupon_campaigns c where c.id = $8 \
     on conflict (grant_id) where grant_id is not null do nothing";

const COUPON_BY_GRANT: &str = concat!(
    "select ",
    coupon_columns!(),
    " from coupons where grant_id = $1"
);

#[async_trait]
impl UserCouponStore for SqlCouponStore {
    async fn grant(&self, grant: GrantId, coupon: Coupon) -> Result<Option<Coupon>, sqlx::Error> {
        kernel::write_tx!(&self.db, |conn| {
            sqlx::query(GRANT)
                .bind(coupon.id)
                .bind(coupon.code.as_str())
                .bind(coupon.user_id)
                .bind(grant)
                .bind(coupon.status.as_str())
                .bind(coupon.issued_at)
                .bind(coupon.expires_at)
                .bind(coupon.campaign_id)
                .execute(&mut *conn)
                .await?;
            let row: Option<CouponRow> = sqlx::query_as(COUPON_BY_GRANT)
                .bind(grant)
                .fetch_optional(&mut *conn)
                .await?;
            row.map(Coupon::try_from).transpose()
        })
    }

    async fn coupons_of(
        &self,
        user: UserId,
        page: PageRequest,
    ) -> Result<Vec<Coupon>, sqlx::Error> {
        let sql = concat!(
            "select ",
            coupon_columns!(),
            " from coupons where user_id = $1 and ($2 is null or id > $2) order by id limit $3"
        );
        let rows: Vec<CouponRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql)
                .bind(user)
                .bind(page.after.map(CouponId))
                .bind(page.fetch_limit())
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter().map(Coupon::try_from).collect()
    }

    async fn coupon(&self, id: CouponId) -> Result<Option<Coupon>, sqlx::Error> {
        let sql = concat!("select ", coupon_columns!(), " from coupons where id = $1");
        let row: Option<CouponRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql).bind(id).fetch_optional(pool).await
        })?;
        row.map(Coupon::try_from).transpose()
    }
}
