//! Sign-in for people. The session cookie holds the pair the API issues
//! (refresh and access token) and a per-session CSRF token:
//! `stampede_admin=<csrf>.<refresh>.<access>`, HttpOnly, SameSite=Strict,
//! scoped to `/admin`, `Secure` when configured. An expired access token is
//! refreshed through identity on the next page; the session ends with its
//! refresh token (logout, expiry, reuse). Every request that changes
//! something carries the CSRF token (a form field or an `x-csrf-token`
//! header), compared in constant time.

use std::net::IpAddr;

use askama::Template;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use identity::IdentityError;
use identity::model::{LoginRequest, Tokens};
use kernel::Principal;
use kernel::auth::{Admin as AdminRole, AuthError, Reader, Staff, TokenVerifier};
use platform::client::ClientIp;
use subtle::ConstantTimeEq;

use crate::Admin;
use crate::page::{self, is_htmx};

const COOKIE: &str = "stampede_admin";
/// The CSRF token of the login form, before there is a session.
const LOGIN_COOKIE: &str = "stampede_admin_login";
const CSRF_FIELD: &str = "_csrf";
const CSRF_HEADER: &str = "x-csrf-token";
/// Admin forms are small; anything larger is refused before parsing.
const FORM_LIMIT: usize = 64 * 1024;

/// The signed-in reader, left in the extensions by [`guard`].
#[derive(Clone)]
pub struct Signed {
    pub principal: Principal,
    pub email: String,
    pub csrf: String,
    pub reader: Reader,
    pub staff: Option<Staff>,
    pub admin: Option<AdminRole>,
}

/// A form's fields in order, repeated names kept (checkbox lists).
#[derive(Clone, Default)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The field's value, empty when it was not sent (what a form shows).
    pub fn value(&self, name: &str) -> &str {
        self.get(name).unwrap_or_default()
    }

    pub fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

fn set_cookie(admin: &Admin, name: &str, path: &str, value: &str, max_age: i64) -> HeaderValue {
    platform::cookie::strict(name, value, path, max_age, admin.secure_cookie)
}

fn session_cookie(admin: &Admin, csrf: &str, tokens: &Tokens) -> HeaderValue {
    let max_age = admin.identity.settings().refresh_token_ttl.whole_seconds();
    let value = format!("{csrf}.{}.{}", tokens.refresh_token, tokens.access_token);
    set_cookie(admin, COOKIE, "/admin", &value, max_age)
}

fn clear_session(admin: &Admin) -> HeaderValue {
    set_cookie(admin, COOKIE, "/admin", "", 0)
}

/// The cookie's three parts; the access token (a JWT) holds dots itself.
fn parse_session(value: &str) -> Option<(&str, &str, &str)> {
    let mut parts = value.splitn(3, '.');
    let csrf = parts.next().filter(|s| !s.is_empty())?;
    let refresh = parts.next().filter(|s| !s.is_empty())?;
    let access = parts.next().filter(|s| !s.is_empty())?;
    Some((csrf, refresh, access))
}

fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    css: &'static str,
    csrf: &'a str,
    error: Option<&'a str>,
    email: &'a str,
}

fn login_form(admin: &Admin, status: StatusCode, error: Option<&str>, email: &str) -> Response {
    let Some(csrf) = random_token() else {
        return page::message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again",
            "No randomness available.",
        );
    };
    let mut response = page::render(
        status,
        &LoginPage {
            css: crate::assets::CSS_URL.as_str(),
            csrf: &csrf,
            error,
            email,
        },
    );
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(admin, LOGIN_COOKIE, "/admin/login", &csrf, 3600),
    );
    response
}

pub async fn login_page(State(admin): State<Admin>) -> Response {
    login_form(&admin, StatusCode::OK, None, "")
}

/// Checks the password through identity; only readers get a session.
pub async fn log_in(
    State(admin): State<Admin>,
    ClientIp(client): ClientIp,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, FORM_LIMIT).await else {
        return page::message(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Too large",
            "The form is too large.",
        );
    };
    let fields = Fields(url::form_urlencoded::parse(&bytes).into_owned().collect());
    let expected = platform::cookie::read(&parts.headers, LOGIN_COOKIE).unwrap_or_default();
    let sent = fields.get(CSRF_FIELD).unwrap_or_default();
    if expected.is_empty() || !same_token(expected, sent) {
        return login_form(
            &admin,
            StatusCode::FORBIDDEN,
            Some("The form expired; please sign in again."),
            "",
        );
    }
    let email = fields.get("email").unwrap_or_default().to_owned();
    let password = fields.get("password").unwrap_or_default().to_owned();
    attempt(&admin, client, email, password).await
}

async fn attempt(admin: &Admin, client: IpAddr, email: String, password: String) -> Response {
    let tokens = match admin
        .identity
        .log_in(
            LoginRequest {
                email: email.clone(),
                password,
            },
            client,
        )
        .await
    {
        Ok(tokens) => tokens,
        Err(IdentityError::InvalidCredentials) => {
            return login_form(
                admin,
                StatusCode::UNAUTHORIZED,
                Some("Wrong email or password."),
                &email,
            );
        }
        Err(IdentityError::LoginThrottled { retry_after_secs }) => {
            let text = format!("Too many failed sign-ins; try again in {retry_after_secs} s.");
            return login_form(admin, StatusCode::TOO_MANY_REQUESTS, Some(&text), &email);
        }
        Err(e) => return page::problem(e.into()),
    };
    if !tokens.user.roles.is_reader() {
        // Nothing to keep: the login this made is ended at once.
        let _ = admin
            .identity
            .log_out_refresh_token(&tokens.refresh_token)
            .await;
        return page::refused(
            "The dashboard is for staff (ADMIN, OPERATOR) and auditors. Your account holds none of those roles; ask an administrator if you need access.",
        );
    }
    let Some(csrf) = random_token() else {
        return page::message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again",
            "No randomness available.",
        );
    };
    let mut response = page::see_other("/admin");
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, session_cookie(admin, &csrf, &tokens));
    headers.append(
        header::SET_COOKIE,
        set_cookie(admin, LOGIN_COOKIE, "/admin/login", "", 0),
    );
    response
}

/// Ends the login (its refresh token is revoked) and the cookie.
pub async fn log_out(State(admin): State<Admin>, headers: HeaderMap) -> Response {
    if let Some((_, refresh, _)) = platform::cookie::read(&headers, COOKIE).and_then(parse_session)
        && let Err(e) = admin.identity.log_out_refresh_token(refresh).await
    {
        return page::problem(e.into());
    }
    let mut response = to_login(&headers);
    response
        .headers_mut()
        .insert(header::SET_COOKIE, clear_session(&admin));
    response
}

/// To the login page; htmx is told to load it as a whole page.
fn to_login(headers: &HeaderMap) -> Response {
    if is_htmx(headers) {
        ([("hx-redirect", "/admin/login")], StatusCode::OK).into_response()
    } else {
        page::see_other("/admin/login")
    }
}

/// The principal of a session, refreshing an access token that no longer
/// passes; `Some(tokens)` when the cookie must be rewritten.
async fn principal_of(
    admin: &Admin,
    refresh: &str,
    access: &str,
) -> Result<(Principal, Option<Tokens>), AuthError> {
    match admin.identity.verify(access).await {
        Ok(principal) => Ok((principal, None)),
        Err(AuthError::Unavailable) => Err(AuthError::Unavailable),
        // Expired, or revoked by a role change: a refresh issues a token
        // with the current roles; a revoked login cannot refresh.
        Err(_) => {
            let tokens = admin
                .identity
                .refresh(refresh)
                .await
                .map_err(|_| AuthError::Invalid)?;
            let principal = admin.identity.verify(&tokens.access_token).await?;
            Ok((principal, Some(tokens)))
        }
    }
}

/// In front of every dashboard page: a session of a reader, and on any
/// request that is not a read, the session's CSRF token.
pub async fn guard(State(admin): State<Admin>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let Some((csrf, refresh, access)) =
        platform::cookie::read(&parts.headers, COOKIE).and_then(parse_session)
    else {
        return to_login(&parts.headers);
    };
    let (principal, refreshed) = match principal_of(&admin, refresh, access).await {
        Ok(found) => found,
        Err(AuthError::Unavailable) => {
            return page::message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "Sign-in cannot be checked right now; try again.",
            );
        }
        Err(_) => {
            let mut response = to_login(&parts.headers);
            response
                .headers_mut()
                .insert(header::SET_COOKIE, clear_session(&admin));
            return response;
        }
    };
    let Some(reader) = Reader::check(principal) else {
        return page::refused("Your account no longer holds a staff or auditor role.");
    };
    let csrf = csrf.to_owned();
    let mut fields = Fields::default();
    if !matches!(parts.method, Method::GET | Method::HEAD) {
        let Ok(bytes) = to_bytes(body, FORM_LIMIT).await else {
            return page::message(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too large",
                "The form is too large.",
            );
        };
        fields = Fields(url::form_urlencoded::parse(&bytes).into_owned().collect());
        let sent = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .or_else(|| fields.get(CSRF_FIELD))
            .unwrap_or_default();
        if !same_token(&csrf, sent) {
            return page::message(
                StatusCode::FORBIDDEN,
                "Refused",
                "The form's security token is missing or wrong; reload the page and try again.",
            );
        }
    }
    let email = match admin.identity.me(&principal).await {
        Ok(user) => user.email.as_str().to_owned(),
        Err(e) => return page::problem(e.into()),
    };
    parts.extensions.insert(Signed {
        principal,
        email,
        csrf: csrf.clone(),
        reader,
        staff: Staff::check(principal),
        admin: AdminRole::check(principal),
    });
    parts.extensions.insert(fields);
    let mut response = next.run(Request::from_parts(parts, Body::empty())).await;
    if let Some(tokens) = refreshed {
        response
            .headers_mut()
            .append(header::SET_COOKIE, session_cookie(&admin, &csrf, &tokens));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_cookie_splits_into_csrf_refresh_and_a_dotted_jwt() {
        assert_eq!(parse_session("c.r.a.b.c"), Some(("c", "r", "a.b.c")));
        assert_eq!(parse_session("c.r"), None);
        assert_eq!(parse_session(".r.a"), None);
    }

    #[test]
    fn tokens_compare_equal_only_when_identical() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "ab"));
        assert!(!same_token("", "x"));
    }
}
