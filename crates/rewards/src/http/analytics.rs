//! Routes for the readers' analytics.

use std::sync::Arc;

use kernel::auth::Reader;
use kernel::http::{Json, Query};
use kernel::{PeriodQuery, Problem, ProblemDetails};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::State;
use crate::service::{EventAnalytics, RewardAnalytics, RewardsService, UserAnalytics};

pub(super) fn routes() -> OpenApiRouter<Arc<RewardsService>> {
    OpenApiRouter::new()
        .routes(routes!(events))
        .routes(routes!(rewards))
        .routes(routes!(users))
}

/// Events per status, and the recent events' rewards and requests
/// (readers). With `from`, only the events running in the period, and their
/// requests made in it.
#[utoipa::path(get, path = "/analytics/events", tag = "analytics", security(("bearer" = [])),
    params(PeriodQuery),
    responses(
        (status = 200, description = "Event analytics", body = EventAnalytics),
        (status = 422, description = "A period out of range", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::ReadersOnly,
    ))]
async fn events(
    axum::extract::State(s): State,
    reader: Reader,
    Query(q): Query<PeriodQuery>,
) -> Result<Json<EventAnalytics>, Problem> {
    Ok(Json(s.event_analytics(&reader, &q).await?))
}

/// Reward requests per status and per day (readers).
#[utoipa::path(get, path = "/analytics/rewards", tag = "analytics", security(("bearer" = [])),
    params(PeriodQuery),
    responses(
        (status = 200, description = "Request analytics", body = RewardAnalytics),
        (status = 422, description = "A period out of range", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::ReadersOnly,
    ))]
async fn rewards(
    axum::extract::State(s): State,
    reader: Reader,
    Query(q): Query<PeriodQuery>,
) -> Result<Json<RewardAnalytics>, Problem> {
    Ok(Json(s.reward_analytics(&reader, &q).await?))
}

/// Users, participation rate, new and active users per day (readers).
#[utoipa::path(get, path = "/analytics/users", tag = "analytics", security(("bearer" = [])),
    params(PeriodQuery),
    responses(
        (status = 200, description = "User analytics", body = UserAnalytics),
        (status = 422, description = "A period out of range", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::ReadersOnly,
    ))]
async fn users(
    axum::extract::State(s): State,
    reader: Reader,
    Query(q): Query<PeriodQuery>,
) -> Result<Json<UserAnalytics>, Problem> {
    Ok(Json(s.user_analytics(&reader, &q).await?))
}
