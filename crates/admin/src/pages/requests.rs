//! The reward-request queue: filter by status and event, each request with
//! its clause-by-clause explanation, approve or reject one or many at once.

use askama::Template;
use axum::Router;
use axum::extract::{Extension, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use http::StatusCode;
use kernel::{PageRequest, Problem};
use rewards::model::{RequestStatus, RewardRequest, RewardRequestId};
use rewards::service::DecisionRequest;
use rewards::store::RequestFilter;
use serde_json::Value;

use crate::Admin;
use crate::page::{self, Chrome};
use crate::session::{Fields, Signed};

const QUEUE_LENGTH: u32 = 50;

struct Row {
    request: RewardRequest,
    clauses: Vec<String>,
}

#[derive(Template)]
#[template(path = "requests.html")]
struct Queue {
    chrome: Chrome,
    status: String,
    event_id: String,
    statuses: [&'static str; 3],
    rows: Vec<Row>,
}

#[derive(serde::Deserialize)]
struct Filter {
    status: Option<String>,
    event_id: Option<String>,
}

/// One clause of an explanation as a line: met or not, needed and had.
pub(super) fn describe_clause(clause: &rewards::model::Clause) -> String {
    let required = match &clause.required {
        Value::Object(o) => format!(
            "{} {}",
            o.get("op").and_then(Value::as_str).unwrap_or("?"),
            o.get("value").map(Value::to_string).unwrap_or_default()
        ),
        other => other.to_string(),
    };
    let name = match (&clause.metric, clause.r#type) {
        (Some(metric), _) => metric.clone(),
        (None, t) => serde_json::to_value(t)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
    };
    format!(
        "{} {name}: needs {required}, has {}",
        if clause.met { "✔" } else { "✘" },
        clause.actual
    )
}

async fn queue(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Query(filter): Query<Filter>,
) -> Response {
    let status = filter.status.unwrap_or_else(|| "PENDING".to_owned());
    let event_id = filter.event_id.unwrap_or_default();
    let mut query = RequestFilter::default();
    if !status.is_empty() {
        match status.parse::<RequestStatus>() {
            Ok(s) => query.status = Some(s),
            Err(e) => return page::problem(Problem::invalid_field("status", e.to_string())),
        }
    }
    if !event_id.trim().is_empty() {
        match event_id.trim().parse() {
            Ok(id) => query.event = Some(id),
            Err(_) => return page::problem(Problem::invalid_field("event_id", "is not an id")),
        }
    }
    let found = admin
        .rewards
        .list_requests(
            &signed.reader,
            query,
            PageRequest {
                limit: QUEUE_LENGTH,
                after: None,
            },
        )
        .await;
    let requests = match found {
        Ok(p) => p.items,
        Err(e) => return page::problem(e.into()),
    };
    let mut rows = Vec::with_capacity(requests.len());
    for request in requests {
        let clauses = match admin
            .rewards
            .explain_request(&signed.reader, request.id)
            .await
        {
            Ok(c) if c.is_empty() => vec!["no condition".to_owned()],
            Ok(c) => c.iter().map(describe_clause).collect(),
            Err(e) => vec![format!(
                "cannot explain: {}",
                Problem::from(e).into_details().detail
            )],
        };
        rows.push(Row { request, clauses });
    }
    page::render(
        StatusCode::OK,
        &Queue {
            chrome: Chrome::of(&signed, "/admin/requests"),
            status,
            event_id,
            statuses: ["PENDING", "APPROVED", "REJECTED"],
            rows,
        },
    )
}

/// Approves or rejects every checked request with one reason; the first
/// refusal stops and is shown (the ones before it are decided).
async fn decide(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Extension(fields): Extension<Fields>,
) -> Response {
    let Some(staff) = signed.staff else {
        return page::refused("Auditors read the queue; only staff decide requests.");
    };
    let decision = fields.get("decision").unwrap_or_default().to_owned();
    let reason = fields.get("reason").map(str::to_owned);
    let ids: Vec<&str> = fields.all("id").collect();
    if ids.is_empty() {
        return page::problem(Problem::invalid_field("id", "choose at least one request"));
    }
    for raw in ids {
        let Ok(id) = raw.parse::<uuid::Uuid>() else {
            return page::problem(Problem::invalid_field("id", "is not an id"));
        };
        let body = DecisionRequest {
            status: decision.clone(),
            reason: reason.clone(),
        };
        if let Err(e) = admin
            .rewards
            .decide(&staff, RewardRequestId(id), body)
            .await
        {
            return page::problem(e.into());
        }
    }
    page::see_other("/admin/requests")
}

pub fn routes() -> Router<Admin> {
    Router::new()
        .route("/admin/requests", get(queue))
        .route("/admin/requests/decide", post(decide))
}
