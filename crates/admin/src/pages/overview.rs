//! What needs attention now — pending reward requests, dead letters,
//! unknown payments, pending refunds, rides `DOWN` — as counters that
//! refresh themselves, each linking to where it is handled; and the charts
//! over one selected period.

use askama::Template;
use axum::Router;
use axum::extract::{Extension, Query, State};
use axum::response::Response;
use axum::routing::get;
use http::StatusCode;
use kernel::{PageRequest, Problem};
use park::model::{AttractionFilter, AttractionStatus};
use rewards::model::RequestStatus;
use rewards::store::RequestFilter;
use time::OffsetDateTime;

use super::charts::{self, Chart, RANGES, Range};
use crate::Admin;
use crate::page::{self, Chrome};
use crate::session::Signed;

/// Counted up to this many; more shows as "100+".
const COUNT_UP_TO: u32 = 100;
/// Seconds between refreshes of the counters.
const REFRESH_SECONDS: u32 = 5;

/// One counter: how many, of what, and where it is handled.
pub struct Item {
    pub id: &'static str,
    pub count: String,
    /// Anything to do (then it is drawn as needing attention).
    pub any: bool,
    pub what: &'static str,
    pub href: &'static str,
}

/// The counters alone: what each refresh swaps in.
#[derive(Template)]
#[template(path = "attention_live.html")]
struct Live {
    items: Vec<Item>,
    refresh_seconds: u32,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct Overview {
    chrome: Chrome,
    live: Live,
    ranges: [(&'static str, &'static str); 4],
    range: &'static str,
    from: String,
    to: String,
    query_string: String,
    charts: Vec<Chart>,
}

fn counted(rows: usize, more: bool) -> String {
    if more {
        format!("{rows}+")
    } else {
        rows.to_string()
    }
}

fn capped(n: i64) -> String {
    if n > i64::from(COUNT_UP_TO) {
        format!("{COUNT_UP_TO}+")
    } else {
        n.to_string()
    }
}

async fn items(admin: &Admin, signed: &Signed) -> Result<Vec<Item>, Problem> {
    let page_of = PageRequest {
        limit: COUNT_UP_TO,
        after: None,
    };
    let filter = RequestFilter {
        status: Some(RequestStatus::Pending),
        ..RequestFilter::default()
    };
    let down = AttractionFilter {
        status: Some(AttractionStatus::Down),
        ..AttractionFilter::default()
    };
    let (pending, dead, open, rides) = tokio::join!(
        admin.rewards.list_requests(&signed.reader, filter, page_of),
        admin.dispatcher.dead_letters(page_of),
        admin.commerce_analytics.open_issues(),
        admin.park.list(&down, page_of),
    );
    let pending = pending.map_err(Problem::from)?;
    let dead = dead.map_err(Problem::from)?;
    let open = open.map_err(Problem::from)?;
    let rides = rides.map_err(Problem::from)?;
    let dead_count = dead.len().min(COUNT_UP_TO as usize);
    Ok(vec![
        Item {
            id: "pending",
            count: counted(pending.items.len(), pending.next_cursor.is_some()),
            any: !pending.items.is_empty(),
            what: "reward requests waiting for a decision",
            href: "/admin/requests?status=PENDING",
        },
        Item {
            id: "dead-letters",
            count: counted(dead_count, dead.len() > COUNT_UP_TO as usize),
            any: !dead.is_empty(),
            what: "dead letters on the bus",
            href: "/admin/dead-letters",
        },
        Item {
            id: "unknown-payments",
            count: capped(open.unknown_payments),
            any: open.unknown_payments > 0,
            what: "payments whose answer is unknown",
            href: "/admin/attention#unknown-payments",
        },
        Item {
            id: "pending-refunds",
            count: capped(open.pending_refunds),
            any: open.pending_refunds > 0,
            what: "refunds not yet given back",
            href: "/admin/attention#pending-refunds",
        },
        Item {
            id: "rides-down",
            count: counted(rides.items.len(), rides.next_cursor.is_some()),
            any: !rides.items.is_empty(),
            what: "rides DOWN",
            href: "/admin/attention#rides-down",
        },
    ])
}

async fn overview(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Query(range): Query<Range>,
) -> Response {
    let selected = match range.select(OffsetDateTime::now_utc()) {
        Ok(selected) => selected,
        Err(problem) => return page::problem(problem),
    };
    let (items, charts) = tokio::join!(
        items(&admin, &signed),
        charts::gather(&admin, &signed, &selected.query)
    );
    let (items, charts) = match (items, charts) {
        (Ok(items), Ok(charts)) => (items, charts),
        (Err(problem), _) | (_, Err(problem)) => return page::problem(problem),
    };
    page::render(
        StatusCode::OK,
        &Overview {
            chrome: Chrome::of(&signed, "/admin"),
            live: Live {
                items,
                refresh_seconds: REFRESH_SECONDS,
            },
            ranges: RANGES,
            range: selected.range,
            from: selected.from,
            to: selected.to,
            query_string: selected.query_string,
            charts,
        },
    )
}

async fn live(State(admin): State<Admin>, Extension(signed): Extension<Signed>) -> Response {
    match items(&admin, &signed).await {
        Ok(items) => page::render(
            StatusCode::OK,
            &Live {
                items,
                refresh_seconds: REFRESH_SECONDS,
            },
        ),
        Err(problem) => page::problem(problem),
    }
}

pub fn routes() -> Router<Admin> {
    Router::new()
        .route("/admin", get(overview))
        .route("/admin/attention/live", get(live))
}
