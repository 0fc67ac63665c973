//! Routes for the readers' analytics.

use std::sync::Arc;

use kernel::auth::Reader;
use kernel::http::{Json, Query};
use kernel::{Problem, ProblemDetails};
use serde::Deserialize;
use utoipa::IntoParams;
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Timeline {
    /// Days of timeline ending today (UTC), 1 to 366 (default 30).
    #[param(minimum = 1, maximum = 366)]
    days: Option<i64>,
}

/// Events per status, and the recent events' rewards and requests (readers).
#[utoipa::path(get, path = "/analytics/events", tag = "analytics", security(("bearer" = [])),
    responses(
        (status = 200, description = "Event analytics", body = EventAnalytics),
        kernel::openapi::ReadersOnly,
    ))]
async fn events(
    axum::extract::State(s): State,
    reader: Reader,
) -> Result<Json<EventAnalytics>, Problem> {
    Ok(Json(s.event_analytics(&reader).await?))
}

/// Reward requests per status and per day (readers).
#[utoipa::path(get, path = "/analytics/rewards", tag = "analytics", security(("bearer" = [])),
    params(Timeline),
    responses(
        (status = 200, description = "Request analytics", body = RewardAnalytics),
        (status = 422, description = "`days` out of range", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::ReadersOnly,
    ))]
async fn rewards(
    axum::extract::State(s): State,
    reader: Reader,
    Query(q): Query<Timeline>,
) -> Result<Json<RewardAnalytics>, Problem> {
    Ok(Json(s.reward_analytics(&reader, q.days).await?))
}

/// Users, participation rate, new and active users per day (readers).
#[utoipa::path(get, path = "/analytics/users", tag = "analytics", security(("bearer" = [])),
    params(Timeline),
    responses(
        (status = 200, description = "User analytics", body = UserAnalytics),
        (status = 422, description = "`days` out of range", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::ReadersOnly,
    ))]
async fn users(
    axum::extract::State(s): State,
    reader: Reader,
    Query(q): Query<Timeline>,
) -> Result<Json<UserAnalytics>, Problem> {
    Ok(Json(s.user_analytics(&reader, q.days).await?))
}
