//! problem+json for every failure, including the ones no handler wrote:
//! unknown routes, wrong methods, bodies over the limit, and panics.

use std::any::Any;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use kernel::Problem;
use kernel::error::PROBLEM_CONTENT_TYPE;

/// The router's fallback: 404 for a path no route matches.
pub async fn unknown_route() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route")
}

/// Rewrites an error response that is not already problem+json (axum's 405,
/// tower-http's 413, …) into one with a matching code. Headers such as
/// `Allow` and `Retry-After` are kept.
pub async fn normalise(response: Response) -> Response {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == PROBLEM_CONTENT_TYPE.as_bytes());
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let (code, detail) = match status {
        StatusCode::NOT_FOUND => ("NOT_FOUND", "no such resource"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "METHOD_NOT_ALLOWED",
            "this route does not accept that method",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "PAYLOAD_TOO_LARGE",
            "the request body is larger than allowed",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "UNSUPPORTED_MEDIA_TYPE",
            "this content type is not accepted",
        ),
        StatusCode::REQUEST_TIMEOUT => ("REQUEST_TIMEOUT", "the request took too long"),
        s if s.is_server_error() => ("INTERNAL", "an internal error occurred"),
        _ => ("BAD_REQUEST", "the request could not be understood"),
    };
    let (mut parts, _) = response.into_parts();
    let problem = Problem::new(status, code, detail).into_response();
    let (problem_parts, body) = problem.into_parts();
    for (name, value) in &problem_parts.headers {
        parts.headers.insert(name, value.clone());
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::new(body))
}

/// For `CatchPanicLayer`: a panic becomes an opaque 500, logged once.
pub fn on_panic(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    Problem::internal(&format_args!("handler panicked: {message}")).into_response()
}
