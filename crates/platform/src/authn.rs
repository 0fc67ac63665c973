//! Authentication, once per request: a bearer token is verified and the
//! outcome left in the extensions for the `kernel::auth` extractors.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::header::AUTHORIZATION;
use kernel::auth::{AuthError, AuthFailure, TokenVerifier};

/// The verifier the middleware consults.
pub type SharedVerifier = Arc<dyn TokenVerifier>;

/// Reads `Authorization: Bearer …`; on success inserts the `Principal`, on
/// failure an `AuthFailure`, and with no header nothing at all.
pub async fn authenticate(
    State(verifier): State<SharedVerifier>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(value) = request.headers().get(AUTHORIZATION) {
        let outcome = match bearer_token(value) {
            Some(token) => verifier.verify(token).await,
            None => Err(AuthError::Malformed),
        };
        match outcome {
            Ok(principal) => {
                request.extensions_mut().insert(principal);
            }
            Err(e) => {
                request.extensions_mut().insert(AuthFailure(e));
            }
        }
    }
    next.run(request).await
}

fn bearer_token(value: &http::HeaderValue) -> Option<&str> {
    let value = value.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn only_bearer_headers_with_a_token_are_read() {
        let token = |s: &'static str| bearer_token(&HeaderValue::from_static(s)).map(str::to_owned);
        assert_eq!(token("Bearer abc").as_deref(), Some("abc"));
        assert_eq!(token("bearer abc").as_deref(), Some("abc"));
        assert_eq!(token("Basic abc"), None);
        assert_eq!(token("Bearer "), None);
        assert_eq!(token("Bearer"), None);
    }
}
