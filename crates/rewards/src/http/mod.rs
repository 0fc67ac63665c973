//! The rewards module's routes. Handlers parse, authorise (by extractor
//! type), call the service and map the result; nothing else. This file holds
//! the catalogue's routes; `requests` and `analytics` the rest.

mod analytics;
mod requests;

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use kernel::auth::{Admin, Reader, Staff};
use kernel::http::{Created, Json, Path, Query};
use kernel::{Page, PageQuery, Principal, Problem, ProblemDetails};
use platform::Idempotency;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::model::{Event, EventId, EventReward, EventRewardId, Reward, RewardId};
use crate::service::{
    EventPatch, EventRewardPatch, NewEventRequest, NewEventRewardRequest, RewardsService,
};

/// The `/api/v1` routes of rewards; `idempotency` guards the routes that
/// create something for a user.
pub fn router(service: Arc<RewardsService>, idempotency: Idempotency) -> OpenApiRouter {
    let creating = requests::creating().route_layer(axum::middleware::from_fn_with_state(
        idempotency,
        platform::idempotency::layer,
    ));
    OpenApiRouter::new()
        .merge(creating)
        .merge(requests::routes())
        .merge(analytics::routes())
        .routes(routes!(create_event, list_events))
        .routes(routes!(get_event, update_event, delete_event))
        .routes(routes!(create_reward, list_rewards))
        .routes(routes!(get_reward))
        .routes(routes!(add_event_reward, list_event_rewards))
        .routes(routes!(update_event_reward, delete_event_reward))
        .with_state(service)
}

type State = axum::extract::State<Arc<RewardsService>>;

/// The reader proof of an optional caller: drafts are shown only with it.
fn reader(principal: Option<Principal>) -> Option<Reader> {
    principal.and_then(Reader::check)
}

fn page(
    limit: Option<i64>,
    cursor: Option<String>,
    scope: &str,
) -> Result<kernel::PageRequest, Problem> {
    PageQuery { limit, cursor }.parse(scope)
}

/// Create an event (staff).
#[utoipa::path(post, path = "/events", tag = "rewards", security(("bearer" = [])),
    request_body = NewEventRequest,
    responses(
        (status = 201, description = "Created; `DRAFT` unless `status` is `ACTIVE`", body = Event),
        (status = 400, description = "Malformed JSON or wrong types", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "Bad name, `ends_at <= starts_at`, or a status other than DRAFT or ACTIVE", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::StaffOnly,
    ))]
async fn create_event(
    axum::extract::State(s): State,
    staff: Staff,
    Json(body): Json<NewEventRequest>,
) -> Result<Created<Event>, Problem> {
    Ok(Created(s.create_event(&staff, body).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct EventsQuery {
    /// Only events in this status (`DRAFT` shows nothing to non-readers).
    #[param(value_type = Option<crate::model::EventStatus>)]
    status: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// From a previous page's `next_cursor`.
    #[param(min_length = 1)]
    cursor: Option<String>,
}

/// List events; `DRAFT` ones only for readers.
#[utoipa::path(get, path = "/events", tag = "rewards", security((), ("bearer" = [])),
    params(EventsQuery),
    responses(
        (status = 200, description = "A page of events", body = Page<Event>),
        (status = 400, description = "Bad cursor", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 401, description = "A bad token was sent", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "`limit` out of range or unknown `status`", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
async fn list_events(
    axum::extract::State(s): State,
    principal: Option<Principal>,
    Query(q): Query<EventsQuery>,
) -> Result<Json<Page<Event>>, Problem> {
    let page = page(q.limit, q.cursor, "events")?;
    let reader = reader(principal);
    Ok(Json(
        s.list_events(reader.as_ref(), q.status.as_deref(), None, page)
            .await?,
    ))
}

/// One event; a `DRAFT` one is 404 unless the caller is a reader.
#[utoipa::path(get, path = "/events/{id}", tag = "rewards", security((), ("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "The event", body = Event),
        (status = 401, description = "A bad token was sent", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such event (or a draft, for non-readers)", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::ById,
    ))]
async fn get_event(
    axum::extract::State(s): State,
    principal: Option<Principal>,
    Path(id): Path<EventId>,
) -> Result<Json<Event>, Problem> {
    Ok(Json(s.event(reader(principal).as_ref(), id).await?))
}

/// Change an event (staff): name, description, period, status.
#[utoipa::path(patch, path = "/events/{id}", tag = "rewards", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    request_body = EventPatch,
    responses(
        (status = 200, description = "The changed event", body = Event),
        (status = 400, description = "Malformed id, JSON or types", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such event", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "`INVALID_TRANSITION`: the lifecycle does not allow the move; `EVENT_CHANGED`: changed meanwhile", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "Bad name, unknown status, or `ends_at <= starts_at`", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::StaffOnly,
    ))]
async fn update_event(
    axum::extract::State(s): State,
    staff: Staff,
    Path(id): Path<EventId>,
    Json(body): Json<EventPatch>,
) -> Result<Json<Event>, Problem> {
    Ok(Json(s.update_event(&staff, id, body).await?))
}

/// Delete a `DRAFT` event and its event rewards (ADMIN).
#[utoipa::path(delete, path = "/events/{id}", tag = "rewards", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such event", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "`EVENT_NOT_DRAFT`", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::AdminOnly,
        kernel::openapi::ById,
    ))]
async fn delete_event(
    axum::extract::State(s): State,
    admin: Admin,
    Path(id): Path<EventId>,
) -> Result<Response, Problem> {
    s.delete_event(&admin, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Add a reward to the catalogue (staff). The body is `name`, `type` and
/// that type's fields: `POINT` `points`; `ITEM` `item_id`, `quantity`;
/// `COUPON` `coupon_campaign_id`; `BADGE` `badge_id`.
#[utoipa::path(post, path = "/rewards", tag = "rewards", security(("bearer" = [])),
    request_body(content = Object, description = "`{\"name\", \"type\", …the type's fields}`"),
    responses(
        (status = 201, description = "Created", body = Reward),
        (status = 400, description = "Malformed JSON or not an object", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "Missing, invalid or foreign fields for the type", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::StaffOnly,
    ))]
async fn create_reward(
    axum::extract::State(s): State,
    staff: Staff,
    Json(body): Json<Map<String, Value>>,
) -> Result<Created<Reward>, Problem> {
    Ok(Created(s.create_reward(&staff, &body).await?))
}

/// List the reward catalogue (readers).
#[utoipa::path(get, path = "/rewards", tag = "rewards", security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of rewards", body = Page<Reward>),
        kernel::openapi::ReadersOnly,
        kernel::openapi::Paged,
    ))]
async fn list_rewards(
    axum::extract::State(s): State,
    reader: Reader,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<Reward>>, Problem> {
    let page = q.parse("rewards")?;
    Ok(Json(s.list_rewards(&reader, page).await?))
}

/// One catalogue reward (readers).
#[utoipa::path(get, path = "/rewards/{id}", tag = "rewards", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "The reward", body = Reward),
        (status = 404, description = "No such reward", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::ReadersOnly,
        kernel::openapi::ById,
    ))]
async fn get_reward(
    axum::extract::State(s): State,
    reader: Reader,
    Path(id): Path<RewardId>,
) -> Result<Json<Reward>, Problem> {
    Ok(Json(s.reward(&reader, id).await?))
}

/// Attach a catalogue reward to an event (staff).
#[utoipa::path(post, path = "/events/{id}/rewards", tag = "rewards", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    request_body = NewEventRewardRequest,
    responses(
        (status = 201, description = "Created", body = EventReward),
        (status = 400, description = "Malformed id, JSON or types", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such event", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "Unknown `reward_id`, bad condition, quantity or per_user_limit", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::StaffOnly,
    ))]
async fn add_event_reward(
    axum::extract::State(s): State,
    staff: Staff,
    Path(id): Path<EventId>,
    Json(body): Json<NewEventRewardRequest>,
) -> Result<Created<EventReward>, Problem> {
    Ok(Created(s.add_event_reward(&staff, id, body).await?))
}

/// An event's rewards, visible as the event is.
#[utoipa::path(get, path = "/events/{id}/rewards", tag = "rewards", security((), ("bearer" = [])),
    params(("id" = String, Path, format = Uuid), PageQuery),
    responses(
        (status = 200, description = "A page of event rewards", body = Page<EventReward>),
        (status = 400, description = "Malformed id or bad cursor", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 401, description = "A bad token was sent", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such event (or a draft, for non-readers)", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "`limit` out of range", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
async fn list_event_rewards(
    axum::extract::State(s): State,
    principal: Option<Principal>,
    Path(id): Path<EventId>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<EventReward>>, Problem> {
    let page = q.parse("event-rewards")?;
    Ok(Json(
        s.event_rewards(reader(principal).as_ref(), id, page)
            .await?,
    ))
}

/// Change an event reward (staff); `remaining` moves with `quantity`.
#[utoipa::path(patch, path = "/events/{id}/rewards/{event_reward_id}", tag = "rewards", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid), ("event_reward_id" = String, Path, format = Uuid)),
    request_body = EventRewardPatch,
    responses(
        (status = 200, description = "The changed event reward", body = EventReward),
        (status = 400, description = "Malformed ids, JSON or types", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such event reward on this event", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "`QUANTITY_BELOW_TAKEN`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "Bad condition, quantity or per_user_limit", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::StaffOnly,
    ))]
async fn update_event_reward(
    axum::extract::State(s): State,
    staff: Staff,
    Path((id, event_reward_id)): Path<(EventId, EventRewardId)>,
    Json(body): Json<EventRewardPatch>,
) -> Result<Json<EventReward>, Problem> {
    Ok(Json(
        s.update_event_reward(&staff, id, event_reward_id, body)
            .await?,
    ))
}

/// Remove a reward from an event (staff).
#[utoipa::path(delete, path = "/events/{id}/rewards/{event_reward_id}", tag = "rewards", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid), ("event_reward_id" = String, Path, format = Uuid)),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "Malformed ids", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such event reward on this event", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::StaffOnly,
    ))]
async fn delete_event_reward(
    axum::extract::State(s): State,
    staff: Staff,
    Path((id, event_reward_id)): Path<(EventId, EventRewardId)>,
) -> Result<Response, Problem> {
    s.delete_event_reward(&staff, id, event_reward_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
