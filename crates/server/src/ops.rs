//! Operations endpoints: `/healthz` (alive), `/readyz` (every dependency the
//! configuration uses answers) and `/metrics` (Prometheus), which may be
//! served on a listener of its own (`metrics_listen`).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use gate::RedisConnection;
use http::{HeaderValue, StatusCode, header};
use kernel::db::Db;
use kernel::{Problem, ProblemDetails};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::modules::{Broker, Modules};
use crate::stock::StockRegistry;

mod gauges;
mod process;

/// How long one dependency may take to answer a readiness check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What the readiness check asks: the dependencies this configuration uses.
#[derive(Clone)]
pub struct Dependencies {
    db: Db,
    /// Present when the stock gate or the rate limiter lives in Redis.
    redis: Option<RedisConnection>,
    /// Present when the bus runs over RabbitMQ.
    broker: Option<Broker>,
}

impl Dependencies {
    #[must_use]
    pub fn of(modules: &Modules) -> Self {
        Self {
            db: modules.db.clone(),
            redis: modules.redis.clone(),
            broker: modules.broker.clone(),
        }
    }

    /// Each dependency by name, `up` or `down`; a failure's cause is logged.
    /// They are asked together, so two down cost one timeout, not two.
    async fn check(&self) -> BTreeMap<&'static str, Health> {
        let redis = async {
            match &self.redis {
                Some(redis) => Some(within(redis.ping()).await),
                None => None,
            }
        };
        let broker = async {
            match &self.broker {
                Some(broker) => Some(within(broker_ping(broker)).await),
                None => None,
            }
        };
        let (database, redis, broker) = tokio::join!(within(self.db.ping()), redis, broker);
        let mut checks = BTreeMap::from([("database", Health::judge("database", database))]);
        if let Some(redis) = redis {
            checks.insert("redis", Health::judge("redis", redis));
        }
        if let Some(broker) = broker {
            checks.insert("broker", Health::judge("broker", broker));
        }
        checks
    }
}

/// Up when the relay can publish (it reconnects if it must) and the
/// consumer is consuming.
async fn broker_ping(broker: &Broker) -> Result<(), String> {
    broker.publisher.ping().await.map_err(|e| e.to_string())?;
    if broker.consumer.is_connected() {
        Ok(())
    } else {
        Err("the bus consumer is not connected".into())
    }
}

async fn within<E: std::fmt::Display>(
    check: impl Future<Output = Result<(), E>>,
) -> Result<(), String> {
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(answer) => answer.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
    }
}

/// One dependency's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Up,
    Down,
}

impl Health {
    fn judge(name: &str, answer: Result<(), String>) -> Self {
        match answer {
            Ok(()) => Self::Up,
            Err(error) => {
                tracing::warn!(dependency = name, %error, "readiness: a dependency is down");
                Self::Down
            }
        }
    }
}

/// The public operations routes; `/metrics` among them unless it has a
/// listener of its own.
pub fn router(modules: &Modules, with_metrics: bool) -> OpenApiRouter {
    let routes = OpenApiRouter::new().routes(routes!(healthz)).merge(
        OpenApiRouter::new()
            .routes(routes!(readyz))
            .with_state(Dependencies::of(modules)),
    );
    if with_metrics {
        routes.merge(metrics_routes(modules))
    } else {
        routes
    }
}

/// `/metrics` alone, for the `metrics_listen` listener.
pub fn metrics_router(modules: &Modules) -> Router {
    metrics_routes(modules).split_for_parts().0
}

fn metrics_routes(modules: &Modules) -> OpenApiRouter {
    let mut subscribers: Vec<String> = modules
        .dispatcher
        .subscriptions()
        .into_iter()
        .map(|(subscriber, _)| subscriber)
        .collect();
    subscribers.dedup();
    OpenApiRouter::new()
        .routes(routes!(metrics))
        .with_state(MetricsState {
            db: modules.db.clone(),
            subscribers: subscribers.into(),
            seen: std::sync::Arc::default(),
            dependencies: Dependencies::of(modules),
            stock: modules.stock.clone(),
            commerce: modules.commerce_analytics.clone(),
        })
}

/// What `/metrics` samples when it is read.
#[derive(Clone)]
struct MetricsState {
    db: Db,
    /// Every subscriber of this process, so each has a `bus_dead_letters`
    /// series, 0 when it has none.
    subscribers: std::sync::Arc<[String]>,
    /// Other subscribers that had dead letters here, so their series
    /// falls to 0 when they are gone rather than keeping its last value.
    seen: std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
    /// Asked for `dependency_up`.
    dependencies: Dependencies,
    /// Asked for `stock_gate_up` and `stock_remaining`.
    stock: StockRegistry,
    /// Asked for the unknown payments and pending refunds.
    commerce: std::sync::Arc<commerce::analytics::CommerceAnalyticsService>,
}

#[derive(Serialize, ToSchema)]
struct Alive {
    status: &'static str,
}

/// Alive.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = Alive)))]
async fn healthz() -> Json<Alive> {
    Json(Alive { status: "ok" })
}

/// The readiness answer: `status` is `ready`, and `checks` names every
/// dependency the configuration uses (`database`; `redis` when the stock
/// gate or the rate limiter lives there; `broker` when the bus runs over
/// RabbitMQ) with `up` or `down`.
#[derive(Serialize, ToSchema)]
struct Ready {
    status: &'static str,
    #[schema(value_type = BTreeMap<String, Health>)]
    checks: BTreeMap<&'static str, Health>,
}

/// Ready: every dependency the configuration uses answers. When one does
/// not, 503 `UNAVAILABLE` with the same `checks` member naming it.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Ready),
        (status = 503, description = "A dependency is down; `checks` names it", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
async fn readyz(State(dependencies): State<Dependencies>) -> Result<Json<Ready>, Problem> {
    let checks = dependencies.check().await;
    let down: Vec<&str> = checks
        .iter()
        .filter(|(_, health)| **health == Health::Down)
        .map(|(name, _)| *name)
        .collect();
    if down.is_empty() {
        Ok(Json(Ready {
            status: "ready",
            checks,
        }))
    } else {
        Err(
            Problem::unavailable(&format!("not ready: {} down", down.join(", ")))
                .with("checks", &checks),
        )
    }
}

/// Prometheus metrics: requests by route template, method and status;
/// latency histogram; database pool gauges; the bus's backlog
/// (`bus_outbox_unpublished`, `bus_inbox_pending`) and relay lag
/// (`bus_relay_lag_seconds`, the oldest unpublished message's age), dead
/// letters by subscriber (`bus_dead_letters`), the notifiers' counters
/// (`notify_emails_total`, `notify_slack_posts_total` by outcome); over
/// RabbitMQ also `bus_publish_confirm_seconds`, `bus_consumer_lag_seconds`
/// and `bus_queue_depth` by subscriber. Sampled when read: the process's
/// `process_cpu_seconds_total`, memory, open files and start time;
/// `dependency_up` by dependency (the readiness check); `stock_gate_up` by
/// module and `stock_remaining` of each module's newest limited pools;
/// `commerce_payments_unknown` and `commerce_refunds_pending` with the age
/// of the oldest of each (`commerce_payment_unknown_oldest_seconds`,
/// `commerce_refund_pending_oldest_seconds`, 0 when there is none).
/// Problem+json answers are counted by route and `code` in
/// `http_problems_total`.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
async fn metrics(
    State(MetricsState {
        db,
        subscribers,
        seen,
        dependencies,
        stock,
        commerce,
    }): State<MetricsState>,
) -> Response {
    process::record();
    tokio::join!(
        gauges::record_dependencies(&dependencies),
        gauges::record_stock(&stock),
        gauges::record_open_orders(&commerce),
    );
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
    match bus::oldest_unpublished(&db).await {
        Ok(oldest) => {
            let lag = oldest.map_or(0.0, |at| {
                (kernel::Clock::now(&kernel::SystemClock) - at)
                    .as_seconds_f64()
                    .max(0.0)
            });
            platform::metrics::set_gauge("bus_relay_lag_seconds", lag);
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the relay's lag for /metrics"),
    }
    match bus::dead_letter_counts(&db).await {
        Ok(counts) => {
            let count = |name: &str| {
                counts
                    .iter()
                    .find(|(subscriber, _)| subscriber == name)
                    .map_or(0, |(_, n)| *n)
            };
            // Every subscriber of this process, and any other that left some.
            let others = {
                let mut seen = seen
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                seen.extend(counts.iter().map(|(subscriber, _)| subscriber.clone()));
                seen.clone()
            };
            for name in subscribers.iter().chain(others.iter()) {
                metrics::gauge!("bus_dead_letters", "subscriber" => name.clone())
                    .set(count(name) as f64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot count the dead letters for /metrics"),
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
