//! What needs attention now: pending reward requests and dead letters.

use askama::Template;
use axum::Router;
use axum::extract::{Extension, State};
use axum::response::Response;
use axum::routing::get;
use http::StatusCode;
use kernel::PageRequest;
use rewards::model::RequestStatus;
use rewards::store::RequestFilter;

use crate::Admin;
use crate::page::{self, Chrome};
use crate::session::Signed;

/// Counted up to this many; more shows as "100+".
const COUNT_UP_TO: u32 = 100;

#[derive(Template)]
#[template(path = "overview.html")]
struct Overview {
    chrome: Chrome,
    pending: String,
    dead_letters: String,
}

fn counted(rows: usize, more: bool) -> String {
    if more {
        format!("{rows}+")
    } else {
        rows.to_string()
    }
}

async fn overview(State(admin): State<Admin>, Extension(signed): Extension<Signed>) -> Response {
    let page_of = PageRequest {
        limit: COUNT_UP_TO,
        after: None,
    };
    let filter = RequestFilter {
        status: Some(RequestStatus::Pending),
        ..RequestFilter::default()
    };
    let pending = match admin
        .rewards
        .list_requests(&signed.reader, filter, page_of)
        .await
    {
        Ok(p) => counted(p.items.len(), p.next_cursor.is_some()),
        Err(e) => return page::problem(e.into()),
    };
    let dead = match admin.dispatcher.dead_letters(page_of).await {
        Ok(rows) => counted(
            rows.len().min(COUNT_UP_TO as usize),
            rows.len() > COUNT_UP_TO as usize,
        ),
        Err(e) => return page::problem(e.into()),
    };
    page::render(
        StatusCode::OK,
        &Overview {
            chrome: Chrome::of(&signed, "/admin"),
            pending,
            dead_letters: dead,
        },
    )
}

pub fn routes() -> Router<Admin> {
    Router::new().route("/admin", get(overview))
}
