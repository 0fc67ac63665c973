//! The cookies Stampede sets for people (the API's refresh cookie, the
//! dashboard's session): read by name, and written HttpOnly and
//! SameSite=Strict on one path, `Secure` when the deployment serves HTTPS.

use http::{HeaderMap, HeaderValue, header};

/// The value of the cookie `name` among the request's cookies; `None` when
/// absent or empty.
#[must_use]
pub fn read<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// A strict cookie: `name=value` on `path` for `max_age_secs` (0 clears
/// it), HttpOnly, SameSite=Strict, and `Secure` when `secure`. A value that
/// cannot be a header (it never is one: tokens are base64url) clears it.
#[must_use]
pub fn strict(name: &str, value: &str, path: &str, max_age_secs: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; HttpOnly; SameSite=Strict; Path={path}; Max-Age={max_age_secs}{secure}"
    ))
    .or_else(|_| HeaderValue::from_str(&format!("{name}=; Path={path}; Max-Age=0")))
    .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_is_found_among_others_and_an_empty_one_is_absent() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; stampede_refresh=abc123; empty="),
        );
        assert_eq!(read(&headers, "stampede_refresh"), Some("abc123"));
        assert_eq!(read(&headers, "empty"), None);
        assert_eq!(read(&headers, "missing"), None);
    }

    #[test]
    fn a_strict_cookie_says_every_attribute() {
        let cookie = strict("s", "v", "/admin", 60, true);
        assert_eq!(
            cookie.to_str().ok(),
            Some("s=v; HttpOnly; SameSite=Strict; Path=/admin; Max-Age=60; Secure")
        );
        let bad = strict("s", "a\nb", "/admin", 60, false);
        assert_eq!(bad.to_str().ok(), Some("s=; Path=/admin; Max-Age=0"));
    }
}
