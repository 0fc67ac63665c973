//! The webhook routes (ADMIN only). Handlers authorise (by extractor
//! type, first, so an anonymous caller gets 401 whatever it sent), parse,
//! call the service and map the result; nothing else.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kernel::auth::Admin;
use kernel::http::{Created, Json, Path, Query};
use kernel::{Page, PageQuery, Problem, ProblemDetails};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::model::{
    Attempt, EndpointChange, EndpointId, EndpointView, EndpointWithSecret, NewEndpoint,
};
use crate::service::{Queued, WebhookService};

/// The `/api/v1` routes of webhooks.
pub fn router(service: Arc<WebhookService>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(create_endpoint, list_endpoints))
        .routes(routes!(get_endpoint, update_endpoint, delete_endpoint))
        .routes(routes!(rotate_secret))
        .routes(routes!(send_test))
        .routes(routes!(deliveries))
        .routes(routes!(replay))
        .with_state(service)
}

type State = axum::extract::State<Arc<WebhookService>>;

/// Register a webhook endpoint (ADMIN). The answer carries the signing
/// secret, shown only here.
#[utoipa::path(post, path = "/webhook-endpoints", tag = "webhooks", security(("bearer" = [])),
    request_body = NewEndpoint,
    responses(
        (status = 201, description = "Registered, with its `whsec_` secret", body = EndpointWithSecret),
        (status = 400, description = "Malformed JSON or wrong types", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "A URL that is not http(s) or reaches a private address, unknown or no event types, a description too long", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::AdminOnly,
    ))]
async fn create_endpoint(
    axum::extract::State(s): State,
    admin: Admin,
    Json(body): Json<NewEndpoint>,
) -> Result<Created<EndpointWithSecret>, Problem> {
    Ok(Created(s.create(&admin, &body).await?))
}

/// List webhook endpoints (ADMIN), without their secrets.
#[utoipa::path(get, path = "/webhook-endpoints", tag = "webhooks", security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of endpoints", body = Page<EndpointView>),
        kernel::openapi::AdminOnly,
        kernel::openapi::Paged,
    ))]
async fn list_endpoints(
    axum::extract::State(s): State,
    admin: Admin,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<EndpointView>>, Problem> {
    let page = q.parse("webhook-endpoints")?;
    Ok(Json(s.list(&admin, page).await?))
}

/// One webhook endpoint (ADMIN), without its secret.
#[utoipa::path(get, path = "/webhook-endpoints/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "The endpoint", body = EndpointView),
        (status = 404, description = "No such endpoint", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::AdminOnly,
        kernel::openapi::ById,
    ))]
async fn get_endpoint(
    axum::extract::State(s): State,
    admin: Admin,
    Path(id): Path<EndpointId>,
) -> Result<Json<EndpointView>, Problem> {
    Ok(Json(s.get(&admin, id).await?))
}

/// Change a webhook endpoint (ADMIN): URL, event types, description, or
/// `disabled` (false enables one a `410 Gone` disabled).
#[utoipa::path(patch, path = "/webhook-endpoints/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    request_body = EndpointChange,
    responses(
        (status = 200, description = "The endpoint as changed", body = EndpointView),
        (status = 400, description = "Malformed id or JSON", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::AdminOnly,
    ))]
async fn update_endpoint(
    axum::extract::State(s): State,
    admin: Admin,
    Path(id): Path<EndpointId>,
    Json(body): Json<EndpointChange>,
) -> Result<Json<EndpointView>, Problem> {
    Ok(Json(s.update(&admin, id, &body).await?))
}

/// Remove a webhook endpoint with its queue and delivery log (ADMIN).
#[utoipa::path(delete, path = "/webhook-endpoints/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such endpoint", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::AdminOnly,
        kernel::openapi::ById,
    ))]
async fn delete_endpoint(
    axum::extract::State(s): State,
    admin: Admin,
    Path(id): Path<EndpointId>,
) -> Result<Response, Problem> {
    s.delete(&admin, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A new signing secret (ADMIN); the old one keeps signing beside it for
/// 24 hours, so `webhook-signature` carries both meanwhile.
#[utoipa::path(post, path = "/webhook-endpoints/{id}/rotate-secret", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "The endpoint with its new secret", body = EndpointWithSecret),
        (status = 404, description = "No such endpoint", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::AdminOnly,
        kernel::openapi::ById,
    ))]
async fn rotate_secret(
    axum::extract::State(s): State,
    admin: Admin,
    Path(id): Path<EndpointId>,
) -> Result<Json<EndpointWithSecret>, Problem> {
    Ok(Json(s.rotate_secret(&admin, id).await?))
}

/// Send a `webhook.test` event to the endpoint (ADMIN).
#[utoipa::path(post, path = "/webhook-endpoints/{id}/test", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 202, description = "Queued", body = Queued),
        (status = 404, description = "No such endpoint", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::AdminOnly,
        kernel::openapi::ById,
    ))]
async fn send_test(
    axum::extract::State(s): State,
    admin: Admin,
    Path(id): Path<EndpointId>,
) -> Result<Response, Problem> {
    let queued = s.send_test(&admin, id).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(queued)).into_response())
}

/// The endpoint's delivery log (ADMIN): every attempt, oldest first, with
/// its status code, duration, error and next retry.
#[utoipa::path(get, path = "/webhook-endpoints/{id}/deliveries", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid), PageQuery),
    responses(
        (status = 200, description = "A page of attempts", body = Page<Attempt>),
        (status = 400, description = "Malformed id or bad cursor", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "`limit` out of range", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::AdminOnly,
    ))]
async fn deliveries(
    axum::extract::State(s): State,
    admin: Admin,
    Path(id): Path<EndpointId>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<Attempt>>, Problem> {
    let page = q.parse("webhook-deliveries")?;
    Ok(Json(s.deliveries(&admin, id, page).await?))
}

/// Send a delivery's message again, under the same `webhook-id` and with a
/// fresh retry window (ADMIN). `id` is an attempt's `id` from the delivery
/// log, or its `webhook_id`.
#[utoipa::path(post, path = "/webhook-deliveries/{id}/replay", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 202, description = "Queued again", body = Queued),
        (status = 404, description = "No such delivery", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::AdminOnly,
    ))]
async fn replay(
    axum::extract::State(s): State,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let queued = s.replay(&admin, &id).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(queued)).into_response())
}
