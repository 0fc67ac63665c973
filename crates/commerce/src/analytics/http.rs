//! The route of commerce's analytics.

use std::sync::Arc;

use kernel::auth::Reader;
use kernel::http::{Json, Query};
use kernel::{PeriodQuery, Problem, ProblemDetails};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::CommerceAnalytics;
use super::service::CommerceAnalyticsService;

/// The `/api/v1` route of commerce's analytics.
pub fn router(service: Arc<CommerceAnalyticsService>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(analytics))
        .with_state(service)
}

/// Coupons issued and granted per campaign (the 100 most recent campaigns
/// first) and issued over time, sales per product, orders per status per
/// day (readers).
#[utoipa::path(get, path = "/analytics/commerce", tag = "analytics", security(("bearer" = [])),
    params(PeriodQuery),
    responses(
        (status = 200, description = "Commerce analytics", body = CommerceAnalytics),
        (status = 422, description = "A period out of range", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::ReadersOnly,
    ))]
async fn analytics(
    axum::extract::State(s): axum::extract::State<Arc<CommerceAnalyticsService>>,
    reader: Reader,
    Query(q): Query<PeriodQuery>,
) -> Result<Json<CommerceAnalytics>, Problem> {
    Ok(Json(s.analytics(&reader, &q).await?))
}
