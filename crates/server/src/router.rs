//! The whole HTTP surface: every module's routes, the API page, and the
//! middleware stack around them (request ids, tracing, problem+json,
//! security headers, CORS, body limit, metrics, client address,
//! authentication, request limits).

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{from_fn, from_fn_with_state, map_request, map_response};
use axum::response::Response;
use gate::Quota;
use http::{HeaderName, HeaderValue, Method, header};
use identity::http::IdentityHttp;
use platform::authn::SharedVerifier;
use platform::client::TrustForwardedFor;
use platform::rate_limit::RequestLimits;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::config::{Settings, Switch};
use crate::modules::Modules;
use crate::openapi::ApiDoc;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The longest caller-chosen request id that is echoed and logged.
pub const MAX_REQUEST_ID_CHARS: usize = 128;
/// Where the interactive API page lives.
const DOCS: &str = "/docs";
/// The API page's own files only: Swagger UI sets inline styles and draws
/// icons from `data:` URLs, and fetches `/openapi.json` from this origin.
const DOCS_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The whole HTTP surface with its middleware stack; `/metrics` is left out
/// when `metrics_listen` serves it elsewhere.
pub fn router(settings: &Settings, modules: &Modules) -> Router {
    let identity_http = IdentityHttp {
        service: modules.identity.clone(),
        secure_cookie: settings.secure_cookie,
    };
    let (routes, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
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
                ))
                .merge(commerce::products::http::router(modules.products.clone()))
                .merge(commerce::analytics::http::router(
                    modules.commerce_analytics.clone(),
                ))
                .merge(park::http::router(
                    modules.park.clone(),
                    modules.idempotency.clone(),
                ))
                .merge(commerce::reservations::http::router(
                    modules.reservations.clone(),
                    modules.idempotency.clone(),
                ))
                .merge(commerce::orders::http::router(
                    modules.orders.clone(),
                    modules.idempotency.clone(),
                ))
                .merge(commerce::tickets::http::router(modules.tickets.clone()))
                .merge(commerce::waitlist::http::router(modules.waitlist.clone()))
                .merge(webhooks::http::router(modules.webhooks.clone())),
        )
        .merge(identity::http::test_users_router(
            identity_http.clone(),
            settings.test_users == Switch::On,
        ))
        .merge(identity::http::well_known_router(identity_http))
        .merge(bus::http::router(modules.dispatcher.clone()))
        .merge(crate::stock::router(modules.stock.clone()))
        .merge(crate::ops::router(
            modules,
            settings.metrics_listen.is_none(),
        ))
        .split_for_parts();
    // After the routes are in: it documents what the middleware answers on each.
    crate::openapi::MiddlewareAnswers.modify(&mut openapi);
    crate::openapi::IntegerRanges.modify(&mut openapi);

    // Install the recorder before the first request so nothing is missed.
    let _ = platform::metrics::handle();
    let verifier: SharedVerifier = modules.identity.clone();
    let limits = (settings.rate_limit == Switch::On).then(|| RequestLimits {
        limiter: modules.limiter.clone(),
        per_address: Quota::per_second(settings.rate_limit_per_address),
        per_user: Quota::per_second(settings.rate_limit_per_user),
    });

    let mut app = routes
        .merge(
            SwaggerUi::new(DOCS)
                .url("/openapi.json", openapi)
                // Swagger UI would otherwise send the document to
                // validator.swagger.io whenever it is served off localhost.
                .config(Config::default().validator_url("none")),
        )
        .merge(admin::router(admin::Admin {
            identity: modules.identity.clone(),
            rewards: modules.rewards.clone(),
            coupons: modules.commerce.clone(),
            commerce_analytics: modules.commerce_analytics.clone(),
            products: modules.products.clone(),
            orders: modules.orders.clone(),
            waitlist: modules.waitlist.clone(),
            park: modules.park.clone(),
            webhooks: modules.webhooks.clone(),
            dispatcher: modules.dispatcher.clone(),
            secure_cookie: settings.secure_cookie,
        }))
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
            .layer(from_fn(security_headers))
            .layer(map_request(drop_unsafe_request_id))
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
            .layer(from_fn_with_state(
                platform::body::BodyBounds {
                    max_bytes: settings.body_limit_bytes,
                    read_timeout: Duration::from_secs(settings.body_read_timeout_seconds),
                },
                platform::body::bound_body,
            ))
            .layer(from_fn(platform::metrics::track))
            .layer(from_fn_with_state(
                TrustForwardedFor(settings.trust_forwarded_for),
                platform::client::resolve_client_ip,
            ))
            .layer(from_fn_with_state(verifier, platform::authn::authenticate)),
    )
}

/// A caller's request id is echoed and logged only when it is short and of
/// a plain charset; any other is dropped, and a fresh one generated.
async fn drop_unsafe_request_id(mut request: Request) -> Request {
    let safe = request
        .headers()
        .get(REQUEST_ID)
        .map(|id| is_safe_request_id(id.as_bytes()));
    if safe == Some(false) {
        request.headers_mut().remove(REQUEST_ID);
    }
    request
}

fn is_safe_request_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_CHARS
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
}

/// Headers every answer carries: no MIME sniffing, no framing, no referrer;
/// `no-store` on everything but the API page (answers may carry tokens or
/// private data) unless a route chose its own caching; a content policy on
/// the API page.
async fn security_headers(request: Request, next: axum::middleware::Next) -> Response {
    let docs = request.uri().path().starts_with(DOCS);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if docs {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DOCS_CSP),
        );
    } else {
        headers
            .entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
    }
    response
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

/// Origins were checked when the settings were read ([`Settings::load`]).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_request_ids_are_kept() {
        assert!(is_safe_request_id(b"trace-me-42"));
        assert!(is_safe_request_id(
            b"0af7651916cd43dd8448eb211c80319c:b7ad6b71.1_2"
        ));
        assert!(is_safe_request_id(&[b'a'; MAX_REQUEST_ID_CHARS]));
        assert!(!is_safe_request_id(&[b'a'; MAX_REQUEST_ID_CHARS + 1]));
        assert!(!is_safe_request_id(b""));
        assert!(!is_safe_request_id(b"has space"));
        assert!(!is_safe_request_id(b"quote\"d"));
        assert!(!is_safe_request_id("ünïcode".as_bytes()));
    }
}
