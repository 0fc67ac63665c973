//! The stock gates, chosen by `stock_gate`, one per module with that module's
//! loader, and the route that reconciles them with the database
//! ([`gate::reconcile`]).

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::State;
use commerce::CouponService;
use gate::{
    MemoryStockGate, ModuleStock, PgStockGate, PoolId, PoolLister, RedisConnection, RedisStockGate,
    Report, StockGate, StockLoader,
};
use kernel::auth::Admin;
use kernel::db::Db;
use kernel::http::{Json, Query};
use kernel::{Problem, ProblemDetails};
use rewards::RewardsService;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::{Settings, StockGateKind};
use crate::startup::StartError;

/// Builds the configured kind of gate for each module.
pub struct GateFactory {
    kind: StockGateKind,
    db: Db,
    shards: u16,
    redis: Option<(RedisConnection, String)>,
}

impl GateFactory {
    /// Prepares the configured gate: `redis` is the shared connection when
    /// `stock_gate = redis`; the PostgreSQL gate gets its tables.
    pub async fn new(
        settings: &Settings,
        db: &Db,
        redis: Option<RedisConnection>,
    ) -> Result<Self, StartError> {
        let redis = match (settings.stock_gate, redis) {
            (StockGateKind::Redis, Some(connection)) => {
                Some((connection, settings.redis_prefix.clone()))
            }
            (StockGateKind::Redis, None) => {
                return Err(StartError::StockGate(
                    "stock_gate = redis needs redis_url".into(),
                ));
            }
            _ => None,
        };
        if settings.stock_gate == StockGateKind::Postgres {
            db.migrate(gate::stock_migrations()).await?;
        }
        Ok(Self {
            kind: settings.stock_gate,
            db: db.clone(),
            shards: settings.stock_gate_shards,
            redis,
        })
    }

    /// A gate for one module's pools; `namespace` keeps modules' Redis keys apart.
    pub fn gate(
        &self,
        namespace: &str,
        loader: Arc<dyn StockLoader>,
    ) -> Result<Arc<dyn StockGate>, StartError> {
        Ok(match (self.kind, &self.redis) {
            (StockGateKind::Redis, Some((connection, prefix))) => Arc::new(RedisStockGate::new(
                connection.clone(),
                format!("{prefix}:{namespace}"),
                loader,
            )),
            (StockGateKind::Postgres, _) => Arc::new(
                PgStockGate::new(self.db.clone(), self.shards, loader)
                    .map_err(|e| StartError::StockGate(e.to_string()))?,
            ),
            _ => Arc::new(MemoryStockGate::new(loader)),
        })
    }
}

/// Every module's registered stock, in one list: the lease sweeper and
/// reconciliation walk it.
pub type StockRegistry = Arc<[ModuleStock]>;

/// Rewards' pools: one per event reward with limited stock.
pub struct RewardPools(pub Arc<RewardsService>);

#[async_trait]
impl PoolLister for RewardPools {
    async fn pools(&self) -> Result<Vec<PoolId>, String> {
        self.0.stock_pools().await.map_err(|e| e.to_string())
    }
}

/// Commerce's pools: one per coupon campaign.
pub struct CouponPools(pub Arc<CouponService>);

#[async_trait]
impl PoolLister for CouponPools {
    async fn pools(&self) -> Result<Vec<PoolId>, String> {
        self.0.stock_pools().await.map_err(|e| e.to_string())
    }
}

/// Commerce's product pools: one per product with limited stock.
pub struct ProductPools(pub Arc<commerce::reservations::ReservationService>);

#[async_trait]
impl PoolLister for ProductPools {
    async fn pools(&self) -> Result<Vec<PoolId>, String> {
        self.0.pools().await.map_err(|e| e.to_string())
    }
}

/// `POST /admin-api/stock/reconcile`.
pub fn router(stock: StockRegistry) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(reconcile_now))
        .with_state(stock)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ReconcileQuery {
    /// Report only; change nothing.
    #[serde(default)]
    dry_run: bool,
}

/// Compare every stock counter with the database and repair differences
/// (ADMIN). Works for every gate, the in-process one included.
#[utoipa::path(post, path = "/admin-api/stock/reconcile", tag = "operations",
    security(("bearer" = [])),
    params(ReconcileQuery),
    responses(
        (status = 200, description = "What was checked, what differed, what was repaired", body = Report),
        (status = 403, description = "Not an admin", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 503, description = "Pools could not be listed", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::SignedIn,
    ))]
async fn reconcile_now(
    State(stock): State<StockRegistry>,
    _: Admin,
    Query(q): Query<ReconcileQuery>,
) -> Result<Json<Report>, Problem> {
    let sets = gate::pool_sets(&stock)
        .await
        .map_err(|e| Problem::unavailable(&e))?;
    Ok(Json(gate::reconcile(&sets, q.dry_run).await))
}
