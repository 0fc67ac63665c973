//! Request extractors whose rejections are problem+json: malformed input is a
//! 400 (413 too large, 415 wrong content type), never axum's plain text.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Problem;

/// A JSON body in, or a JSON body out.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_problem(&rejection)),
        }
    }
}

fn json_problem(rejection: &JsonRejection) -> Problem {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Problem::payload_too_large(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Problem::unsupported_media_type(),
        _ => Problem::bad_request(in_api_terms(&rejection.body_text())),
    }
}

/// serde's and axum's wording of a malformed request, with the server's
/// Rust types (`expected struct RefreshTokenBody`, `expected u32`) said in
/// the terms of the API a client reads.
fn in_api_terms(detail: &str) -> String {
    const PREFIXES: [(&str, &str); 4] = [
        (
            "Failed to deserialize the JSON body into the target type: ",
            "the JSON body does not match: ",
        ),
        (
            "Failed to parse the request body as JSON: ",
            "the body is not valid JSON: ",
        ),
        (
            "Failed to deserialize query string: ",
            "the query string does not match: ",
        ),
        ("Invalid URL: ", "the path does not match: "),
    ];
    const RANGES: [(&str, &str); 10] = [
        ("u8", "a whole number from 0 to 255"),
        ("u16", "a whole number from 0 to 65535"),
        ("u32", "a whole number from 0 to 4294967295"),
        ("u64", "a whole number from 0 to 18446744073709551615"),
        ("usize", "a whole number from 0 to 18446744073709551615"),
        ("i8", "a whole number from -128 to 127"),
        ("i16", "a whole number from -32768 to 32767"),
        ("i32", "a whole number from -2147483648 to 2147483647"),
        (
            "i64",
            "a whole number from -9223372036854775808 to 9223372036854775807",
        ),
        ("f64", "a number"),
    ];
    let mut out = detail.to_owned();
    if let Some((from, to)) = PREFIXES.iter().find(|(from, _)| out.starts_with(from)) {
        out = format!("{to}{}", &out[from.len()..]);
    }
    // A Rust type's name, after these, runs to the next space or comma.
    for (rust, api) in [
        ("expected struct ", "expected a JSON object"),
        ("expected enum ", "expected one of the documented values"),
    ] {
        while let Some(at) = out.find(rust) {
            let name = at + rust.len();
            let end = out[name..].find([' ', ',']).map_or(out.len(), |n| name + n);
            out.replace_range(at..end, api);
        }
    }
    for (rust, api) in RANGES {
        out = replace_word(
            &out,
            &format!("expected {rust}"),
            &format!("expected {api}"),
        );
    }
    out.replace("expected a sequence", "expected a JSON array")
        .replace("expected a map", "expected a JSON object")
}

/// `text` with each `word` that is not the start of a longer word (`u8`
/// but not `u8x`) replaced by `with`.
fn replace_word(text: &str, word: &str, with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(word) {
        let after = &rest[at + word.len()..];
        let whole = !after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
        out.push_str(&rest[..at]);
        out.push_str(if whole { with } else { word });
        rest = after;
    }
    out.push_str(rest);
    out
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Query parameters; a value of the wrong type is a 400.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|r: QueryRejection| Problem::bad_request(in_api_terms(&r.body_text())))
    }
}

/// Path parameters; an id that is not a UUID is a 400.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|r: PathRejection| Problem::bad_request(in_api_terms(&r.body_text())))
    }
}

/// `201 Created` with a JSON body.
pub struct Created<T>(pub T);

impl<T: Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        (StatusCode::CREATED, axum::Json(self.0)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)] // read by serde only
    struct RefreshTokenBody {
        refresh_token: String,
        quantity: u32,
        tags: Vec<String>,
    }

    async fn refused(content_type: &str, body: &str) -> Problem {
        let request = Request::builder()
            .method("POST")
            .header("content-type", content_type)
            .body(axum::body::Body::from(body.to_owned()))
            .expect("a request");
        Json::<RefreshTokenBody>::from_request(request, &())
            .await
            .expect_err("refused")
    }

    #[tokio::test]
    async fn a_malformed_body_is_explained_without_the_servers_rust_types() {
        for (body, says) in [
            ("\"x\"", "expected a JSON object"),
            (
                r#"{"refresh_token": "t", "quantity": -1, "tags": []}"#,
                "expected a whole number from 0 to 4294967295",
            ),
            (
                r#"{"refresh_token": "t", "quantity": 4294967296, "tags": []}"#,
                "expected a whole number from 0 to 4294967295",
            ),
            (
                r#"{"refresh_token": "t", "quantity": 1, "tags": {}}"#,
                "expected a JSON array",
            ),
            (
                r#"{"refresh_token": "t", "quantity": 1}"#,
                "missing field `tags`",
            ),
            ("{", "the body is not valid JSON"),
        ] {
            let problem = refused("application/json", body).await;
            assert_eq!(problem.status, 400, "{body}");
            assert!(problem.detail.contains(says), "{body}: {}", problem.detail);
            for rust in ["struct", "RefreshTokenBody", "u32", "Failed to", "sequence"] {
                assert!(!problem.detail.contains(rust), "{body}: {}", problem.detail);
            }
        }
    }

    #[tokio::test]
    async fn a_body_that_is_not_json_is_a_415_in_the_one_wording() {
        let problem = refused("text/plain", "{}").await;
        assert_eq!(problem.status, 415);
        assert_eq!(problem.detail, Problem::unsupported_media_type().detail);
    }

    #[test]
    fn only_whole_type_names_are_replaced() {
        assert_eq!(
            replace_word(
                "expected u8, expected u8x",
                "expected u8",
                "expected a byte"
            ),
            "expected a byte, expected u8x"
        );
    }
}
