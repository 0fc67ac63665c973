//! The deliverer: takes due messages from the queue, signs and POSTs them,
//! logs every attempt and schedules the next one. At least once: a message
//! is done only when a 2xx answer has been recorded, and one whose worker
//! died mid-attempt is tried again when its lease ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderMap, StatusCode, header};
use kernel::SharedClock;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::guard::{AddressGuard, Refused};
use crate::model::{
    Attempt, AttemptId, DueMessage, MessageState, Outcome, RESPONSE_EXCERPT_BYTES, RetrySchedule,
    excerpt, webhook_id,
};
use crate::service::WebhookService;
use crate::signing::signature_header;
use crate::store::{AttemptResult, WebhookStore};

/// How long one attempt may take, connection to last byte.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a taken message is left to its worker before another may take
/// it (well above [`ATTEMPT_TIMEOUT`]).
const LEASE: Duration = Duration::from_secs(60);
/// Messages taken per round.
const BATCH: i64 = 32;

/// Works the webhook queue.
#[derive(Clone)]
pub struct Deliverer {
    store: Arc<dyn WebhookStore>,
    clock: SharedClock,
    client: reqwest::Client,
    guard: AddressGuard,
    schedule: RetrySchedule,
    wake: Arc<Notify>,
}

impl Deliverer {
    /// A deliverer for the service's queue and settings.
    pub fn new(service: &WebhookService) -> Result<Self, String> {
        let settings = service.settings();
        let guard = AddressGuard {
            allow_private: settings.allow_private,
        };
        let client = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            // A redirect could point anywhere, an internal address included.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(guard.resolver())
            .user_agent(concat!("Stampede-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            store: service.store(),
            clock: service.clock(),
            client,
            guard,
            schedule: RetrySchedule {
                base: settings.retry_base,
            },
            wake: service.wake.clone(),
        })
    }

    /// Delivers until `stop` resolves, woken by new messages and otherwise
    /// looking every `poll`.
    pub async fn run(&self, poll: Duration, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let full = match self.run_once().await {
                Ok(taken) => taken >= usize::try_from(BATCH).unwrap_or(usize::MAX),
                Err(e) => {
                    tracing::warn!(error = %e, "webhook delivery round failed");
                    false
                }
            };
            if full {
                continue;
            }
            tokio::select! {
                () = &mut stop => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// One round: takes the due messages and attempts each, concurrently.
    /// Returns how many were due.
    pub async fn run_once(&self) -> Result<usize, sqlx::Error> {
        let now = self.clock.now();
        let due = self.store.due(now, BATCH).await?;
        let count = due.len();
        let mut running = JoinSet::new();
        for message in due {
            if !self
                .store
                .claim(message.id, message.next_attempt_at, now + LEASE, now)
                .await?
            {
                continue;
            }
            let this = self.clone();
            running.spawn(async move { this.attempt(message).await });
        }
        while let Some(done) = running.join_next().await {
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "webhook attempt not recorded"),
                Err(e) => tracing::error!(error = %e, "webhook attempt panicked"),
            }
        }
        Ok(count)
    }

    /// One attempt at one message, recorded with what comes next.
    async fn attempt(&self, message: DueMessage) -> Result<(), sqlx::Error> {
        let started_at = self.clock.now();
        let started = Instant::now();
        let answer = self.send(&message, started_at.unix_timestamp()).await;
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let now = self.clock.now();
        let number = message.attempts.saturating_add(1);
        let (outcome, status_code, error, response_excerpt) = match answer {
            Ok(Answer {
                status,
                retry_after,
                body,
            }) => {
                let outcome = if status.is_success() {
                    Outcome::Delivered
                } else if status == StatusCode::GONE {
                    Outcome::Gone
                } else {
                    Outcome::Failed { retry_after }
                };
                let error = (!status.is_success()).then(|| format!("HTTP {}", status.as_u16()));
                (outcome, Some(status.as_u16()), error, Some(body))
            }
            Err(why) => (Outcome::Failed { retry_after: None }, None, Some(why), None),
        };
        let (state, next, disable, error) = match outcome {
            Outcome::Delivered => (MessageState::Delivered, None, false, error),
            Outcome::Gone => (
                MessageState::Failed,
                None,
                true,
                Some("410 Gone: the endpoint is disabled".to_owned()),
            ),
            Outcome::Failed { retry_after } => {
                let jitter: f64 = rand::random();
                match self.schedule.next(
                    number,
                    jitter,
                    retry_after,
                    message.window_started_at,
                    now,
                ) {
                    Some(at) => (MessageState::Pending, Some(at), false, error),
                    None => (
                        MessageState::Failed,
                        None,
                        false,
                        Some(format!(
                            "{}; given up after {number} attempts",
                            error.unwrap_or_default()
                        )),
                    ),
                }
            }
        };
        if disable {
            tracing::warn!(endpoint = %message.endpoint.id, "webhook endpoint answered 410 Gone: disabled");
        }
        let attempt = Attempt {
            id: AttemptId::new(),
            webhook_id: webhook_id(message.id),
            message_id: message.id,
            endpoint_id: message.endpoint.id,
            event_type: message.event_type.clone(),
            attempt: number,
            status_code,
            duration_ms,
            error,
            response_excerpt,
            attempted_at: started_at,
            next_retry_at: next,
            gave_up: state == MessageState::Failed,
        };
        self.store
            .record(
                AttemptResult {
                    attempt,
                    state,
                    next_attempt_at: next,
                    disable_endpoint: disable,
                },
                now,
            )
            .await
    }

    /// POSTs the message, signed, to its endpoint's URL.
    async fn send(&self, message: &DueMessage, timestamp: i64) -> Result<Answer, String> {
        let url = reqwest::Url::parse(&message.endpoint.url).map_err(|e| e.to_string())?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("not an http(s) URL".into());
        }
        // Names go through the guarded resolver when connecting; an address
        // in the URL is never resolved, so it is checked here.
        if matches!(url.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)))
            && let Err(refused) = self.guard.check_url(&url).await
        {
            return Err(refused.to_string());
        }
        let id = webhook_id(message.id);
        let now = self.clock.now();
        let secrets = message.endpoint.signing_secrets(now);
        let signature = signature_header(&secrets, &id, timestamp, &message.body)?;
        let response = self
            .client
            .post(url)
            .header(header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(message.body.clone())
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = response.status();
        let retry_after = honoured_retry_after(status, response.headers());
        let body = read_excerpt(response).await;
        Ok(Answer {
            status,
            retry_after,
            body,
        })
    }
}

/// What a receiver answered.
struct Answer {
    status: StatusCode,
    retry_after: Option<Duration>,
    body: String,
}

/// The first kilobyte of the body, reading no further.
async fn read_excerpt(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < RESPONSE_EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    excerpt(&bytes)
}

/// `Retry-After` (seconds or an HTTP date) on the answers that ask to slow
/// down: 429, 502, 503 and 504.
fn honoured_retry_after(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    if !matches!(status.as_u16(), 429 | 502 | 503 | 504) {
        return None;
    }
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    parse_retry_after(value, time::OffsetDateTime::now_utc())
}

fn parse_retry_after(value: &str, now: time::OffsetDateTime) -> Option<Duration> {
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(value, format)
        .ok()?
        .assume_utc();
    Some(Duration::try_from(at - now).unwrap_or(Duration::ZERO))
}

/// A transport error with its causes, without the URL (it may carry a
/// token of the integrator's).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("timed out after {}s", ATTEMPT_TIMEOUT.as_secs());
    }
    let mut text = String::new();
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(c) = cause {
        if let Some(refused) = c.downcast_ref::<Refused>() {
            return refused.to_string();
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&c.to_string());
        cause = c.source();
    }
    if text.is_empty() {
        "the request failed".into()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        let now = datetime!(2026-12-01 00:00 UTC);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Tue, 01 Dec 2026 00:01:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after("soon", now), None);
        let mut headers = HeaderMap::new();
        headers.insert(header::RETRY_AFTER, "3".parse().expect("value"));
        assert_eq!(
            honoured_retry_after(StatusCode::TOO_MANY_REQUESTS, &headers),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            honoured_retry_after(StatusCode::INTERNAL_SERVER_ERROR, &headers),
            None
        );
    }
}
