//! Webhook endpoints (ADMIN, as in the API): register one (its signing
//! secret is shown on the answer to the create and never again), disable,
//! enable or delete it, send a test event, and read its delivery log,
//! which refreshes itself (htmx), with a replay for each failed attempt.

use askama::Template;
use axum::Router;
use axum::extract::{Extension, Path, Request, State};
use axum::middleware::{Next, from_fn};
use axum::response::Response;
use axum::routing::{get, post};
use http::{HeaderValue, StatusCode, header};
use kernel::auth::Admin as AdminRole;
use kernel::{PageRequest, Problem};
use webhooks::model::{
    Attempt, EVENT_TYPES, EndpointChange, EndpointId, EndpointView, EndpointWithSecret, NewEndpoint,
};

use crate::Admin;
use crate::page::{self, Chrome, FormError, Named};
use crate::session::{Fields, Signed};

const LIST_LENGTH: u32 = 100;
/// Attempts shown, oldest first; the API pages through the rest.
const LOG_LENGTH: u32 = 100;
/// Seconds between refreshes of a delivery log.
const REFRESH_SECONDS: u32 = 3;
const ADMIN_ONLY: &str = "Only an ADMIN manages webhook endpoints (as in the API).";

#[derive(Template)]
#[template(path = "webhooks.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<EndpointView>,
    event_types: &'static [&'static str],
    /// What the create form holds.
    form: Fields,
    error: Option<FormError>,
    /// The endpoint just registered, with the only sight of its secret.
    created: Option<EndpointWithSecret>,
}

impl ListPage {
    fn error_for(&self, form: &str) -> Option<&FormError> {
        FormError::on(self.error.as_ref(), form)
    }

    fn checked(&self, event_type: &str) -> bool {
        self.form.all("event_types").any(|t| t == event_type)
    }
}

#[derive(Template)]
#[template(path = "webhook.html")]
struct EndpointPage {
    chrome: Chrome,
    endpoint: EndpointView,
    error: Option<FormError>,
    log: Log,
}

/// The delivery log alone: what each refresh swaps in.
#[derive(Template)]
#[template(path = "webhook_log.html")]
struct Log {
    endpoint_id: EndpointId,
    attempts: Vec<Attempt>,
    more: bool,
    csrf: String,
    refresh_seconds: u32,
}

async fn list_page(
    admin: &Admin,
    signed: &Signed,
    caller: &AdminRole,
    form: Fields,
    error: Option<FormError>,
    created: Option<EndpointWithSecret>,
) -> Response {
    let found = admin
        .webhooks
        .list(
            caller,
            PageRequest {
                limit: LIST_LENGTH,
                after: None,
            },
        )
        .await;
    let rows = match found {
        Ok(page) => page.items,
        Err(e) => return page::problem(e.into()),
    };
    let status = match (&error, &created) {
        (Some(e), _) => e.status,
        (None, Some(_)) => StatusCode::CREATED,
        (None, None) => StatusCode::OK,
    };
    let mut response = page::render(
        status,
        &ListPage {
            chrome: Chrome::of(signed, "/admin/webhooks"),
            rows,
            event_types: EVENT_TYPES,
            form,
            error,
            created,
        },
    );
    // The page may hold a secret: no cache keeps it.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn list(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Extension(caller): Extension<AdminRole>,
) -> Response {
    list_page(&admin, &signed, &caller, Fields::default(), None, None).await
}

async fn create(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Extension(caller): Extension<AdminRole>,
    Extension(fields): Extension<Fields>,
) -> Response {
    let request = NewEndpoint {
        url: fields.value("url").trim().to_owned(),
        event_types: fields.all("event_types").map(str::to_owned).collect(),
        description: Some(fields.value("description").to_owned()),
    };
    match admin.webhooks.create(&caller, &request).await {
        Ok(created) => {
            list_page(
                &admin,
                &signed,
                &caller,
                Fields::default(),
                None,
                Some(created),
            )
            .await
        }
        Err(e) => {
            let error = FormError::new("create", e.into());
            list_page(&admin, &signed, &caller, fields, Some(error), None).await
        }
    }
}

fn endpoint_id(raw: &str) -> Option<EndpointId> {
    raw.parse().ok().map(EndpointId)
}

async fn log_of(
    admin: &Admin,
    signed: &Signed,
    caller: &AdminRole,
    id: EndpointId,
) -> Result<Log, Problem> {
    let page = admin
        .webhooks
        .deliveries(
            caller,
            id,
            PageRequest {
                limit: LOG_LENGTH,
                after: None,
            },
        )
        .await?;
    Ok(Log {
        endpoint_id: id,
        more: page.next_cursor.is_some(),
        attempts: page.items,
        csrf: signed.csrf.clone(),
        refresh_seconds: REFRESH_SECONDS,
    })
}

async fn endpoint_page(
    admin: &Admin,
    signed: &Signed,
    caller: &AdminRole,
    id: EndpointId,
    error: Option<FormError>,
) -> Response {
    let (endpoint, log) = tokio::join!(
        admin.webhooks.get(caller, id),
        log_of(admin, signed, caller, id)
    );
    let (endpoint, log) = match (endpoint.map_err(Problem::from), log) {
        (Ok(endpoint), Ok(log)) => (endpoint, log),
        (Err(problem), _) | (_, Err(problem)) => return page::problem(problem),
    };
    page::render(
        error.as_ref().map_or(StatusCode::OK, |e| e.status),
        &EndpointPage {
            chrome: Chrome::of(signed, "/admin/webhooks"),
            endpoint,
            error,
            log,
        },
    )
}

async fn show(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Extension(caller): Extension<AdminRole>,
    Path(id): Path<String>,
) -> Response {
    match endpoint_id(&id) {
        Some(id) => endpoint_page(&admin, &signed, &caller, id, None).await,
        None => page::not_found(),
    }
}

async fn log(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Extension(caller): Extension<AdminRole>,
    Path(id): Path<String>,
) -> Response {
    let Some(id) = endpoint_id(&id) else {
        return page::not_found();
    };
    match log_of(&admin, &signed, &caller, id).await {
        Ok(log) => page::render(StatusCode::OK, &log),
        Err(problem) => page::problem(problem),
    }
}

/// What an action on an endpoint's page does; its name is in the address.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Disable,
    Enable,
    Test,
    Replay,
    Delete,
}

impl Named for Action {
    const ALL: &'static [Self] = &[
        Self::Disable,
        Self::Enable,
        Self::Test,
        Self::Replay,
        Self::Delete,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Enable => "enable",
            Self::Test => "test",
            Self::Replay => "replay",
            Self::Delete => "delete",
        }
    }
}

/// The webhook call an action makes; what it returns shows in the log.
async fn perform(
    admin: &Admin,
    caller: &AdminRole,
    id: EndpointId,
    action: Action,
    fields: &Fields,
) -> Result<(), Problem> {
    let service = &admin.webhooks;
    match action {
        Action::Disable | Action::Enable => {
            let change = EndpointChange {
                disabled: Some(action == Action::Disable),
                ..EndpointChange::default()
            };
            service.update(caller, id, &change).await?;
        }
        Action::Test => {
            service.send_test(caller, id).await?;
        }
        Action::Replay => {
            service.replay(caller, fields.value("attempt")).await?;
        }
        Action::Delete => service.delete(caller, id).await?,
    }
    Ok(())
}

async fn act(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Extension(caller): Extension<AdminRole>,
    Extension(fields): Extension<Fields>,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    let (Some(id), Some(action)) = (endpoint_id(&id), Action::parse(&action)) else {
        return page::not_found();
    };
    match perform(&admin, &caller, id, action, &fields).await {
        Ok(()) if action == Action::Delete => page::see_other("/admin/webhooks"),
        Ok(()) => page::see_other(&format!("/admin/webhooks/{id}")),
        Err(problem) => {
            let error = FormError::new("actions", problem);
            endpoint_page(&admin, &signed, &caller, id, Some(error)).await
        }
    }
}

/// In front of every webhook page: an ADMIN gets through with the proof
/// the service asks for; anyone else gets the refusal page.
async fn admin_only(
    Extension(signed): Extension<Signed>,
    mut request: Request,
    next: Next,
) -> Response {
    match signed.admin {
        Some(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        None => page::refused(ADMIN_ONLY),
    }
}

pub fn routes() -> Router<Admin> {
    Router::new()
        .route("/admin/webhooks", get(list).post(create))
        .route("/admin/webhooks/{id}", get(show))
        .route("/admin/webhooks/{id}/log", get(log))
        .route("/admin/webhooks/{id}/{action}", post(act))
        .route_layer(from_fn(admin_only))
}
