//! Errors as RFC 9457 problem details. Every failure a client sees is a
//! [`Problem`]; each module maps its own error enum to one, once.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// The `Retry-After` of a 503: a dependency outage is usually brief.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 1;

/// Whether a database error means "the database could not be reached" (a
/// retry later may succeed) rather than a fault of the statement: pool
/// timeout, closed pool, connection refused, reset or any other i/o error,
/// a TLS or protocol break, a worker that crashed, or the server shutting
/// down or refusing connections (SQLSTATE classes 08 and 57P).
#[must_use]
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// The members of an `application/problem+json` body.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemDetails {
    /// A URI naming the kind of problem, derived from `code`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable code, e.g. `SOLD_OUT`.
    pub code: String,
    /// Present on `VALIDATION_FAILED`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Extra members some problems carry (for example the existing request).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: Map<String, Value>,
    #[serde(skip)]
    pub retry_after_secs: Option<u64>,
}

/// A failure as the client sees it: problem details with a stable upper-snake
/// `code`. Boxed, so `Result<T, Problem>` stays small on the success path.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct Problem(Box<ProblemDetails>);

impl std::ops::Deref for Problem {
    type Target = ProblemDetails;
    fn deref(&self) -> &ProblemDetails {
        &self.0
    }
}

impl std::ops::DerefMut for Problem {
    fn deref_mut(&mut self) -> &mut ProblemDetails {
        &mut self.0
    }
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self(Box::new(ProblemDetails {
            kind: format!("/problems/{}", code.to_ascii_lowercase().replace('_', "-")),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_owned(),
            errors: Vec::new(),
            extra: Map::new(),
            retry_after_secs: None,
        }))
    }

    /// The details, unboxed.
    #[must_use]
    pub fn into_details(self) -> ProblemDetails {
        *self.0
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", detail)
    }

    /// 413: one wording whether the extractor or the body limit refused it.
    #[must_use]
    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            "the request body is larger than allowed",
        )
    }

    /// 415: every body this API reads is JSON.
    #[must_use]
    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "expected a body with content-type application/json",
        )
    }

    pub fn unauthorized(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, detail)
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "your roles do not allow this",
        )
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("{what} not found"),
        )
    }

    pub fn conflict(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        let mut problem = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
            detail,
        );
        problem.errors = errors;
        problem
    }

    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError {
            field: field.to_owned(),
            message: message.into(),
        }])
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut problem = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMITED",
            "too many requests; retry later",
        );
        problem.retry_after_secs = Some(retry_after_secs.max(1));
        problem
    }

    /// A 500 whose body says nothing; the cause is logged here, once.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "an internal error occurred",
        )
    }

    /// A 503 for a dependency that is down, with `Retry-After`; the cause is
    /// logged here, once.
    pub fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "service unavailable");
        let mut problem = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "the service is temporarily unavailable",
        );
        problem.retry_after_secs = Some(UNAVAILABLE_RETRY_AFTER_SECS);
        problem
    }

    /// The one mapping of a database failure: 503 when the database could
    /// not be reached (see [`is_unavailable`]), else an opaque 500.
    pub fn database(cause: &sqlx::Error) -> Self {
        if is_unavailable(cause) {
            Self::unavailable(cause)
        } else {
            Self::internal(cause)
        }
    }

    /// Adds a member to the body.
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        if let Ok(v) = serde_json::to_value(value) {
            self.extra.insert(key.to_owned(), v);
        }
        self
    }

    #[must_use]
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let retry_after = self.retry_after_secs;
        let code = self.code.clone();
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        if let Some(secs) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response.extensions_mut().insert(ProblemCode(code));
        response
    }
}

/// The `code` of a problem+json answer, left in the response's extensions
/// so the metrics layer can count refusals by code
/// (`http_problems_total`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProblemCode(pub String);

/// Collects field errors so a request reports every invalid field at once.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldError>);

impl Violations {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.to_owned(),
            message: message.into(),
        });
    }

    /// Records the error of a parse, keeping the value when it succeeded.
    pub fn check<T, E: std::fmt::Display>(&mut self, field: &str, r: Result<T, E>) -> Option<T> {
        r.map_err(|e| self.add(field, e.to_string())).ok()
    }

    /// Records errors already collected elsewhere (a nested parser's).
    pub fn extend(&mut self, errors: impl IntoIterator<Item = FieldError>) {
        self.0.extend(errors);
    }

    /// `Ok` when nothing was added, else every field error, for a module's
    /// own error type to carry.
    pub fn into_errors(self) -> Result<(), Vec<FieldError>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }

    /// `Ok` when nothing was added, else a 422 listing every field.
    pub fn finish(self) -> Result<(), Problem> {
        self.into_errors().map_err(Problem::validation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_body_has_the_contract_fields() {
        let p = Problem::conflict("SOLD_OUT", "no stock left").with("remaining", 0);
        let v = serde_json::to_value(&p).expect("serialises");
        assert_eq!(v["status"], 409);
        assert_eq!(v["code"], "SOLD_OUT");
        assert_eq!(v["type"], "/problems/sold-out");
        assert_eq!(v["title"], "Conflict");
        assert_eq!(v["remaining"], 0);
        assert!(v.get("errors").is_none());
    }

    #[test]
    fn a_problem_is_one_pointer_wide() {
        assert_eq!(std::mem::size_of::<Problem>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn rate_limited_sets_retry_after_header() {
        let r = Problem::rate_limited(7).into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "7");
        assert_eq!(r.headers()[header::CONTENT_TYPE], PROBLEM_CONTENT_TYPE);
    }

    #[test]
    fn an_unreachable_database_is_a_503_with_retry_after() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        for e in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::Io(refused),
            sqlx::Error::Io(reset),
            sqlx::Error::WorkerCrashed,
        ] {
            assert!(is_unavailable(&e), "{e}");
            let r = Problem::database(&e).into_response();
            assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{e}");
            assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        }
    }

    #[test]
    fn a_statement_fault_stays_an_opaque_500() {
        for e in [
            sqlx::Error::RowNotFound,
            sqlx::Error::ColumnNotFound("x".into()),
        ] {
            assert!(!is_unavailable(&e), "{e}");
            let p = Problem::database(&e);
            assert_eq!((p.status, p.code.as_str()), (500, "INTERNAL"));
            assert!(!p.detail.contains('x'), "{}", p.detail);
        }
    }

    #[test]
    fn violations_report_every_field() {
        let mut v = Violations::default();
        v.add("email", "is not an email");
        v.add("password", "is too short");
        let p = v.finish().expect_err("two violations");
        assert_eq!(p.status, 422);
        assert_eq!(p.errors.len(), 2);

        let mut nested = Violations::default();
        nested.extend(p.into_details().errors);
        assert_eq!(nested.into_errors().map_err(|e| e.len()), Err(2));
        assert_eq!(Violations::default().into_errors(), Ok(()));
    }
}
