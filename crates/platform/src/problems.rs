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
    // The dashboard's pages say what went wrong themselves.
    let is_page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem || is_page {
        return response;
    }
    let problem = match status {
        StatusCode::PAYLOAD_TOO_LARGE => Problem::payload_too_large(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Problem::unsupported_media_type(),
        _ => {
            let (code, detail) = match status {
                StatusCode::NOT_FOUND => ("NOT_FOUND", "no such resource"),
                StatusCode::METHOD_NOT_ALLOWED => (
                    "METHOD_NOT_ALLOWED",
                    "this route does not accept that method",
                ),
                StatusCode::REQUEST_TIMEOUT => ("REQUEST_TIMEOUT", "the request took too long"),
                s if s.is_server_error() => ("INTERNAL", "an internal error occurred"),
                _ => ("BAD_REQUEST", "the request could not be understood"),
            };
            Problem::new(status, code, detail)
        }
    };
    let (mut parts, _) = response.into_parts();
    let problem = problem.into_response();
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    #[tokio::test]
    async fn a_panic_becomes_an_opaque_500() {
        let response = on_panic(Box::new("secret detail at db.rs:42"));
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = to_bytes(response.into_body(), 4096).await.expect("a body");
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("\"code\":\"INTERNAL\""), "{text}");
        assert!(!text.contains("secret detail"), "{text}");
    }

    #[tokio::test]
    async fn a_plain_text_error_becomes_problem_json_and_keeps_its_headers() {
        let plain = Response::builder()
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .header(header::ALLOW, "GET")
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::from("Method Not Allowed"))
            .expect("a response");
        let response = normalise(plain).await;
        assert_eq!(response.headers()[header::ALLOW], "GET");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            PROBLEM_CONTENT_TYPE
        );
        let body = to_bytes(response.into_body(), 4096).await.expect("a body");
        assert!(String::from_utf8_lossy(&body).contains("METHOD_NOT_ALLOWED"));
    }

    #[tokio::test]
    async fn success_responses_pass_untouched() {
        let ok = Response::new(Body::from("fine"));
        let response = normalise(ok).await;
        let body = to_bytes(response.into_body(), 64).await.expect("a body");
        assert_eq!(&body[..], b"fine");
    }
}
