//! The orders and rides behind the overview's counters, with what to do
//! about each: unknown payments (reconciliation asks the provider; check
//! its dashboard if one stays), pending refunds (the refund retries; a dead
//! letter when it gives up), rides `DOWN` (their lines are paused).

use askama::Template;
use axum::Router;
use axum::extract::{Extension, State};
use axum::response::Response;
use axum::routing::get;
use commerce::analytics::OpenOrder;
use http::StatusCode;
use kernel::{PageRequest, Problem};
use park::model::{Attraction, AttractionFilter, AttractionStatus};

use crate::Admin;
use crate::page::{self, Chrome};
use crate::session::Signed;

/// Rows listed per section, longest waiting first.
const LISTED: u32 = 100;

#[derive(Template)]
#[template(path = "attention.html")]
struct AttentionPage {
    chrome: Chrome,
    unknown_payments: Vec<OpenOrder>,
    pending_refunds: Vec<OpenOrder>,
    rides_down: Vec<Attraction>,
}

async fn attention(State(admin): State<Admin>, Extension(signed): Extension<Signed>) -> Response {
    let down = AttractionFilter {
        status: Some(AttractionStatus::Down),
        ..AttractionFilter::default()
    };
    let page_of = PageRequest {
        limit: LISTED,
        after: None,
    };
    let (orders, rides) = tokio::join!(
        admin.commerce_analytics.open_orders(&signed.reader, LISTED),
        admin.park.list(&down, page_of),
    );
    let (orders, rides) = match (orders.map_err(Problem::from), rides.map_err(Problem::from)) {
        (Ok(orders), Ok(rides)) => (orders, rides),
        (Err(problem), _) | (_, Err(problem)) => return page::problem(problem),
    };
    let (unknown_payments, pending_refunds) = orders.into_iter().partition(|o| o.unknown_payment);
    page::render(
        StatusCode::OK,
        &AttentionPage {
            chrome: Chrome::of(&signed, "/admin"),
            unknown_payments,
            pending_refunds,
            rides_down: rides.items,
        },
    )
}

pub fn routes() -> Router<Admin> {
    Router::new().route("/admin/attention", get(attention))
}
