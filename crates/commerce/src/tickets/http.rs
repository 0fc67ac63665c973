//! The ticket routes.

use std::sync::Arc;

use kernel::auth::Staff;
use kernel::http::{Json, Query};
use kernel::{Page, PageQuery, Principal, Problem, ProblemDetails};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::{CheckIn, NewCheckIn, Ticket};
use super::service::TicketService;

/// The `/api/v1` routes of tickets.
pub fn router(service: Arc<TicketService>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(my_tickets))
        .routes(routes!(check_in))
        .with_state(service)
}

type State = axum::extract::State<Arc<TicketService>>;

/// The caller's tickets, oldest first.
#[utoipa::path(get, path = "/tickets/mine", tag = "tickets", security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of the caller's tickets", body = Page<Ticket>),
        kernel::openapi::SignedIn,
        kernel::openapi::Paged,
    ))]
async fn my_tickets(
    axum::extract::State(s): State,
    principal: Principal,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<Ticket>>, Problem> {
    let page = q.parse("tickets")?;
    Ok(Json(s.mine(principal.user_id, page).await?))
}

/// Redeem a ticket at the door (staff): `OK` once, then `ALREADY_USED` with
/// the first time; `VOID` for a voided ticket, `UNKNOWN` for no ticket. The
/// same `nonce` again replays the first answer.
#[utoipa::path(post, path = "/check-ins", tag = "tickets", security(("bearer" = [])),
    request_body = NewCheckIn,
    responses(
        (status = 200, description = "What the scan found", body = CheckIn),
        (status = 422, description = "A code or nonce empty, too long or with control characters", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::StaffOnly,
    ))]
async fn check_in(
    axum::extract::State(s): State,
    staff: Staff,
    Json(body): Json<NewCheckIn>,
) -> Result<Json<CheckIn>, Problem> {
    Ok(Json(s.check_in(&staff, &body).await?))
}
