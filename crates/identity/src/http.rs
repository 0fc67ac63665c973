//! Identity's routes. Handlers parse, authorise (by extractor type), call the
//! service and map the result; nothing else.

use std::sync::Arc;

use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use kernel::auth::Admin;
use kernel::http::{Created, Json, Path, Query};
use kernel::{Page, PageQuery, Principal, Problem, ProblemDetails, UserId};
use platform::client::ClientIp;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::model::{
    LoginRequest, RefreshTokenBody, RolesRequest, SignupRequest, TestUsers, TestUsersRequest,
    Tokens, User,
};
use crate::service::IdentityService;
use crate::tokens::Jwks;

/// The refresh-token cookie: HttpOnly, SameSite=Strict, scoped to `/api/v1/auth`.
pub const REFRESH_COOKIE: &str = "stampede_refresh";
const COOKIE_PATH: &str = "/api/v1/auth";

/// What the routes need.
#[derive(Clone, Debug)]
pub struct IdentityHttp {
    pub service: Arc<IdentityService>,
    /// Mark the refresh cookie `Secure` (serve over HTTPS).
    pub secure_cookie: bool,
}

/// The `/api/v1` routes of identity.
pub fn router(state: IdentityHttp) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(sign_up))
        .routes(routes!(log_in))
        .routes(routes!(refresh))
        .routes(routes!(log_out))
        .routes(routes!(me))
        .routes(routes!(list_users))
        .routes(routes!(get_user))
        .routes(routes!(set_roles))
        .with_state(state)
}

/// `/.well-known/jwks.json`, outside `/api/v1`.
pub fn well_known_router(state: IdentityHttp) -> OpenApiRouter {
    OpenApiRouter::new().routes(routes!(jwks)).with_state(state)
}

type State = axum::extract::State<IdentityHttp>;

/// Sign up.
#[utoipa::path(post, path = "/auth/signup", tag = "identity",
    request_body = SignupRequest,
    responses(
        (status = 201, description = "Created", body = User),
        (status = 400, description = "Malformed JSON", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "`EMAIL_TAKEN`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "Bad email, short password, unknown referral code", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
async fn sign_up(
    axum::extract::State(s): State,
    Json(body): Json<SignupRequest>,
) -> Result<Created<User>, Problem> {
    Ok(Created(s.service.sign_up(body).await?))
}

/// Log in; the refresh token is also set as an HttpOnly cookie.
#[utoipa::path(post, path = "/auth/login", tag = "identity",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = Tokens,
            headers(("set-cookie" = String, description = "The refresh token, HttpOnly, SameSite=Strict"))),
        (status = 401, description = "`INVALID_CREDENTIALS`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed logins from this address, for this email (5 per 15 minutes) or for any (50); other addresses are not refused", body = ProblemDetails, content_type = "application/problem+json",
            headers(("retry-after" = u64))),
    ))]
async fn log_in(
    axum::extract::State(s): State,
    ClientIp(client): ClientIp,
    Json(body): Json<LoginRequest>,
) -> Result<Response, Problem> {
    let tokens = s.service.log_in(body, client).await?;
    Ok(with_refresh_cookie(&s, tokens))
}

/// Exchange a refresh token (cookie, or body) for new tokens.
#[utoipa::path(post, path = "/auth/refresh", tag = "identity",
    request_body(content = Option<RefreshTokenBody>, description = "Optional when the cookie is sent"),
    responses(
        (status = 200, description = "New tokens; the old refresh token stops working", body = Tokens),
        (status = 401, description = "`INVALID_REFRESH_TOKEN`, or `REFRESH_TOKEN_REUSED` (the login is revoked)", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
async fn refresh(
    axum::extract::State(s): State,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let token = required_refresh_token(&headers, &body)?;
    let tokens = s.service.refresh(&token).await?;
    Ok(with_refresh_cookie(&s, tokens))
}

/// Log out: revokes the login of the bearer token, or of the refresh token.
#[utoipa::path(post, path = "/auth/logout", tag = "identity",
    request_body(content = Option<RefreshTokenBody>, description = "Optional"),
    security((), ("bearer" = [])),
    responses(
        (status = 204, description = "The login is revoked"),
        (status = 401, description = "No bearer token and no refresh token", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
async fn log_out(
    axum::extract::State(s): State,
    principal: Option<Principal>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    if let Some(principal) = principal {
        s.service.log_out_session(principal.session_id).await?;
    } else {
        let token = required_refresh_token(&headers, &body)?;
        s.service.log_out_refresh_token(&token).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(&s, "", 0));
    Ok(response)
}

/// The signed-in user.
#[utoipa::path(get, path = "/auth/me", tag = "identity", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = User),
        kernel::openapi::SignedIn,
    ))]
async fn me(axum::extract::State(s): State, principal: Principal) -> Result<Json<User>, Problem> {
    Ok(Json(s.service.me(&principal).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct UsersQuery {
    /// Only users whose email contains this (case-insensitive).
    email: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// From a previous page's `next_cursor`.
    #[param(min_length = 1)]
    cursor: Option<String>,
}

/// List users (ADMIN).
#[utoipa::path(get, path = "/users", tag = "identity", security(("bearer" = [])),
    params(UsersQuery),
    responses(
        (status = 200, description = "A page of users", body = Page<User>),
        (status = 400, description = "Bad cursor", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "`limit` out of range, or a control character in `email`", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::AdminOnly,
    ))]
async fn list_users(
    axum::extract::State(s): State,
    admin: Admin,
    Query(q): Query<UsersQuery>,
) -> Result<Json<Page<User>>, Problem> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .parse("users")?;
    Ok(Json(s.service.list_users(&admin, q.email, page).await?))
}

/// One user (ADMIN).
#[utoipa::path(get, path = "/users/{id}", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 403, description = "Not an ADMIN", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
async fn get_user(
    axum::extract::State(s): State,
    admin: Admin,
    Path(id): Path<UserId>,
) -> Result<Json<User>, Problem> {
    Ok(Json(s.service.user(&admin, id).await?))
}

/// Replace a user's roles (ADMIN); their access tokens stop working at once.
#[utoipa::path(put, path = "/users/{id}/roles", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    request_body = RolesRequest,
    responses(
        (status = 200, description = "The user with the new roles", body = User),
        (status = 403, description = "Not an ADMIN", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "`LAST_ADMIN`: it would leave no admin", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "Unknown role or empty list", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
async fn set_roles(
    axum::extract::State(s): State,
    admin: Admin,
    Path(id): Path<UserId>,
    Json(body): Json<RolesRequest>,
) -> Result<Json<User>, Problem> {
    Ok(Json(s.service.set_roles(&admin, id, &body.roles).await?))
}

/// The public keys that verify access tokens.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "identity",
    responses((status = 200, description = "JSON Web Key Set", body = Jwks)))]
async fn jwks(axum::extract::State(s): State) -> Json<Jwks> {
    Json(s.service.jwks())
}

/// The bulk test-user route, outside `/api/v1`. Mounted only when the
/// server's `test_users` setting is on; otherwise the path is unknown (404)
/// and absent from the OpenAPI document.
pub fn test_users_router(state: IdentityHttp, enabled: bool) -> OpenApiRouter {
    if enabled {
        OpenApiRouter::new()
            .routes(routes!(create_test_users))
            .with_state(state)
    } else {
        OpenApiRouter::new()
    }
}

/// Create signed-in USER accounts in bulk, for load tests (ADMIN; only when
/// the server runs with the `test_users` setting on).
#[utoipa::path(post, path = "/admin-api/test-users", tag = "identity", security(("bearer" = [])),
    request_body = TestUsersRequest,
    responses(
        (status = 201, description = "The users, each with an access token", body = TestUsers),
        (status = 404, description = "The `test_users` setting is off", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "`count` outside 1..=10000 or a bad `prefix`", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::AdminOnly,
    ))]
async fn create_test_users(
    axum::extract::State(s): State,
    admin: Admin,
    Json(body): Json<TestUsersRequest>,
) -> Result<Created<TestUsers>, Problem> {
    let users = s.service.create_test_users(&admin, &body).await?;
    Ok(Created(TestUsers { users }))
}

/// The refresh token from a JSON body, else from the cookie.
fn presented_refresh_token(headers: &HeaderMap, body: &[u8]) -> Result<Option<String>, Problem> {
    let from_body = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<RefreshTokenBody>(body)
            .map_err(|e| Problem::bad_request(format!("invalid JSON body: {e}")))?
            .refresh_token
    };
    Ok(from_body.or_else(|| refresh_cookie(headers)))
}

/// The refresh token the caller presented; 401 when there is none.
fn required_refresh_token(headers: &HeaderMap, body: &[u8]) -> Result<String, Problem> {
    presented_refresh_token(headers, body)?
        .ok_or_else(|| crate::IdentityError::MissingRefreshToken.into())
}

fn refresh_cookie(headers: &HeaderMap) -> Option<String> {
    platform::cookie::read(headers, REFRESH_COOKIE).map(str::to_owned)
}

fn cookie(s: &IdentityHttp, value: &str, max_age_secs: i64) -> HeaderValue {
    platform::cookie::strict(
        REFRESH_COOKIE,
        value,
        COOKIE_PATH,
        max_age_secs,
        s.secure_cookie,
    )
}

fn with_refresh_cookie(s: &IdentityHttp, tokens: Tokens) -> Response {
    let max_age = s.service.settings().refresh_token_ttl.whole_seconds();
    let set_cookie = cookie(s, &tokens.refresh_token, max_age);
    let mut response = Json(tokens).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refresh_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; stampede_refresh=abc123; x=y"),
        );
        assert_eq!(refresh_cookie(&headers).as_deref(), Some("abc123"));
    }

    #[test]
    fn a_body_token_wins_over_the_cookie_and_bad_json_is_a_400() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("stampede_refresh=cookie"),
        );
        let body = br#"{"refresh_token":"body"}"#;
        assert_eq!(
            presented_refresh_token(&headers, body)
                .ok()
                .flatten()
                .as_deref(),
            Some("body")
        );
        assert_eq!(
            presented_refresh_token(&headers, b"")
                .ok()
                .flatten()
                .as_deref(),
            Some("cookie")
        );
        assert_eq!(
            presented_refresh_token(&headers, b"{")
                .map_err(|p| p.status)
                .err(),
            Some(400)
        );
    }
}
