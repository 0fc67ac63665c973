//! What every page shares: the layout's data, rendering, the refusal and
//! error pages, and the content policy that keeps pages on this origin.

use askama::Template;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use kernel::Problem;

use crate::session::Signed;

/// Scripts, styles, requests and form posts only to this origin; no inline
/// script (htmx runs with eval off, see `base.html`).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

pub async fn content_policy(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

/// The layout's data: who is signed in and what they may do.
pub struct Chrome {
    pub email: String,
    pub roles: String,
    pub csrf: String,
    pub can_write: bool,
    pub htmx: &'static str,
    pub chart_js: &'static str,
    pub charts: &'static str,
    pub css: &'static str,
    pub nav: Vec<(&'static str, &'static str, bool)>,
}

impl Chrome {
    pub fn of(signed: &Signed, current: &str) -> Self {
        Self {
            email: signed.email.clone(),
            roles: signed
                .principal
                .roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            csrf: signed.csrf.clone(),
            can_write: signed.staff.is_some(),
            htmx: crate::assets::HTMX_URL.as_str(),
            chart_js: crate::assets::CHART_JS_URL.as_str(),
            charts: crate::assets::CHARTS_URL.as_str(),
            css: crate::assets::CSS_URL.as_str(),
            nav: crate::pages::NAV
                .iter()
                .filter(|(_, _, admin_only)| !admin_only || signed.admin.is_some())
                .map(|(path, label, _)| (*path, *label, *path == current))
                .collect(),
        }
    }
}

/// A rendered template, or a bare 500 if it cannot render.
pub fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "admin page did not render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html(String::from("<h1>Internal error</h1>")),
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct Message<'a> {
    css: &'static str,
    title: &'a str,
    detail: &'a str,
}

/// A standalone page that says what happened and offers a way on.
pub fn message(status: StatusCode, title: &str, detail: &str) -> Response {
    render(
        status,
        &Message {
            css: crate::assets::CSS_URL.as_str(),
            title,
            detail,
        },
    )
}

pub fn not_found() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is nothing at this address.",
    )
}

/// The refusal page for a signed-in person without the role.
pub fn refused(detail: &str) -> Response {
    message(StatusCode::FORBIDDEN, "Not allowed", detail)
}

/// A service's refusal shown as a page, with the API's status and detail.
pub fn problem(problem: Problem) -> Response {
    let details = problem.into_details();
    let status = StatusCode::from_u16(details.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut text = details.detail;
    for e in details.errors {
        text.push_str(&format!(" — {}: {}", e.field, e.message));
    }
    message(status, &details.title, &text)
}

/// After an action: back to `to` (htmx follows the 303 and swaps the page).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// A request made by htmx rather than a full page load.
pub fn is_htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
}

/// A page's actions, each named in its address (`…/{id}/{name}`).
pub trait Named: Copy + 'static {
    const ALL: &'static [Self];

    fn name(self) -> &'static str;

    fn parse(raw: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.name() == raw)
    }
}

/// A refusal shown on the form that caused it (the page is drawn again
/// with what was typed), with the API's status, wording and field errors.
pub struct FormError {
    /// Which form on the page it belongs to.
    pub form: &'static str,
    pub status: StatusCode,
    pub title: String,
    pub detail: String,
    /// `(field, message)`, as the API's `errors` name them.
    pub fields: Vec<(String, String)>,
}

impl FormError {
    /// The error when it belongs to `form`, for a page with several forms.
    pub fn on<'a>(error: Option<&'a Self>, form: &str) -> Option<&'a Self> {
        error.filter(|e| e.form == form)
    }

    pub fn new(form: &'static str, problem: Problem) -> Self {
        let details = problem.into_details();
        Self {
            form,
            status: StatusCode::from_u16(details.status).unwrap_or(StatusCode::BAD_REQUEST),
            title: details.title,
            detail: details.detail,
            fields: details
                .errors
                .into_iter()
                .map(|e| (e.field, e.message))
                .collect(),
        }
    }
}

/// A page's refusal, if any, as its template and its status ask for it.
pub trait Refusal {
    /// The refusal, if it belongs to `form`.
    fn on(&self, form: &str) -> Option<&FormError>;
    /// The page's status: the refusal's, or 200.
    fn status(&self) -> StatusCode;
}

impl Refusal for Option<FormError> {
    fn on(&self, form: &str) -> Option<&FormError> {
        self.as_ref().filter(|e| e.form == form)
    }

    fn status(&self) -> StatusCode {
        self.as_ref().map_or(StatusCode::OK, |e| e.status)
    }
}
