//! Routes for reward requests, decisions, eligibility, activity and the wallet.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use kernel::auth::{Reader, Staff};
use kernel::http::{Created, Json, Path, Query};
use kernel::{IdempotentEffect, Page, Principal, Problem, ProblemDetails, UserId};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{State, page};
use crate::model::{EventId, EventRewardId, RewardRequest, RewardRequestId, Wallet};
use crate::service::{
    ActivityReceipt, DecisionRequest, Eligibility, NewActivityRequest, RewardsService,
    status_filter,
};
use crate::store::RequestFilter;

/// The routes that create something for a user, to wrap in the
/// Idempotency-Key layer.
pub(super) fn creating() -> OpenApiRouter<Arc<RewardsService>> {
    OpenApiRouter::new().routes(routes!(request_reward))
}

pub(super) fn routes() -> OpenApiRouter<Arc<RewardsService>> {
    OpenApiRouter::new()
        .routes(routes!(eligibility))
        .routes(routes!(my_requests))
        .routes(routes!(list_requests))
        .routes(routes!(get_request, decide_request))
        .routes(routes!(record_activity))
        .routes(routes!(my_wallet))
}

/// Request an event reward. Every attempt is recorded; the answer says how it went.
#[utoipa::path(post, path = "/events/{id}/rewards/{event_reward_id}/requests", tag = "rewards",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid),
        ("event_reward_id" = String, Path, format = Uuid),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 characters; a retry with the same key replays the first answer"),
    ),
    responses(
        (status = 201, description = "Recorded: `APPROVED` (granted), `PENDING` (holding a unit until staff decide) or `REJECTED` with `reason_code` `EVENT_NOT_ACTIVE`, `CONDITION_NOT_MET` or `OUT_OF_STOCK`", body = RewardRequest),
        (status = 400, description = "Malformed ids", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such event reward (or a draft event, for non-readers)", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "`ALREADY_REQUESTED` (with `request_id`, not recorded again), `REQUEST_IN_PROGRESS` (same Idempotency-Key still running)", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "`IDEMPOTENCY_KEY_REUSED`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 503, description = "The stock gate cannot answer now", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::SignedIn,
    ))]
async fn request_reward(
    axum::extract::State(s): State,
    caller: Principal,
    effect: Option<IdempotentEffect>,
    Path((id, event_reward_id)): Path<(EventId, EventRewardId)>,
) -> Result<Created<RewardRequest>, Problem> {
    Ok(Created(
        s.request_reward(&caller, id, event_reward_id, effect)
            .await?,
    ))
}

/// Whether the caller would get an event reward now, clause by clause. Records nothing.
#[utoipa::path(get, path = "/events/{id}/rewards/{event_reward_id}/eligibility", tag = "rewards",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid), ("event_reward_id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "The explanation", body = Eligibility),
        (status = 400, description = "Malformed ids", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such event reward (or a draft event, for non-readers)", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::SignedIn,
    ))]
async fn eligibility(
    axum::extract::State(s): State,
    caller: Principal,
    Path((id, event_reward_id)): Path<(EventId, EventRewardId)>,
) -> Result<Json<Eligibility>, Problem> {
    Ok(Json(s.eligibility(&caller, id, event_reward_id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct MyRequestsQuery {
    /// Only requests in this status: PENDING, APPROVED or REJECTED.
    #[param(value_type = Option<crate::model::RequestStatus>)]
    status: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// From a previous page's `next_cursor`.
    #[param(min_length = 1)]
    cursor: Option<String>,
}

/// The caller's own reward requests, oldest first.
#[utoipa::path(get, path = "/requests/mine", tag = "rewards", security(("bearer" = [])),
    params(MyRequestsQuery),
    responses(
        (status = 200, description = "A page of requests", body = Page<RewardRequest>),
        (status = 400, description = "Bad cursor", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "`limit` out of range or unknown `status`", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::SignedIn,
    ))]
async fn my_requests(
    axum::extract::State(s): State,
    caller: Principal,
    Query(q): Query<MyRequestsQuery>,
) -> Result<Json<Page<RewardRequest>>, Problem> {
    let page = page(q.limit, q.cursor, "my-requests")?;
    Ok(Json(
        s.my_requests(&caller, q.status.as_deref(), page).await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RequestsQuery {
    /// Only requests in this status: PENDING, APPROVED or REJECTED.
    #[param(value_type = Option<crate::model::RequestStatus>)]
    status: Option<String>,
    /// Only requests on this event.
    #[param(format = Uuid)]
    event_id: Option<String>,
    /// Only requests on this event reward.
    #[param(format = Uuid)]
    event_reward_id: Option<String>,
    /// Only this user's requests.
    #[param(format = Uuid)]
    user_id: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// From a previous page's `next_cursor`.
    #[param(min_length = 1)]
    cursor: Option<String>,
}

fn uuid_param(field: &str, raw: Option<&str>) -> Result<Option<uuid::Uuid>, Problem> {
    raw.map(|raw| {
        uuid::Uuid::parse_str(raw).map_err(|_| Problem::invalid_field(field, "must be a UUID"))
    })
    .transpose()
}

/// Every reward request, filtered (readers), oldest first.
#[utoipa::path(get, path = "/requests", tag = "rewards", security(("bearer" = [])),
    params(RequestsQuery),
    responses(
        (status = 200, description = "A page of requests", body = Page<RewardRequest>),
        (status = 400, description = "Bad cursor", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "`limit` out of range, unknown `status`, or a malformed id", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::ReadersOnly,
    ))]
async fn list_requests(
    axum::extract::State(s): State,
    reader: Reader,
    Query(q): Query<RequestsQuery>,
) -> Result<Json<Page<RewardRequest>>, Problem> {
    let filter = RequestFilter {
        user: uuid_param("user_id", q.user_id.as_deref())?.map(UserId),
        status: status_filter(q.status.as_deref())?,
        event: uuid_param("event_id", q.event_id.as_deref())?.map(EventId),
        event_reward: uuid_param("event_reward_id", q.event_reward_id.as_deref())?
            .map(EventRewardId),
    };
    let page = page(q.limit, q.cursor, "requests")?;
    Ok(Json(s.list_requests(&reader, filter, page).await?))
}

/// One reward request, for its owner or a reader.
#[utoipa::path(get, path = "/requests/{id}", tag = "rewards", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "The request", body = RewardRequest),
        (status = 404, description = "No such request, or someone else's", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::SignedIn,
        kernel::openapi::ById,
    ))]
async fn get_request(
    axum::extract::State(s): State,
    caller: Principal,
    Path(id): Path<RewardRequestId>,
) -> Result<Json<RewardRequest>, Problem> {
    Ok(Json(s.request(&caller, id).await?))
}

/// Decide a `PENDING` request (staff): approval grants the reward, rejection
/// gives its held unit back.
#[utoipa::path(patch, path = "/requests/{id}", tag = "rewards", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    request_body = DecisionRequest,
    responses(
        (status = 200, description = "The decided request", body = RewardRequest),
        (status = 400, description = "Malformed id, JSON or types", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "`INVALID_TRANSITION`: already decided", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "`status` other than APPROVED or REJECTED, a reason over 500 characters, or one with a control character other than a line feed or tab", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::StaffOnly,
    ))]
async fn decide_request(
    axum::extract::State(s): State,
    staff: Staff,
    Path(id): Path<RewardRequestId>,
    Json(body): Json<DecisionRequest>,
) -> Result<Json<RewardRequest>, Problem> {
    Ok(Json(s.decide(&staff, id, body).await?))
}

/// Record custom activity for a user (staff); a repeated `source_id` counts once.
#[utoipa::path(post, path = "/activity", tag = "rewards", security(("bearer" = [])),
    request_body = NewActivityRequest,
    responses(
        (status = 202, description = "Accepted (`duplicate` when the `source_id` was seen before)", body = ActivityReceipt),
        (status = 400, description = "Malformed JSON or types", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "Bad user id, metric, value or source_id", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::StaffOnly,
    ))]
async fn record_activity(
    axum::extract::State(s): State,
    staff: Staff,
    Json(body): Json<NewActivityRequest>,
) -> Result<Response, Problem> {
    let receipt = s.record_activity(&staff, body).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(receipt)).into_response())
}

/// The caller's wallet: points, items and badges granted so far.
#[utoipa::path(get, path = "/me/wallet", tag = "rewards", security(("bearer" = [])),
    responses(
        (status = 200, description = "The wallet", body = Wallet),
        kernel::openapi::SignedIn,
    ))]
async fn my_wallet(
    axum::extract::State(s): State,
    caller: Principal,
) -> Result<Json<Wallet>, Problem> {
    Ok(Json(s.wallet(&caller).await?))
}
