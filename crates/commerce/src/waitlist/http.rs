//! The waiting-list routes.

use std::sync::Arc;

use axum::http::StatusCode;
use kernel::auth::Reader;
use kernel::http::{Created, Json, Path, Query};
use kernel::{Page, PageQuery, Principal, Problem, ProblemDetails};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::{NewEntry, WaitingListEntry};
use super::service::WaitlistService;
use crate::products::ProductId;

/// The `/api/v1` routes of waiting lists.
pub fn router(service: Arc<WaitlistService>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(join, list))
        .routes(routes!(mine, leave))
        .with_state(service)
}

type State = axum::extract::State<Arc<WaitlistService>>;

/// Wait for units of a sold-out product. When units come back, the first
/// entry they fit gets a `HELD` reservation of its own and an email.
#[utoipa::path(post, path = "/products/{id}/waiting-list", tag = "waiting-lists",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    request_body = NewEntry,
    responses(
        (status = 201, description = "On the list, `WAITING`, with its rank", body = WaitingListEntry),
        (status = 400, description = "Malformed JSON or wrong types", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "`NOT_SOLD_OUT` (hold them instead), `ALREADY_WAITING`, `LIMIT_REACHED`, `SALE_NOT_OPEN`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "A quantity under 1 or past any stock", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 503, description = "The stock gate cannot answer", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::SignedIn,
        kernel::openapi::ById,
    ))]
async fn join(
    axum::extract::State(s): State,
    principal: Principal,
    Path(id): Path<ProductId>,
    Json(body): Json<NewEntry>,
) -> Result<Created<WaitingListEntry>, Problem> {
    Ok(Created(s.join(principal.user_id, id, &body).await?))
}

/// The product's waiting list in join order (readers).
#[utoipa::path(get, path = "/products/{id}/waiting-list", tag = "waiting-lists",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid), PageQuery),
    responses(
        (status = 200, description = "A page of entries, `WAITING` ones with their rank", body = Page<WaitingListEntry>),
        (status = 404, description = "No such product", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::ReadersOnly,
        kernel::openapi::ById,
        kernel::openapi::Paged,
    ))]
async fn list(
    axum::extract::State(s): State,
    reader: Reader,
    Path(id): Path<ProductId>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<WaitingListEntry>>, Problem> {
    let page = q.parse("waiting-list")?;
    Ok(Json(s.list(&reader, id, page).await?))
}

/// The caller's latest entry for the product, with its live rank.
#[utoipa::path(get, path = "/products/{id}/waiting-list/me", tag = "waiting-lists",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "The caller's entry", body = WaitingListEntry),
        (status = 404, description = "The caller never joined this list", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::SignedIn,
        kernel::openapi::ById,
    ))]
async fn mine(
    axum::extract::State(s): State,
    principal: Principal,
    Path(id): Path<ProductId>,
) -> Result<Json<WaitingListEntry>, Problem> {
    Ok(Json(s.mine(principal.user_id, id).await?))
}

/// Leave the list (`LEFT`); an offer not yet ordered is given up and its
/// units go to the next entry.
#[utoipa::path(delete, path = "/products/{id}/waiting-list/me", tag = "waiting-lists",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 204, description = "Left"),
        (status = 404, description = "The caller is not waiting nor holding an offer", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::SignedIn,
        kernel::openapi::ById,
    ))]
async fn leave(
    axum::extract::State(s): State,
    principal: Principal,
    Path(id): Path<ProductId>,
) -> Result<StatusCode, Problem> {
    s.leave(principal.user_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
