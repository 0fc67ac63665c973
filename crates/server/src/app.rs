//! Composition: one process, every module, one HTTP stack.
//! [`Application::build`] opens the database, starts the modules, binds the
//! listener (port 0 in tests) and returns; [`Application::run_until`] serves
//! until a shutdown signal, lets in-flight requests finish, stops background
//! work and closes the pool.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{from_fn, from_fn_with_state, map_response};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use bus::{Dispatcher, Handler, InProcessTransport, Relay, RetryPolicy};
use commerce::store::{CouponStore, SqlCouponStore};
use commerce::{CampaignStockLoader, CouponGrantHandler, CouponService};
use gate::{
    MemoryRateLimiter, Quota, RateLimiter, RedisConnection, RedisRateLimiter, StockLoader,
    SweepReport,
};
use http::{HeaderName, HeaderValue, Method, StatusCode, header};
use identity::http::IdentityHttp;
use identity::store::SqlIdentityStore;
use identity::{IdentityService, IdentitySettings};
use kernel::db::{Db, DbOptions};
use kernel::{Problem, ProblemDetails, SharedClock, SystemClock};
use platform::Idempotency;
use platform::authn::SharedVerifier;
use platform::client::TrustForwardedFor;
use platform::rate_limit::RequestLimits;
use rewards::RewardsService;
use rewards::service::RewardStockLoader;
use rewards::store::{RewardsStore, SqlRewardsStore};
use rewards::subscribers::IdentityFacts;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::config::{RateLimiterKind, Settings, Switch};
use crate::openapi::ApiDoc;
use crate::stock::{GateFactory, PoolSet, StockGates, StockPools};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// How often the bus looks for work it was not woken for; well under the
/// one second within which a message must reach its subscribers.
const BUS_POLL: Duration = Duration::from_millis(100);
/// How often stale stock-gate leases are looked for.
const LEASE_SWEEP_PERIOD: Duration = Duration::from_secs(10);
/// How often recorded latencies are folded into their histograms, as the
/// exporter's own upkeep task would (`platform::metrics::run_upkeep`).
const METRICS_UPKEEP_PERIOD: Duration = Duration::from_secs(5);

/// Why the server could not start. Each says what to fix in one line.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Database(#[from] kernel::db::DbError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot read the JWT key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("identity: {0}")]
    Identity(String),
    #[error("serving: {0}")]
    Serve(#[source] std::io::Error),
    #[error("stock gate: {0}")]
    StockGate(String),
    #[error("redis: {0}")]
    Redis(String),
}

impl From<identity::IdentityError> for StartError {
    fn from(e: identity::IdentityError) -> Self {
        match e {
            identity::IdentityError::Invalid(errors) => Self::Identity(
                errors
                    .iter()
                    .map(|e| format!("{} {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            other => Self::Identity(other.to_string()),
        }
    }
}

/// The modules, started and wired, without a listener (also what the CLI's
/// `admin` command needs).
pub struct Modules {
    pub db: Db,
    pub clock: SharedClock,
    pub identity: Arc<IdentityService>,
    pub rewards: Arc<RewardsService>,
    pub commerce: Arc<CouponService>,
    pub idempotency: Idempotency,
    /// Hands committed outbox messages to the transport.
    pub relay: Arc<Relay>,
    /// Runs inbox deliveries through the subscribers.
    pub dispatcher: Arc<Dispatcher>,
    /// Request limits and login throttling (memory or Redis).
    pub limiter: Arc<dyn RateLimiter>,
    pub stock: Arc<StockGates>,
}

impl Modules {
    /// Opens the database, applies every module's migrations and starts the services.
    pub async fn start(settings: &Settings) -> Result<Self, StartError> {
        // A bad key file is a configuration error: report it before touching the database.
        let key = settings
            .jwt_private_key_file
            .as_ref()
            .map(|path| read_key_file(path))
            .transpose()?;
        let db = Db::connect(
            &settings.database_url,
            &DbOptions {
                max_connections: settings.database_max_connections,
                ..DbOptions::default()
            },
        )
        .await?;
        db.migrate(bus::migrations()).await?;
        db.migrate(platform::idempotency::migrations()).await?;
        db.migrate(identity::migrations()).await?;
        db.migrate(rewards::migrations()).await?;
        db.migrate(commerce::migrations()).await?;

        let clock: SharedClock = Arc::new(SystemClock);
        let redis = match &settings.redis_url {
            Some(url) if settings.needs_redis() => Some(
                RedisConnection::connect(url)
                    .await
                    .map_err(|e| StartError::Redis(e.to_string()))?,
            ),
            _ => None,
        };
        // Login throttling uses it even when request limits are off.
        let limiter: Arc<dyn RateLimiter> = match (settings.rate_limiter, &redis) {
            (RateLimiterKind::Redis, Some(connection)) => Arc::new(RedisRateLimiter::new(
                connection.clone(),
                format!("{}:rate", settings.redis_prefix),
            )),
            _ => Arc::new(MemoryRateLimiter::default()),
        };
        let gates = GateFactory::new(settings, &db, redis).await?;
        let identity_settings = IdentitySettings {
            access_token_ttl: time::Duration::seconds(settings.access_token_ttl_seconds),
            refresh_token_ttl: time::Duration::seconds(settings.refresh_token_ttl_seconds),
            ..IdentitySettings::default()
        };
        let identity = Arc::new(
            IdentityService::start(
                Arc::new(SqlIdentityStore::new(db.clone())),
                clock.clone(),
                limiter.clone(),
                identity_settings,
                key,
            )
            .await?,
        );
        let rewards_store: Arc<dyn RewardsStore> = Arc::new(SqlRewardsStore::new(db.clone()));
        let rewards_loader: Arc<dyn StockLoader> =
            Arc::new(RewardStockLoader::new(rewards_store.clone()));
        let rewards_gate = gates.gate("rewards", rewards_loader.clone())?;
        let rewards = Arc::new(RewardsService::new(
            rewards_store,
            clock.clone(),
            rewards_gate.clone(),
        ));
        let coupon_store: Arc<dyn CouponStore> = Arc::new(SqlCouponStore::new(db.clone()));
        let coupon_loader: Arc<dyn StockLoader> =
            Arc::new(CampaignStockLoader::new(coupon_store.clone()));
        let coupon_gate = gates.gate("coupons", coupon_loader.clone())?;
        let commerce = Arc::new(CouponService::new(
            coupon_store,
            clock.clone(),
            coupon_gate.clone(),
        ));
        let idempotency = Idempotency::new(db.clone(), clock.clone(), settings.body_limit_bytes);
        let handlers: Vec<Arc<dyn Handler>> = vec![
            Arc::new(IdentityFacts::new(rewards.clone())),
            Arc::new(CouponGrantHandler::new(commerce.clone())),
        ];
        let dispatcher = Arc::new(Dispatcher::new(
            db.clone(),
            clock.clone(),
            handlers,
            RetryPolicy::default(),
        ));
        let transport = Arc::new(InProcessTransport::new(
            db.clone(),
            clock.clone(),
            &dispatcher.subscriptions(),
            dispatcher.wake.clone(),
        ));
        let relay = Arc::new(Relay::new(db.clone(), transport, clock.clone()));
        Ok(Self {
            db,
            clock,
            identity,
            rewards,
            commerce,
            idempotency,
            relay,
            dispatcher,
            limiter,
            stock: Arc::new(StockGates {
                rewards: (rewards_gate, rewards_loader),
                coupons: (coupon_gate, coupon_loader),
            }),
        })
    }

    /// Every module's stock pools with their gate and loader, for reconciliation.
    pub async fn pool_sets(&self) -> Result<Vec<PoolSet>, String> {
        self.stock_pools().pool_sets().await
    }

    /// What reconciliation needs, to hand to a route.
    #[must_use]
    pub fn stock_pools(&self) -> StockPools {
        StockPools {
            rewards: self.rewards.clone(),
            commerce: self.commerce.clone(),
            gates: self.stock.clone(),
        }
    }
}

fn read_key_file(path: &std::path::Path) -> Result<Vec<u8>, StartError> {
    let error = |reason: String| StartError::KeyFile {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    identity::tokens::KeyRing::pkcs8_from_pem(&pem).map_err(|e| error(e.to_string()))
}

/// A built server, bound and ready to serve.
pub struct Application {
    listener: TcpListener,
    router: Router,
    modules: Modules,
    grace: Duration,
    /// Age at which the sweeper checks a stock gate's lease.
    lease_age: Duration,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        let addr = settings.listen_addr()?;
        // Bind first: a taken port is reported before any other work.
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let modules = Modules::start(&settings).await?;
        if let (Some(email), Some(password)) = (&settings.admin_email, &settings.admin_password)
            && modules
                .identity
                .ensure_admin(email, password.expose())
                .await?
        {
            tracing::info!(email = %email, "created the first admin");
        }
        let router = router(&settings, &modules);
        Ok(Self {
            listener,
            router,
            modules,
            grace: Duration::from_secs(settings.shutdown_grace_seconds),
            lease_age: Duration::from_secs(settings.stock_lease_seconds),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then drains and closes.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let background = spawn_background(&self.modules, self.lease_age, stop_rx.clone());
        let mut drained = stop_rx.clone();
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        let server = axum::serve(self.listener, service).with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            let _ = stop_tx.send(true);
        });
        let grace = self.grace;
        let served = tokio::select! {
            r = server => r,
            () = async move {
                stopped(&mut drained).await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!("in-flight requests did not finish within the grace period");
                Ok(())
            }
        };
        for task in background {
            let _ = task.await;
        }
        self.modules.db.close().await;
        tracing::info!("stopped");
        served
    }
}

/// The bus loops and periodic housekeeping; each task ends when `stop` turns true.
fn spawn_background(
    modules: &Modules,
    lease_age: Duration,
    stop: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let idempotency = modules.idempotency.clone();
    let stock = modules.stock.clone();
    let (relay, dispatcher) = (modules.relay.clone(), modules.dispatcher.clone());
    let (mut relay_stop, mut dispatch_stop) = (stop.clone(), stop.clone());
    vec![
        tokio::spawn(async move {
            relay
                .run(BUS_POLL, async move { stopped(&mut relay_stop).await })
                .await;
        }),
        tokio::spawn(async move {
            dispatcher
                .run(BUS_POLL, async move { stopped(&mut dispatch_stop).await })
                .await;
        }),
        // Units taken by claims that died with their process, in gates that
        // outlive it; the first sweep runs at start.
        spawn_every(LEASE_SWEEP_PERIOD, stop.clone(), move || {
            let stock = stock.clone();
            async move { sweep_leases(&stock, lease_age).await }
        }),
        spawn_every(METRICS_UPKEEP_PERIOD, stop.clone(), || async {
            platform::metrics::run_upkeep();
        }),
        spawn_every(Duration::from_secs(3600), stop, move || {
            let idempotency = idempotency.clone();
            async move {
                match idempotency.purge_expired().await {
                    Ok(n) if n > 0 => {
                        tracing::info!(purged = n, "expired idempotency keys removed")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "idempotency purge failed"),
                }
            }
        }),
    ]
}

/// Settles or gives back every module gate's leases older than `lease_age`.
async fn sweep_leases(stock: &StockGates, lease_age: Duration) {
    let gates = [("rewards", &stock.rewards), ("commerce", &stock.coupons)];
    for (module, (gate, loader)) in gates {
        let report = gate::sweep(gate.as_ref(), loader.as_ref(), lease_age).await;
        if report.is_quiet() {
            continue;
        }
        let SweepReport {
            settled,
            returned,
            failed,
            first_error,
        } = report;
        if failed > 0 {
            let first_error = first_error.as_deref();
            tracing::warn!(
                module,
                settled,
                returned,
                failed,
                first_error,
                "stock lease sweep"
            );
        } else {
            tracing::info!(module, settled, returned, "stock lease sweep");
        }
    }
}

fn spawn_every<F, Fut>(period: Duration, mut stop: watch::Receiver<bool>, job: F) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = ticks.tick() => job().await,
                () = stopped(&mut stop) => return,
            }
        }
    })
}

/// Resolves once the stop flag is set (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// The whole HTTP surface with its middleware stack.
pub fn router(settings: &Settings, modules: &Modules) -> Router {
    let identity_http = IdentityHttp {
        service: modules.identity.clone(),
        secure_cookie: settings.secure_cookie,
    };
    let (routes, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest(
            "/api/v1",
            identity::http::router(identity_http.clone())
                .merge(rewards::http::router(
                    modules.rewards.clone(),
                    modules.idempotency.clone(),
                ))
                .merge(commerce::http::router(
                    modules.commerce.clone(),
                    modules.idempotency.clone(),
                )),
        )
        .merge(identity::http::test_users_router(
            identity_http.clone(),
            settings.test_users == Switch::On,
        ))
        .merge(identity::http::well_known_router(identity_http))
        .merge(bus::http::router(modules.dispatcher.clone()))
        .merge(crate::stock::router(modules.stock_pools()))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(healthz))
                .routes(routes!(readyz))
                .routes(routes!(metrics))
                .with_state(modules.db.clone()),
        )
        .split_for_parts();

    // Install the recorder before the first request so nothing is missed.
    let _ = platform::metrics::handle();
    let verifier: SharedVerifier = modules.identity.clone();
    let limits = (settings.rate_limit == Switch::On).then(|| RequestLimits {
        limiter: modules.limiter.clone(),
        per_address: Quota::per_second(settings.rate_limit_per_address),
        per_user: Quota::per_second(settings.rate_limit_per_user),
    });

    let mut app = routes
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
        .fallback(platform::problems::unknown_route);
    // Inner layers first: `Router::layer` wraps what is already there.
    if let Some(limits) = limits {
        app = app.layer(from_fn_with_state(
            limits,
            platform::rate_limit::limit_requests,
        ));
    }
    app.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(request_span)
                    .on_request(())
                    .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
            )
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(CatchPanicLayer::custom(platform::problems::on_panic))
            .layer(map_response(platform::problems::normalise))
            .layer(cors(&settings.cors_allowed_origins))
            .layer(DefaultBodyLimit::max(settings.body_limit_bytes))
            .layer(from_fn(platform::metrics::track))
            .layer(from_fn_with_state(
                TrustForwardedFor(settings.trust_forwarded_for),
                platform::client::resolve_client_ip,
            ))
            .layer(from_fn_with_state(verifier, platform::authn::authenticate)),
    )
}

/// One span per request, carrying the request id into every log line.
/// The route template is logged, never the raw path or any header.
fn request_span(request: &Request) -> tracing::Span {
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", axum::extract::MatchedPath::as_str);
    tracing::info_span!("request", request_id = %request_id, method = %request.method(), route = %route)
}

fn cors(origins: &[String]) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
            REQUEST_ID,
        ])
        .expose_headers([REQUEST_ID, header::RETRY_AFTER]);
    if origins.iter().any(|o| o == "*") {
        layer.allow_origin(AllowOrigin::any())
    } else {
        let list: Vec<HeaderValue> = origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        layer.allow_origin(list).allow_credentials(true)
    }
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct Health {
    status: &'static str,
}

/// Alive.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Ready: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Health),
        (status = 503, description = "A dependency is down", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
async fn readyz(State(db): State<Db>) -> Result<Json<Health>, Problem> {
    db.ping().await.map_err(|e| Problem::unavailable(&e))?;
    Ok(Json(Health { status: "ready" }))
}

/// Prometheus metrics: requests by route template, method and status;
/// latency histogram; database pool gauges; the bus's backlog
/// (`bus_outbox_unpublished`, `bus_inbox_pending`).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
async fn metrics(State(db): State<Db>) -> Response {
    let (size, idle) = db.pool_stats();
    platform::metrics::set_gauge("db_pool_connections", f64::from(size));
    platform::metrics::set_gauge("db_pool_idle_connections", idle as f64);
    match bus::backlog(&db).await {
        Ok(backlog) => {
            platform::metrics::set_gauge("bus_outbox_unpublished", backlog.unpublished as f64);
            platform::metrics::set_gauge("bus_inbox_pending", backlog.pending as f64);
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the bus backlog for /metrics"),
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        platform::metrics::handle().render(),
    )
        .into_response()
}
