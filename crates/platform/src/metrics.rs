//! Prometheus metrics: requests by route template, method and status, a
//! latency histogram, problem+json answers by route and `code`, and
//! whatever other modules record with `metrics`.

use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock, PoisonError, RwLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use http::Method;
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide recorder, installed on first use (one per process, so
/// several servers in one test binary share it).
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("http_request_duration_seconds".into()),
                    LATENCY_BUCKETS,
                )
                // Publish-confirm latency and consumer lag (crates/bus).
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Prefix("bus_".into()), LATENCY_BUCKETS)
                })
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
            }
            handle
        })
        .clone()
}

/// Counts and times every request, labelled by the route template (never the
/// raw path, which would hold ids).
pub async fn track(request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = method_label(request.method());
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let (count, duration) = series(route, method, response.status().as_u16());
    count.increment(1);
    duration.record(start.elapsed().as_secs_f64());
    if let Some(kernel::error::ProblemCode(code)) = response.extensions().get() {
        // Refusals by their stable code (SOLD_OUT, RATE_LIMITED, UNAVAILABLE…):
        // a bounded set, so a label.
        metrics::counter!(
            "http_problems_total",
            "route" => route.to_owned(),
            "code" => code.clone(),
        )
        .increment(1);
    }
    response
}

/// A request's counter and latency histogram.
type Series = (Counter, Histogram);

/// A route template's series by method and status.
type RouteSeries = HashMap<(&'static str, u16), Series>;

/// route template → (method, status) → its series. The recorder finds a
/// series by hashing its name and labels, which costs owned label strings
/// per request; this finds it with one read lock. Bounded: the keys are the
/// router's templates, the methods [`method_label`] names and the statuses.
static SERIES: LazyLock<RwLock<HashMap<String, RouteSeries>>> = LazyLock::new(RwLock::default);

fn series(route: &str, method: &'static str, status: u16) -> Series {
    let known = SERIES
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(route)
        .and_then(|of_route| of_route.get(&(method, status)))
        .cloned();
    known.unwrap_or_else(|| {
        let labels = [
            ("method", method.to_owned()),
            ("route", route.to_owned()),
            ("status", status.to_string()),
        ];
        let series = (
            metrics::counter!("http_requests_total", &labels),
            metrics::histogram!("http_request_duration_seconds", &labels),
        );
        SERIES
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(route.to_owned())
            .or_default()
            .insert((method, status), series.clone());
        series
    })
}

/// The method as a label: a standard method by its name, any other as
/// `OTHER`, so that made-up methods cannot add series without end.
fn method_label(method: &Method) -> &'static str {
    static STANDARD: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
        Method::TRACE,
        Method::CONNECT,
    ];
    STANDARD
        .iter()
        .find(|m| *m == method)
        .map_or("OTHER", Method::as_str)
}

/// Folds the latency samples recorded since the last call into their
/// histograms. The recorder keeps every sample until then, so a server
/// nobody scrapes would grow by about 20 bytes a request without it: call it
/// every few seconds.
pub fn run_upkeep() {
    handle().run_upkeep();
}

/// Sets a gauge (pool sizes and the like, sampled when `/metrics` is read).
pub fn set_gauge(name: &'static str, value: f64) {
    metrics::gauge!(name).set(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_found_again_is_the_one_first_registered() {
        let route = "/a-route-of-this-test-only";
        handle();
        for _ in 0..3 {
            series(route, "POST", 201).0.increment(1);
        }
        series(route, "POST", 409).0.increment(1);

        let text = handle().render();

        let counts = |status: &str| {
            let series = format!(
                r#"http_requests_total{{method="POST",route="{route}",status="{status}"}} "#
            );
            text.lines()
                .find_map(|line| line.strip_prefix(series.as_str()).map(str::to_owned))
        };
        assert_eq!(counts("201").as_deref(), Some("3"), "{text}");
        assert_eq!(counts("409").as_deref(), Some("1"), "{text}");
    }

    #[tokio::test]
    async fn a_problem_is_counted_by_route_and_code() {
        use axum::Router;
        use axum::body::Body;
        use axum::middleware::from_fn;
        use axum::routing::post;
        use tower::ServiceExt;

        let route = "/a-route-that-refuses/{id}";
        let app = Router::new()
            .route(
                route,
                post(|| async { kernel::Problem::conflict("SOLD_OUT", "gone") }),
            )
            .layer(from_fn(track));
        handle();
        for _ in 0..2 {
            let request = Request::post("/a-route-that-refuses/7")
                .body(Body::empty())
                .expect("a request");
            let response = app.clone().oneshot(request).await.expect("an answer");
            assert_eq!(response.status(), 409);
        }

        let text = handle().render();
        let series = format!(r#"http_problems_total{{route="{route}",code="SOLD_OUT"}} 2"#);
        assert!(
            text.lines().any(|line| line == series),
            "{series} in {text}"
        );
    }

    #[test]
    fn made_up_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::CONNECT), "CONNECT");
        let made_up = Method::from_bytes(b"PURGE").expect("a token");
        assert_eq!(method_label(&made_up), "OTHER");
    }
}
