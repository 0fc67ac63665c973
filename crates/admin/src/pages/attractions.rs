//! Attractions and their waiting lines: the list with each one's status,
//! line length and estimate; create and edit; a page per attraction whose
//! line refreshes itself (htmx) and where staff call the next parties,
//! admit a called one at the gate, and pause (`DOWN`) or resume
//! (`OPERATING`) it. Auditors see it all without a form; a refusal shows
//! on the form that caused it, with what was typed.

use askama::Template;
use axum::Router;
use axum::extract::{Extension, Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use http::StatusCode;
use kernel::auth::Staff;
use kernel::{PageRequest, Problem};
use park::model::{
    Attraction, AttractionFilter, AttractionId, AttractionKind, AttractionPatch, AttractionStatus,
    LineEntryId, LineEntryView, NewAttraction, WaitBoard,
};

use crate::Admin;
use crate::form::{choice, optional_whole, whole};
use crate::page::{self, Chrome, FormError, Named};
use crate::session::{Fields, Signed};

const LIST_LENGTH: u32 = 100;
/// Entries shown on a line's page; the API pages through the rest.
const LINE_SHOWN: u32 = 100;
/// Seconds between refreshes of a line.
const REFRESH_SECONDS: u32 = 2;
const READ_ONLY: &str = "Auditors watch the attractions; only staff change them.";

/// A wait in words: minutes rounded up, or why there is none.
fn wait_text(seconds: Option<u64>) -> String {
    match seconds {
        None => "—".to_owned(),
        Some(s) if s < 60 => "under a minute".to_owned(),
        Some(s) => format!("{} min", s.div_ceil(60)),
    }
}

struct Row {
    attraction: Attraction,
    board: WaitBoard,
    estimate: String,
}

#[derive(Template)]
#[template(path = "attractions.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
    kinds: [&'static str; 2],
    /// What the create form holds.
    form: Fields,
    error: Option<FormError>,
}

impl ListPage {
    fn error_for(&self, form: &str) -> Option<&FormError> {
        FormError::on(self.error.as_ref(), form)
    }
}

#[derive(Template)]
#[template(path = "attraction.html")]
struct AttractionPage {
    chrome: Chrome,
    attraction: Attraction,
    /// The statuses it can be moved to, with the button's words.
    moves: Vec<(&'static str, &'static str)>,
    /// What the edit form holds.
    form: Fields,
    error: Option<FormError>,
    line: Line,
}

impl AttractionPage {
    fn error_for(&self, form: &str) -> Option<&FormError> {
        FormError::on(self.error.as_ref(), form)
    }
}

/// The line alone: what each refresh swaps in.
#[derive(Template)]
#[template(path = "attraction_line.html")]
struct Line {
    attraction_id: AttractionId,
    board: WaitBoard,
    estimate: String,
    entries: Vec<LineEntryView>,
    more: bool,
    can_write: bool,
    csrf: String,
    refresh_seconds: u32,
}

impl Line {
    fn wait(&self, seconds: &Option<u64>) -> String {
        wait_text(*seconds)
    }
}

async fn list_page(
    admin: &Admin,
    signed: &Signed,
    form: Fields,
    error: Option<FormError>,
) -> Response {
    let found = admin
        .park
        .list(
            &AttractionFilter::default(),
            PageRequest {
                limit: LIST_LENGTH,
                after: None,
            },
        )
        .await;
    let attractions = match found {
        Ok(page) => page.items,
        Err(e) => return page::problem(e.into()),
    };
    let mut rows = Vec::with_capacity(attractions.len());
    for attraction in attractions {
        match admin.park.wait(attraction.id).await {
            Ok(board) => rows.push(Row {
                estimate: wait_text(board.estimated_wait_seconds),
                board,
                attraction,
            }),
            Err(e) => return page::problem(e.into()),
        }
    }
    page::render(
        error.as_ref().map_or(StatusCode::OK, |e| e.status),
        &ListPage {
            chrome: Chrome::of(signed, "/admin/attractions"),
            rows,
            kinds: AttractionKind::ALL.map(AttractionKind::as_str),
            form,
            error,
        },
    )
}

async fn list(State(admin): State<Admin>, Extension(signed): Extension<Signed>) -> Response {
    list_page(&admin, &signed, Fields::default(), None).await
}

/// Hashtags typed apart by spaces or commas (park's model checks each).
fn hashtags(fields: &Fields) -> Vec<String> {
    fields
        .value("hashtags")
        .split([',', ' '])
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

fn new_attraction(fields: &Fields) -> Result<NewAttraction, Problem> {
    Ok(NewAttraction {
        name: fields.value("name").to_owned(),
        kind: choice(fields, "kind")?,
        description: Some(fields.value("description").to_owned()),
        hashtags: hashtags(fields),
        capacity_per_cycle: optional_whole(fields, "capacity_per_cycle")?,
        cycle_seconds: optional_whole(fields, "cycle_seconds")?,
        status: None,
    })
}

async fn create(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Extension(fields): Extension<Fields>,
) -> Response {
    let Some(staff) = signed.staff else {
        return page::refused(READ_ONLY);
    };
    let created: Result<Attraction, Problem> =
        async { Ok(admin.park.create(&staff, &new_attraction(&fields)?).await?) }.await;
    match created {
        Ok(attraction) => page::see_other(&format!("/admin/attractions/{}", attraction.id)),
        Err(problem) => {
            let error = FormError::new("create", problem);
            list_page(&admin, &signed, fields, Some(error)).await
        }
    }
}

/// The edit form holding the attraction as it is.
fn edit_form(attraction: &Attraction) -> Fields {
    let tags: Vec<&str> = attraction.hashtags.iter().map(|t| t.as_str()).collect();
    Fields(vec![
        ("name".to_owned(), attraction.name.to_string()),
        (
            "description".to_owned(),
            attraction.description.as_str().to_owned(),
        ),
        ("hashtags".to_owned(), tags.join(" ")),
        (
            "capacity_per_cycle".to_owned(),
            attraction.capacity_per_cycle.to_string(),
        ),
        (
            "cycle_seconds".to_owned(),
            attraction.cycle_seconds.to_string(),
        ),
    ])
}

/// A status move's button: pausing, resuming or closing.
const fn move_label(to: AttractionStatus) -> &'static str {
    match to {
        AttractionStatus::Operating => "Resume",
        AttractionStatus::Down => "Pause",
        AttractionStatus::Closed => "Close for the day",
    }
}

async fn line_of(admin: &Admin, signed: &Signed, id: AttractionId) -> Result<Line, Problem> {
    let (board, entries) = tokio::join!(
        admin.park.wait(id),
        admin.park.line(
            id,
            PageRequest {
                limit: LINE_SHOWN,
                after: None,
            }
        ),
    );
    let board = board?;
    let entries = entries?;
    Ok(Line {
        attraction_id: id,
        estimate: wait_text(board.estimated_wait_seconds),
        board,
        more: entries.next_cursor.is_some(),
        entries: entries.items,
        can_write: signed.staff.is_some(),
        csrf: signed.csrf.clone(),
        refresh_seconds: REFRESH_SECONDS,
    })
}

async fn attraction_page(
    admin: &Admin,
    signed: &Signed,
    id: AttractionId,
    form: Option<Fields>,
    error: Option<FormError>,
) -> Response {
    let (attraction, line) = tokio::join!(admin.park.attraction(id), line_of(admin, signed, id));
    let (attraction, line) = match (attraction.map_err(Problem::from), line) {
        (Ok(attraction), Ok(line)) => (attraction, line),
        (Err(problem), _) | (_, Err(problem)) => return page::problem(problem),
    };
    page::render(
        error.as_ref().map_or(StatusCode::OK, |e| e.status),
        &AttractionPage {
            chrome: Chrome::of(signed, "/admin/attractions"),
            moves: AttractionStatus::ALL
                .into_iter()
                .filter(|s| *s != attraction.status)
                .map(|s| (s.as_str(), move_label(s)))
                .collect(),
            form: form.unwrap_or_else(|| edit_form(&attraction)),
            attraction,
            error,
            line,
        },
    )
}

fn attraction_id(raw: &str) -> Option<AttractionId> {
    raw.parse().ok().map(AttractionId)
}

async fn show(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Path(id): Path<String>,
) -> Response {
    match attraction_id(&id) {
        Some(id) => attraction_page(&admin, &signed, id, None, None).await,
        None => page::not_found(),
    }
}

async fn live(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Path(id): Path<String>,
) -> Response {
    let Some(id) = attraction_id(&id) else {
        return page::not_found();
    };
    match line_of(&admin, &signed, id).await {
        Ok(line) => page::render(StatusCode::OK, &line),
        Err(problem) => page::problem(problem),
    }
}

/// What a staff action on an attraction's page does; its name in the
/// address is the form it comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Edit,
    Status,
    Call,
    Admit,
}

impl Named for Action {
    const ALL: &'static [Self] = &[Self::Edit, Self::Status, Self::Call, Self::Admit];

    fn name(self) -> &'static str {
        match self {
            Self::Edit => "edit",
            Self::Status => "status",
            Self::Call => "call",
            Self::Admit => "admit",
        }
    }
}

/// The park call an action makes; what it returns is on the line.
async fn perform(
    admin: &Admin,
    staff: &Staff,
    id: AttractionId,
    action: Action,
    fields: &Fields,
) -> Result<(), Problem> {
    match action {
        Action::Edit => {
            let patch = AttractionPatch {
                name: Some(fields.value("name").to_owned()),
                description: Some(fields.value("description").to_owned()),
                hashtags: Some(hashtags(fields)),
                capacity_per_cycle: Some(whole(fields, "capacity_per_cycle")?),
                cycle_seconds: Some(whole(fields, "cycle_seconds")?),
                status: None,
            };
            admin.park.update(staff, id, &patch).await?;
        }
        Action::Status => {
            let patch = AttractionPatch {
                status: Some(choice(fields, "status")?),
                ..AttractionPatch::default()
            };
            admin.park.update(staff, id, &patch).await?;
        }
        Action::Call => {
            admin.park.call(staff, id, whole(fields, "count")?).await?;
        }
        Action::Admit => {
            let entry = fields
                .value("entry")
                .parse()
                .map(LineEntryId)
                .map_err(|_| Problem::invalid_field("entry", "is not an id"))?;
            admin.park.admit(staff, entry, Some(id)).await?;
        }
    }
    Ok(())
}

async fn act(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Extension(fields): Extension<Fields>,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    let Some(staff) = signed.staff else {
        return page::refused(READ_ONLY);
    };
    let (Some(id), Some(action)) = (attraction_id(&id), Action::parse(&action)) else {
        return page::not_found();
    };
    match perform(&admin, &staff, id, action, &fields).await {
        Ok(()) => page::see_other(&format!("/admin/attractions/{id}")),
        Err(problem) => {
            let typed = (action == Action::Edit).then_some(fields);
            let error = FormError::new(action.name(), problem);
            attraction_page(&admin, &signed, id, typed, Some(error)).await
        }
    }
}

pub fn routes() -> Router<Admin> {
    Router::new()
        .route("/admin/attractions", get(list).post(create))
        .route("/admin/attractions/{id}", get(show))
        .route("/admin/attractions/{id}/line", get(live))
        .route("/admin/attractions/{id}/{action}", post(act))
}
