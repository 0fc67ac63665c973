//! The ticket routes.

use std::sync::Arc;

use kernel::http::{Json, Query};
use kernel::{Page, PageQuery, Principal, Problem};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::Ticket;
use super::store::TicketStore;
use crate::error::CommerceError;

/// The `/api/v1` routes of tickets.
pub fn router(store: Arc<dyn TicketStore>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(my_tickets))
        .with_state(store)
}

/// The caller's tickets, oldest first.
#[utoipa::path(get, path = "/tickets/mine", tag = "tickets", security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of the caller's tickets", body = Page<Ticket>),
        kernel::openapi::SignedIn,
        kernel::openapi::Paged,
    ))]
async fn my_tickets(
    axum::extract::State(store): axum::extract::State<Arc<dyn TicketStore>>,
    principal: Principal,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<Ticket>>, Problem> {
    let page = q.parse("tickets")?;
    let rows = store
        .of_user(principal.user_id, page)
        .await
        .map_err(CommerceError::from)?;
    Ok(Json(Page::from_rows(rows, page, "tickets", |t| t.id.0)))
}
