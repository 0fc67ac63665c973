//! The dead-letter routes, outside `/api/v1`: readers list, staff replay
//! and discard.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use kernel::auth::{Reader, Staff};
use kernel::http::{Json, Path, Query};
use kernel::{Page, PageQuery, Problem, ProblemDetails};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::BusError;
use crate::inbox::{DeadLetter, Dispatcher};

/// `/admin-api/dead-letters…`
pub fn router(dispatcher: Arc<Dispatcher>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(list_dead_letters))
        .routes(routes!(replay_dead_letter))
        .routes(routes!(discard_dead_letter))
        .with_state(dispatcher)
}

impl From<BusError> for Problem {
    fn from(e: BusError) -> Self {
        match e {
            BusError::Database(ref cause) => Self::database(cause),
            BusError::Transport(_) => Self::unavailable(&e),
            BusError::Payload(_) => Self::internal(&e),
        }
    }
}

/// Deliveries that exhausted their attempts (readers).
#[utoipa::path(get, path = "/admin-api/dead-letters", tag = "bus", security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of dead letters, oldest first", body = Page<DeadLetter>),
        (status = 403, description = "Not staff or auditor", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::SignedIn,
    ))]
async fn list_dead_letters(
    State(dispatcher): State<Arc<Dispatcher>>,
    _: Reader,
    Query(query): Query<PageQuery>,
) -> Result<Json<Page<DeadLetter>>, Problem> {
    let page = query.parse("dead-letters")?;
    let rows = dispatcher.dead_letters(page).await?;
    Ok(Json(Page::from_rows(rows, page, "dead-letters", |d| d.id)))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Replayed {
    id: Uuid,
    replayed: bool,
}

/// Puts a dead letter back in line with fresh attempts (staff).
#[utoipa::path(post, path = "/admin-api/dead-letters/{id}/replay", tag = "bus", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "Queued for delivery again", body = Replayed),
        (status = 403, description = "Not staff", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No dead letter with that id", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
async fn replay_dead_letter(
    State(dispatcher): State<Arc<Dispatcher>>,
    _: Staff,
    Path(id): Path<Uuid>,
) -> Result<Json<Replayed>, Problem> {
    if dispatcher.replay(id).await? {
        Ok(Json(Replayed { id, replayed: true }))
    } else {
        Err(Problem::not_found("dead letter"))
    }
}

/// Gives up on a dead letter for good (staff): it leaves the list and is
/// never delivered; the message, if it arrives again, is still a duplicate.
#[utoipa::path(delete, path = "/admin-api/dead-letters/{id}", tag = "bus", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 204, description = "Discarded"),
        (status = 404, description = "No dead letter with that id", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::StaffOnly,
    ))]
async fn discard_dead_letter(
    State(dispatcher): State<Arc<Dispatcher>>,
    _: Staff,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, Problem> {
    if dispatcher.discard(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found("dead letter"))
    }
}
