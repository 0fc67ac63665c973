//! Dead letters: deliveries that used up their retries, with the payload
//! and the last error; staff replay or discard them.

use askama::Template;
use axum::Router;
use axum::extract::{Extension, Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use bus::DeadLetter;
use http::StatusCode;
use kernel::PageRequest;
use uuid::Uuid;

use crate::Admin;
use crate::page::{self, Chrome};
use crate::session::Signed;

/// Shown at once; the API pages through the rest.
const LIST_LENGTH: u32 = 100;

struct Row {
    letter: DeadLetter,
    /// The payload, indented when it is JSON.
    payload: String,
}

#[derive(Template)]
#[template(path = "dead_letters.html")]
struct List {
    chrome: Chrome,
    rows: Vec<Row>,
    more: bool,
}

fn pretty(payload: &str) -> String {
    serde_json::from_str::<serde_json::Value>(payload)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| payload.to_owned())
}

async fn list(State(admin): State<Admin>, Extension(signed): Extension<Signed>) -> Response {
    let found = admin
        .dispatcher
        .dead_letters(PageRequest {
            limit: LIST_LENGTH,
            after: None,
        })
        .await;
    let mut letters = match found {
        Ok(letters) => letters,
        Err(e) => return page::problem(e.into()),
    };
    let more = letters.len() > LIST_LENGTH as usize;
    letters.truncate(LIST_LENGTH as usize);
    let rows = letters
        .into_iter()
        .map(|letter| Row {
            payload: pretty(&letter.payload),
            letter,
        })
        .collect();
    page::render(
        StatusCode::OK,
        &List {
            chrome: Chrome::of(&signed, "/admin/dead-letters"),
            rows,
            more,
        },
    )
}

/// What a staff action on one dead letter does.
#[derive(Clone, Copy)]
enum Action {
    Replay,
    Discard,
}

async fn act(admin: &Admin, signed: &Signed, raw_id: &str, action: Action) -> Response {
    if signed.staff.is_none() {
        return page::refused("Auditors read the dead letters; only staff replay or discard them.");
    }
    let Ok(id) = raw_id.parse::<Uuid>() else {
        return page::not_found();
    };
    let done = match action {
        Action::Replay => admin.dispatcher.replay(id).await,
        Action::Discard => admin.dispatcher.discard(id).await,
    };
    match done {
        Ok(true) => page::see_other("/admin/dead-letters"),
        Ok(false) => page::message(
            StatusCode::NOT_FOUND,
            "No such dead letter",
            "It was replayed or discarded already.",
        ),
        Err(e) => page::problem(e.into()),
    }
}

async fn replay(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Path(id): Path<String>,
) -> Response {
    act(&admin, &signed, &id, Action::Replay).await
}

async fn discard(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Path(id): Path<String>,
) -> Response {
    act(&admin, &signed, &id, Action::Discard).await
}

pub fn routes() -> Router<Admin> {
    Router::new()
        .route("/admin/dead-letters", get(list))
        .route("/admin/dead-letters/{id}/replay", post(replay))
        .route("/admin/dead-letters/{id}/discard", post(discard))
}
