//! The coupon use cases. Issuing is the hot path: the stock gate answers
//! first, from memory or Redis; only a take it allows reaches the database,
//! where the coupon's insert is the durable claim; a failed write gives the
//! unit back. Claims arriving together are written together: one multi-row
//! insert and one commit per batch (`kernel::batch`).

use std::collections::BTreeMap;
use std::sync::Arc;

use gate::{Holder, PoolId, StockClaim, StockGate, Written};
use kernel::auth::{Reader, Staff};
use kernel::batch::Batcher;
use kernel::{IdempotentEffect, Page, PageRequest, SharedClock, UserId};

use crate::error::CommerceError;
use crate::model::{
    Campaign, CampaignIssues, Coupon, CouponCampaign, CouponCampaignId, CouponCode, CouponId,
    GrantId, NewCampaign,
};
use crate::stock::{CampaignStock, campaign_pool};
use crate::store::{CouponClaim, CouponStore, IssueOutcome};

/// Campaigns kept in memory. They never change once created, so a cached
/// one is never stale; the cache only saves the issue path a read.
const CACHED_CAMPAIGNS: u64 = 10_000;

/// Most claims written by one batch.
const ISSUE_BATCH: usize = 512;

/// Claim batches written at once: two, on both databases. On PostgreSQL one
/// batch's statement then runs while the other waits for its commit's
/// flush, and its leases settle meanwhile: two sold 9 % more than one, in
/// every pair, and four no more than two. On SQLite, whose one writer
/// commits one transaction at a time, the second batch forms while the
/// first commits, as with one: within the noise (ADR 0012).
const ISSUE_BATCHES_IN_FLIGHT: usize = 2;

/// Campaigns listed by [`CouponService::issues_per_campaign`], most recent
/// first.
const CAMPAIGNS_LISTED: i64 = 100;

/// Writes coupon claims in batches; each caller hears its own outcome.
type IssueWriter = Batcher<CouponClaim, Result<IssueOutcome, sqlx::Error>>;

pub struct CouponService {
    store: Arc<dyn CouponStore>,
    clock: SharedClock,
    gate: Arc<dyn StockGate>,
    campaigns: moka::sync::Cache<CouponCampaignId, Arc<Campaign>>,
    issues: IssueWriter,
}

impl std::fmt::Debug for CouponService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CouponService").finish_non_exhaustive()
    }
}

impl CouponService {
    /// `gate` holds each campaign's public stock as the pool
    /// [`campaign_pool`]; build it with a
    /// [`CampaignStockLoader`](crate::CampaignStockLoader) over the same store.
    /// Starts the claim writer on `writer_runtime`: the store's database's
    /// [`Db::writer_runtime`](kernel::Db::writer_runtime), so that on SQLite
    /// the batches form and commit on the writer's own thread.
    #[must_use]
    pub fn new(
        store: Arc<dyn CouponStore>,
        clock: SharedClock,
        gate: Arc<dyn StockGate>,
        writer_runtime: &tokio::runtime::Handle,
    ) -> Self {
        let (writer, settler) = (Arc::clone(&store), Arc::clone(&gate));
        let issues = Batcher::start_on(
            writer_runtime,
            ISSUE_BATCH,
            ISSUE_BATCHES_IN_FLIGHT,
            move |coupons| write_claims(Arc::clone(&writer), Arc::clone(&settler), coupons),
        );
        Self {
            store,
            clock,
            gate,
            campaigns: moka::sync::Cache::new(CACHED_CAMPAIGNS),
            issues,
        }
    }

    /// Creates a campaign with its whole stock remaining.
    #[tracing::instrument(name = "coupons.create_campaign", skip_all)]
    pub async fn create_campaign(
        &self,
        _: &Staff,
        request: &NewCampaign,
    ) -> Result<CouponCampaign, CommerceError> {
        let campaign = Campaign::new(CouponCampaignId::new(), request, self.clock.now())
            .map_err(CommerceError::Invalid)?;
        self.store.create_campaign(campaign.clone()).await?;
        // Tell the gate now, so the first issue of the drop needs no load.
        // Not fatal: a gate that missed this loads the pool on first use.
        let untouched = CampaignStock::untouched(&campaign);
        let pool = campaign_pool(campaign.id);
        if let Err(e) = self
            .gate
            .reset(&pool, untouched.limits(), untouched.snapshot())
            .await
        {
            tracing::warn!(pool = %pool, error = %e, "new campaign not announced to the stock gate");
        }
        Ok(CouponCampaign {
            remaining: campaign.total_quantity,
            campaign,
        })
    }

    /// Campaigns in id order, each with its live `remaining`.
    #[tracing::instrument(name = "coupons.list_campaigns", skip_all)]
    pub async fn list_campaigns(
        &self,
        page: PageRequest,
    ) -> Result<Page<CouponCampaign>, CommerceError> {
        let rows = self.store.list_campaigns(page).await?;
        let page = Page::from_rows(rows, page, "coupon-campaigns", |c| c.id.0);
        let mut items = Vec::with_capacity(page.items.len());
        for campaign in page.items {
            items.push(self.with_remaining(campaign).await?);
        }
        Ok(Page {
            items,
            next_cursor: page.next_cursor,
        })
    }

    /// One campaign with its live `remaining`.
    #[tracing::instrument(name = "coupons.campaign", skip_all)]
    pub async fn campaign(&self, id: CouponCampaignId) -> Result<CouponCampaign, CommerceError> {
        let campaign = self.cached_campaign(id).await?;
        self.with_remaining(Campaign::clone(&campaign)).await
    }

    /// Issues one coupon of the campaign's public stock to `user`: refused
    /// outside the issue window, when sold out, or when the user holds the
    /// per-user limit. A keyed request's coupon takes the key's effect id; a
    /// retry of one that may have issued it answers with that coupon.
    #[tracing::instrument(name = "coupons.issue", skip_all, fields(%user, campaign = %campaign_id))]
    pub async fn issue(
        &self,
        user: UserId,
        campaign_id: CouponCampaignId,
        effect: Option<IdempotentEffect>,
    ) -> Result<Coupon, CommerceError> {
        let campaign = self.cached_campaign(campaign_id).await?;
        let now = self.clock.now();
        let id = effect.map_or_else(CouponId::new, |e| CouponId(e.id));
        if effect.is_some_and(|e| e.retry)
            && let Some(first) = self.store.coupon(id).await?
        {
            if first.user_id != user || first.campaign_id != campaign_id {
                return Err(CommerceError::Internal(format!(
                    "the effect {id} of a retried key is another request's coupon"
                )));
            }
            return Ok(first.as_of(now));
        }
        if !campaign.schedule.is_issuing(now) {
            return Err(CommerceError::NotOpen {
                starts_at: campaign.schedule.issue_starts_at(),
                ends_at: campaign.schedule.issue_ends_at(),
            });
        }
        claim(
            self.issues.clone(),
            Arc::clone(&self.gate),
            Coupon::new(id, &campaign, user, CouponCode::generate(now), now),
        )
        .await
    }

    /// The user's coupons in id order, as of now.
    #[tracing::instrument(name = "coupons.mine", skip_all)]
    pub async fn mine(
        &self,
        user: UserId,
        page: PageRequest,
    ) -> Result<Page<Coupon>, CommerceError> {
        let now = self.clock.now();
        let rows = self.store.coupons_of(user, page).await?;
        Ok(Page::from_rows(rows, page, "coupons", |c| c.id.0).map(|c| c.as_of(now)))
    }

    /// Issues the coupon a reward grant promised, once per `grant`: a
    /// repeated grant returns the first coupon. Grants are outside the public
    /// stock, the per-user limit and the issue window (docs/adr/0010).
    #[tracing::instrument(name = "coupons.grant", skip_all)]
    pub async fn grant(
        &self,
        grant: GrantId,
        user: UserId,
        campaign_id: CouponCampaignId,
    ) -> Result<Coupon, CommerceError> {
        let campaign = self.cached_campaign(campaign_id).await?;
        let now = self.clock.now();
        let coupon = Coupon::new(
            CouponId::new(),
            &campaign,
            user,
            CouponCode::generate(now),
            now,
        );
        let granted = self
            .store
            .grant(grant, coupon)
            .await?
            .ok_or(CommerceError::CampaignNotFound)?;
        Ok(granted.as_of(now))
    }

    /// Coupons handed out per campaign, the most recent campaigns first
    /// (readers).
    pub async fn issues_per_campaign(
        &self,
        _: &Reader,
    ) -> Result<Vec<CampaignIssues>, CommerceError> {
        Ok(self.store.issues_per_campaign(CAMPAIGNS_LISTED).await?)
    }

    /// Every campaign's stock-gate pool, for reconciliation.
    pub async fn stock_pools(&self) -> Result<Vec<PoolId>, CommerceError> {
        let ids = self.store.campaign_ids().await?;
        Ok(ids.into_iter().map(campaign_pool).collect())
    }

    async fn cached_campaign(&self, id: CouponCampaignId) -> Result<Arc<Campaign>, CommerceError> {
        if let Some(campaign) = self.campaigns.get(&id) {
            return Ok(campaign);
        }
        let campaign = Arc::new(
            self.store
                .campaign(id)
                .await?
                .ok_or(CommerceError::CampaignNotFound)?,
        );
        self.campaigns.insert(id, Arc::clone(&campaign));
        Ok(campaign)
    }

    async fn with_remaining(&self, campaign: Campaign) -> Result<CouponCampaign, CommerceError> {
        let left = self.gate.remaining(&campaign_pool(campaign.id)).await?;
        let remaining = left.map_or(campaign.total_quantity, |left| {
            u32::try_from(left)
                .unwrap_or(u32::MAX)
                .min(campaign.total_quantity)
        });
        Ok(CouponCampaign {
            campaign,
            remaining,
        })
    }
}

#[async_trait::async_trait]
impl contracts::commerce::CouponCampaigns for CouponService {
    async fn exists(&self, id: CouponCampaignId) -> Result<bool, String> {
        match self.cached_campaign(id).await {
            Ok(_) => Ok(true),
            Err(CommerceError::CampaignNotFound) => Ok(false),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Claims a unit through the gate's one protocol ([`StockClaim::run`]),
/// under a lease named by the coupon id; the coupon's insert is the durable
/// write, and the batch writer settles the leases of the coupons it wrote.
async fn claim(
    issues: IssueWriter,
    gate: Arc<dyn StockGate>,
    coupon: Coupon,
) -> Result<Coupon, CommerceError> {
    let pool = campaign_pool(coupon.campaign_id);
    let claim = StockClaim {
        pool: pool.clone(),
        holder: Holder::from(coupon.user_id),
        lease: coupon.id.to_string(),
        quantity: 1,
    };
    claim
        .run(gate, move |taken| async move {
            let claim = CouponClaim {
                coupon: coupon.clone(),
                ordinal: taken.held,
            };
            match issues.submit(claim).await {
                Ok(Ok(IssueOutcome::Issued)) => Written::DurableSettled(Ok(coupon)),
                Ok(Ok(IssueOutcome::LimitReached)) => {
                    tracing::warn!(pool = %pool, "the database refused an issue the gate allowed: \
                        its counters drifted from the coupons table; reconcile them");
                    Written::NotWritten(Err(CommerceError::LimitReached))
                }
                Ok(Ok(IssueOutcome::CampaignNotFound)) => {
                    Written::NotWritten(Err(CommerceError::CampaignNotFound))
                }
                Ok(Err(e)) if kernel::db::may_have_committed(&e) => {
                    Written::Unknown(Err(CommerceError::Database(e)))
                }
                Ok(Err(e)) => Written::NotWritten(Err(CommerceError::Database(e))),
                // The writer lost the batch without an answer: it may have
                // committed, so the sweep decides.
                Err(e) => Written::Unknown(Err(CommerceError::Internal(format!(
                    "the coupon write failed: {e}"
                )))),
            }
        })
        .await?
}

/// Writes a batch of claims, then settles the leases of those written, a
/// call per pool for the lot.
async fn write_claims(
    store: Arc<dyn CouponStore>,
    gate: Arc<dyn StockGate>,
    claims: Vec<CouponClaim>,
) -> Vec<Result<IssueOutcome, sqlx::Error>> {
    let campaigns: Vec<(CouponCampaignId, CouponId)> = claims
        .iter()
        .map(|c| (c.coupon.campaign_id, c.coupon.id))
        .collect();
    let outcomes = write_batch(store, claims).await;
    let mut written: BTreeMap<CouponCampaignId, Vec<String>> = BTreeMap::new();
    for ((campaign, coupon), outcome) in campaigns.into_iter().zip(&outcomes) {
        if matches!(outcome, Ok(IssueOutcome::Issued)) {
            written
                .entry(campaign)
                .or_default()
                .push(coupon.to_string());
        }
    }
    for (campaign, leases) in written {
        let pool = campaign_pool(campaign);
        // Not fatal: a lease left behind is settled by the sweep.
        if let Err(e) = gate.settle_many(&pool, &leases).await {
            tracing::warn!(pool = %pool, error = %e, "could not settle the leases of written coupons");
        }
    }
    outcomes
}

/// Writes a batch of claims in one transaction. If the batch fails as a
/// whole (one duplicate code, a deadlock between batches) each claim is
/// written on its own, so one bad claim fails only itself.
async fn write_batch(
    store: Arc<dyn CouponStore>,
    claims: Vec<CouponClaim>,
) -> Vec<Result<IssueOutcome, sqlx::Error>> {
    let count = claims.len();
    tracing::trace!(claims = count, "writing a batch of coupon claims");
    if count > 1 {
        match store.issue(claims.clone()).await {
            Ok(outcomes) => return outcomes.into_iter().map(Ok).collect(),
            Err(e) => {
                tracing::warn!(claims = count, error = %e, "a batch of coupon claims failed; writing them one by one")
            }
        }
    }
    let mut outcomes = Vec::with_capacity(count);
    for claim in claims {
        outcomes.push(match store.issue(vec![claim]).await {
            Ok(mut outcome) => outcome.pop().ok_or(sqlx::Error::RowNotFound),
            Err(e) => Err(e),
        });
    }
    outcomes
}
