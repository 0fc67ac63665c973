//! The analytics use cases: the period a reader asks for, and the orders
//! that need an operator.

use std::sync::Arc;

use kernel::auth::Reader;
use kernel::{Period, PeriodQuery, SharedClock};

use super::model::{CommerceAnalytics, OpenIssues, OpenOrder};
use super::store::AnalyticsStore;
use crate::error::CommerceError;
use crate::service::CouponService;

pub struct CommerceAnalyticsService {
    coupons: Arc<CouponService>,
    store: Arc<dyn AnalyticsStore>,
    clock: SharedClock,
}

impl std::fmt::Debug for CommerceAnalyticsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommerceAnalyticsService")
            .finish_non_exhaustive()
    }
}

impl CommerceAnalyticsService {
    #[must_use]
    pub fn new(
        coupons: Arc<CouponService>,
        store: Arc<dyn AnalyticsStore>,
        clock: SharedClock,
    ) -> Self {
        Self {
            coupons,
            store,
            clock,
        }
    }

    /// Coupons per campaign and over time, sales per product and orders per
    /// day (readers).
    #[tracing::instrument(name = "commerce.analytics", skip_all)]
    pub async fn analytics(
        &self,
        reader: &Reader,
        query: &PeriodQuery,
    ) -> Result<CommerceAnalytics, CommerceError> {
        let period = self.period(query)?;
        let bucket = period.bucket();
        Ok(CommerceAnalytics {
            coupons_per_campaign: self.coupons.issues_per_campaign(reader).await?,
            coupons_issued: self.store.coupons_issued(period, bucket).await?,
            coupons_bucket_minutes: bucket.minutes(),
            sales_per_product: self.store.sales_per_product(period.of_totals()).await?,
            orders_per_day: self.store.orders_per_day(period).await?,
        })
    }

    /// Unknown payments and pending refunds, for the dashboard and
    /// `/metrics`.
    pub async fn open_issues(&self) -> Result<OpenIssues, CommerceError> {
        Ok(self.store.open_issues().await?)
    }

    /// The orders behind [`Self::open_issues`], longest waiting first
    /// (readers).
    pub async fn open_orders(
        &self,
        _: &Reader,
        limit: u32,
    ) -> Result<Vec<OpenOrder>, CommerceError> {
        Ok(self.store.open_orders(i64::from(limit)).await?)
    }

    fn period(&self, query: &PeriodQuery) -> Result<Period, CommerceError> {
        query
            .period(self.clock.now())
            .map_err(|e| CommerceError::Invalid(vec![e]))
    }
}
