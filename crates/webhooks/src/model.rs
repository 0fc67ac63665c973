//! Endpoints, messages and attempts, and the rules about them: which event
//! types exist, what a valid endpoint is, how secrets look and when a
//! failed delivery is tried again. No I/O.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kernel::{FieldError, Secret, Timestamp, Violations};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

kernel::id_type!(
    /// A registered webhook endpoint.
    EndpointId
);

kernel::id_type!(
    /// One event for one endpoint: the unit of delivery, retried under one
    /// `webhook-id` until it succeeds or is given up.
    MessageId
);

kernel::id_type!(
    /// One try at delivering a message.
    AttemptId
);

/// The event types an endpoint can subscribe to.
pub const EVENT_TYPES: &[&str] = &[
    "order.paid",
    "order.cancelled",
    "reward_request.approved",
    "reward_request.rejected",
    "line_entry.called",
    "waiting_list.offered",
];

/// The test send's event type; every endpoint receives it when asked.
pub const TEST_EVENT: &str = "webhook.test";

/// How long a rotated-out secret keeps signing beside the new one.
pub const PREVIOUS_SECRET_GRACE: time::Duration = time::Duration::hours(24);

/// How long a message is retried before it is given up.
pub const RETRY_WINDOW: time::Duration = time::Duration::days(3);

/// The longest wait between two attempts.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(10 * 3600);

/// How much of a response body the log keeps.
pub const RESPONSE_EXCERPT_BYTES: usize = 1024;

/// The longest accepted URL and description.
const MAX_URL_CHARS: usize = 2048;
const MAX_DESCRIPTION_CHARS: usize = 500;

/// What an admin sends to register an endpoint.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// `http://` or `https://`; loopback and private addresses are refused
    /// unless the deployment allows them.
    pub url: String,
    /// At least one of the known event types.
    pub event_types: Vec<String>,
    pub description: Option<String>,
}

/// A change to an endpoint; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    /// An empty string clears it.
    pub description: Option<String>,
    /// `false` enables an endpoint disabled by a `410 Gone` (or by hand).
    pub disabled: Option<bool>,
}

/// An endpoint's signing secret, `whsec_` and the base64 of 24 random bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(Secret<String>);

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret([redacted])")
    }
}

impl SigningSecret {
    pub const PREFIX: &'static str = "whsec_";

    /// A fresh secret from the operating system's generator.
    pub fn generate() -> Result<Self, String> {
        let mut bytes = [0u8; 24];
        getrandom::fill(&mut bytes).map_err(|e| e.to_string())?;
        Ok(Self(Secret::new(format!(
            "{}{}",
            Self::PREFIX,
            STANDARD.encode(bytes)
        ))))
    }

    /// A stored secret, checked to decode.
    pub fn parse(text: String) -> Result<Self, String> {
        let secret = Self(Secret::new(text));
        secret.key()?;
        Ok(secret)
    }

    /// The HMAC key: the base64 after `whsec_`.
    pub fn key(&self) -> Result<Vec<u8>, String> {
        let text = self.0.expose();
        let encoded = text.strip_prefix(Self::PREFIX).unwrap_or(text);
        STANDARD
            .decode(encoded)
            .map_err(|_| "the secret is not base64 after whsec_".to_owned())
    }

    /// The secret as text, for the one answer that shows it and for the store.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

/// An endpoint as stored, secrets included (they sign every delivery).
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: EndpointId,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
    pub disabled: bool,
    pub secret: SigningSecret,
    /// The secret before the last rotation, and until when it still signs.
    pub previous_secret: Option<(SigningSecret, Timestamp)>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Endpoint {
    /// The secrets that sign a delivery now: the current one, and the
    /// previous one within its grace period.
    #[must_use]
    pub fn signing_secrets(&self, now: Timestamp) -> Vec<&SigningSecret> {
        let mut secrets = vec![&self.secret];
        if let Some((previous, until)) = &self.previous_secret
            && now < *until
        {
            secrets.push(previous);
        }
        secrets
    }

    #[must_use]
    pub fn wants(&self, event_type: &str) -> bool {
        self.event_types.iter().any(|t| t == event_type)
    }

    #[must_use]
    pub fn view(&self) -> EndpointView {
        EndpointView {
            id: self.id,
            url: self.url.clone(),
            event_types: self.event_types.clone(),
            description: self.description.clone(),
            disabled: self.disabled,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// An endpoint as the API shows it: never its secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EndpointView {
    pub id: EndpointId,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
    /// Disabled endpoints receive nothing; a `410 Gone` answer disables one.
    pub disabled: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The answer to a registration or a rotation: the endpoint and its secret,
/// shown only here.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EndpointWithSecret {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// `whsec_…`: the key of `webhook-signature`; store it, it is not shown again.
    pub secret: String,
}

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MessageState {
    /// Waiting for its (next) attempt.
    Pending,
    /// A 2xx answer was received.
    Delivered,
    /// Given up: the retry window passed, or the endpoint is gone (410).
    Failed,
}

impl MessageState {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Delivered => "DELIVERED",
            Self::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "PENDING" => Some(Self::Pending),
            "DELIVERED" => Some(Self::Delivered),
            "FAILED" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// A message to queue: one event for one endpoint.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: MessageId,
    pub endpoint_id: EndpointId,
    /// What it comes from (the bus message's id), so that an event heard
    /// twice is queued once per endpoint; fresh for test sends.
    pub source_id: Uuid,
    pub event_type: String,
    /// The exact body sent, `{"type", "timestamp", "data"}`.
    pub body: String,
    pub created_at: Timestamp,
}

impl NewMessage {
    /// A message of `event_type` with `data`, for `endpoint`.
    pub fn new(
        endpoint_id: EndpointId,
        source_id: Uuid,
        event_type: &str,
        occurred_at: Timestamp,
        data: &serde_json::Value,
        now: Timestamp,
    ) -> Result<Self, serde_json::Error> {
        let body = serde_json::to_string(&serde_json::json!({
            "type": event_type,
            "timestamp": occurred_at,
            "data": data,
        }))?;
        Ok(Self {
            id: MessageId::new(),
            endpoint_id,
            source_id,
            event_type: event_type.to_owned(),
            body,
            created_at: now,
        })
    }
}

/// The `webhook-id` of a message: the same on every attempt.
#[must_use]
pub fn webhook_id(id: MessageId) -> String {
    format!("msg_{}", id.0.simple())
}

/// A message due for an attempt, with what sending it needs.
#[derive(Debug, Clone)]
pub struct DueMessage {
    pub id: MessageId,
    pub endpoint: Endpoint,
    pub event_type: String,
    pub body: String,
    pub attempts: u32,
    /// When the current retry window opened (creation, or the last replay).
    pub window_started_at: Timestamp,
    pub next_attempt_at: Timestamp,
}

/// One attempt as the delivery log shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Attempt {
    pub id: AttemptId,
    /// The message's `webhook-id` header, the same on every retry.
    pub webhook_id: String,
    #[serde(skip)]
    pub message_id: MessageId,
    #[serde(skip)]
    pub endpoint_id: EndpointId,
    pub event_type: String,
    /// 1 for the first try of the message, counting on over replays.
    pub attempt: u32,
    /// The receiver's status; null when no answer came (refused, timed out).
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// The first kilobyte of the receiver's answer.
    pub response_excerpt: Option<String>,
    pub attempted_at: Timestamp,
    /// When it is tried again; null when delivered or given up.
    pub next_retry_at: Option<Timestamp>,
    /// Whether the message was given up after this attempt.
    pub gave_up: bool,
}

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx.
    Delivered,
    /// `410 Gone`: the endpoint is disabled and the message given up.
    Gone,
    /// Anything else: retried, waiting at least `retry_after` if the
    /// receiver asked (429, 502, 504).
    Failed { retry_after: Option<Duration> },
}

/// How failed attempts are spaced.
#[derive(Debug, Clone, Copy)]
pub struct RetrySchedule {
    /// The first retry's delay (`webhook_retry_base_seconds`).
    pub base: Duration,
}

impl RetrySchedule {
    /// The wait after `failures` failed attempts: the base doubled after
    /// each failure, capped, times a jitter factor in `[0.5, 1.5)`
    /// (`jitter` in `[0, 1)`), so receivers recovering from an outage are
    /// not hit by every sender at once.
    #[must_use]
    pub fn delay(&self, failures: u32, jitter: f64) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(30));
        let plain = self.base.saturating_mul(factor).min(MAX_RETRY_DELAY);
        plain.mul_f64(0.5 + jitter.clamp(0.0, 1.0))
    }

    /// When to try again after `failures` failures, or `None` to give up:
    /// the retry window (three days from `window_started_at`) is over.
    #[must_use]
    pub fn next(
        &self,
        failures: u32,
        jitter: f64,
        retry_after: Option<Duration>,
        window_started_at: Timestamp,
        now: Timestamp,
    ) -> Option<Timestamp> {
        let mut wait = self.delay(failures, jitter);
        if let Some(asked) = retry_after {
            wait = wait.max(asked.min(MAX_RETRY_DELAY));
        }
        let at = now + wait;
        (at <= window_started_at + RETRY_WINDOW).then_some(at)
    }
}

/// Checks a URL's shape: absolute `http(s)`, a host, no credentials.
pub fn check_url(text: &str) -> Result<url::Url, String> {
    if text.chars().count() > MAX_URL_CHARS {
        return Err(format!("must be at most {MAX_URL_CHARS} characters"));
    }
    let url = url::Url::parse(text).map_err(|e| format!("is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http:// or https:// URL".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    if url.fragment().is_some() {
        return Err("must not have a fragment".into());
    }
    Ok(url)
}

/// Checks a list of event types: non-empty, known, no duplicates (returned
/// in the order given).
pub fn check_event_types(types: &[String]) -> Result<Vec<String>, String> {
    if types.is_empty() {
        return Err("must name at least one event type".into());
    }
    let mut out: Vec<String> = Vec::with_capacity(types.len());
    for t in types {
        if !EVENT_TYPES.contains(&t.as_str()) {
            return Err(format!(
                "unknown event type {t:?}; known: {}",
                EVENT_TYPES.join(", ")
            ));
        }
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    Ok(out)
}

/// Checks a description: at most 500 characters; empty means none.
pub fn check_description(text: Option<&str>) -> Result<Option<String>, String> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) if t.chars().count() > MAX_DESCRIPTION_CHARS => Err(format!(
            "must be at most {MAX_DESCRIPTION_CHARS} characters"
        )),
        Some(t) => Ok(Some(t.to_owned())),
    }
}

/// A registration checked field by field (the address checks come after,
/// in the service, since they resolve names).
pub fn check_new(
    new: &NewEndpoint,
) -> Result<(url::Url, Vec<String>, Option<String>), Vec<FieldError>> {
    let mut v = Violations::default();
    let url = v.check("url", check_url(&new.url));
    let types = v.check("event_types", check_event_types(&new.event_types));
    let description = v.check("description", check_description(new.description.as_deref()));
    v.into_errors()?;
    match (url, types, description) {
        (Some(u), Some(t), Some(d)) => Ok((u, t, d)),
        _ => Err(Vec::new()),
    }
}

/// The first `RESPONSE_EXCERPT_BYTES` of a body, cut at a character boundary.
#[must_use]
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(RESPONSE_EXCERPT_BYTES)]);
    let mut out = text.into_owned();
    while out.len() > RESPONSE_EXCERPT_BYTES {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_generated_secret_has_the_prefix_and_24_bytes() {
        let secret = SigningSecret::generate().expect("random");
        assert!(secret.expose().starts_with("whsec_"));
        assert_eq!(secret.key().expect("decodes").len(), 24);
        assert_eq!(format!("{secret:?}"), "SigningSecret([redacted])");
    }

    #[test]
    fn urls_must_be_http_with_a_host_and_no_credentials() {
        assert!(check_url("https://example.com/hooks").is_ok());
        assert!(check_url("http://example.com:8080/").is_ok());
        for bad in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "example.com",
            "https://user:pw@example.com/",
            "gopher://x",
            "",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn event_types_must_be_known_and_present() {
        assert!(check_event_types(&[]).is_err());
        assert!(check_event_types(&["order.shipped".into()]).is_err());
        assert!(
            check_event_types(&["webhook.test".into()]).is_err(),
            "implicit, not subscribable"
        );
        assert_eq!(
            check_event_types(&["order.paid".into(), "order.paid".into()]).expect("ok"),
            vec!["order.paid".to_owned()]
        );
    }

    #[test]
    fn retries_double_with_jitter_and_stop_after_three_days() {
        let schedule = RetrySchedule {
            base: Duration::from_secs(5),
        };
        assert_eq!(schedule.delay(1, 0.5), Duration::from_secs(5));
        assert_eq!(schedule.delay(2, 0.5), Duration::from_secs(10));
        assert_eq!(schedule.delay(3, 0.5), Duration::from_secs(20));
        assert_eq!(schedule.delay(1, 0.0), Duration::from_millis(2500));
        assert!(schedule.delay(1, 0.999) < Duration::from_millis(7500));
        assert_eq!(schedule.delay(40, 0.5), MAX_RETRY_DELAY);

        let start: Timestamp = datetime!(2026-12-01 00:00 UTC).into();
        assert!(schedule.next(1, 0.5, None, start, start).is_some());
        let late = start + time::Duration::days(3) - time::Duration::minutes(1);
        assert_eq!(schedule.next(20, 0.5, None, start, late), None, "given up");
        let asked = schedule
            .next(1, 0.5, Some(Duration::from_secs(120)), start, start)
            .expect("retried");
        assert_eq!(asked, start + Duration::from_secs(120), "Retry-After wins");
    }

    #[test]
    fn the_previous_secret_signs_only_within_its_grace() {
        let now: Timestamp = datetime!(2026-12-01 00:00 UTC).into();
        let mut endpoint = Endpoint {
            id: EndpointId::new(),
            url: "https://example.com".into(),
            event_types: vec!["order.paid".into()],
            description: None,
            disabled: false,
            secret: SigningSecret::generate().expect("random"),
            previous_secret: None,
            created_at: now,
            updated_at: now,
        };
        assert_eq!(endpoint.signing_secrets(now).len(), 1);
        endpoint.previous_secret = Some((
            SigningSecret::generate().expect("random"),
            now + PREVIOUS_SECRET_GRACE,
        ));
        assert_eq!(endpoint.signing_secrets(now).len(), 2);
        assert_eq!(
            endpoint
                .signing_secrets(now + time::Duration::hours(25))
                .len(),
            1
        );
    }

    #[test]
    fn excerpts_stop_at_a_kilobyte() {
        assert_eq!(excerpt(b"ok"), "ok");
        assert_eq!(excerpt(&[b'a'; 5000]).len(), RESPONSE_EXCERPT_BYTES);
        let many = "é".repeat(1000);
        assert!(excerpt(many.as_bytes()).len() <= RESPONSE_EXCERPT_BYTES);
    }
}
