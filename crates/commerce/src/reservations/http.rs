//! The reservation routes. Holding honours `Idempotency-Key`.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use kernel::http::{Created, Json, Path, Query};
use kernel::{IdempotentEffect, Page, PageQuery, Principal, Problem, ProblemDetails};
use platform::Idempotency;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::{NewReservation, Reservation, ReservationId};
use super::service::ReservationService;
use crate::products::ProductId;

/// The `/api/v1` routes of reservations.
pub fn router(service: Arc<ReservationService>, idempotency: Idempotency) -> OpenApiRouter {
    let hold = OpenApiRouter::new()
        .routes(routes!(hold))
        .route_layer(from_fn_with_state(
            idempotency,
            platform::idempotency::layer,
        ));
    OpenApiRouter::new()
        .routes(routes!(my_reservations))
        .routes(routes!(get_reservation, release))
        .merge(hold)
        .with_state(service)
}

type State = axum::extract::State<Arc<ReservationService>>;

/// Hold units of a product, all or none, for the product's `hold_seconds`.
/// Send an `Idempotency-Key` to retry safely.
#[utoipa::path(post, path = "/products/{id}/reservations", tag = "reservations",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 characters; the same key within 24 h replays the first answer"),
    ),
    request_body = NewReservation,
    responses(
        (status = 201, description = "Held", body = Reservation),
        (status = 400, description = "Malformed JSON or wrong types", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "`SALE_NOT_OPEN`, `SOLD_OUT`, `LIMIT_REACHED`, or `REQUEST_IN_PROGRESS` for a key still being answered", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "A quantity under 1 or past any stock, `IDEMPOTENCY_KEY_REUSED`, or a malformed key", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 503, description = "The stock gate cannot answer", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::SignedIn,
        kernel::openapi::ById,
    ))]
async fn hold(
    axum::extract::State(s): State,
    principal: Principal,
    effect: Option<IdempotentEffect>,
    Path(id): Path<ProductId>,
    Json(body): Json<NewReservation>,
) -> Result<Created<Reservation>, Problem> {
    Ok(Created(s.hold(principal.user_id, id, &body, effect).await?))
}

/// The caller's reservations, oldest first.
#[utoipa::path(get, path = "/reservations/mine", tag = "reservations", security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of the caller's reservations", body = Page<Reservation>),
        kernel::openapi::SignedIn,
        kernel::openapi::Paged,
    ))]
async fn my_reservations(
    axum::extract::State(s): State,
    principal: Principal,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<Reservation>>, Problem> {
    let page = q.parse("reservations")?;
    Ok(Json(s.mine(principal.user_id, page).await?))
}

/// One reservation: the owner's, or any for readers.
#[utoipa::path(get, path = "/reservations/{id}", tag = "reservations", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "The reservation", body = Reservation),
        (status = 403, description = "Another user's reservation", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such reservation", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::SignedIn,
        kernel::openapi::ById,
    ))]
async fn get_reservation(
    axum::extract::State(s): State,
    principal: Principal,
    Path(id): Path<ReservationId>,
) -> Result<Json<Reservation>, Problem> {
    Ok(Json(s.reservation(&principal, id).await?))
}

/// Let a `HELD` reservation go (owner): `RELEASED`, its units back on sale.
#[utoipa::path(delete, path = "/reservations/{id}", tag = "reservations", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 204, description = "Released"),
        (status = 403, description = "Another user's reservation", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such reservation", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "`RESERVATION_NOT_HELD`", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::SignedIn,
        kernel::openapi::ById,
    ))]
async fn release(
    axum::extract::State(s): State,
    principal: Principal,
    Path(id): Path<ReservationId>,
) -> Result<StatusCode, Problem> {
    s.release(&principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
