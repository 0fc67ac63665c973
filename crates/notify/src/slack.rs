//! Slack-compatible incoming webhooks: `POST {"text": ...}` to the
//! configured URL. The URL is the credential, so it is a [`Secret`] and is
//! never logged (transport errors are stripped of it).
//!
//! A `429` is retried here after its `Retry-After` when the wait fits in
//! [`SlackWebhook::max_wait`] (the bus's `HandlerError` carries no
//! retry-after hint); a longer one, or any other non-2xx, fails the post,
//! and a subscriber's delivery is then retried by the bus.
//! `notify_slack_posts_total{outcome}` counts `sent`, `rate_limited` (each
//! 429 received) and `failed`.

use std::time::Duration;

use async_trait::async_trait;
use bus::{Envelope, Handler, HandlerError};
use kernel::Secret;
use serde_json::json;

/// How long one POST may take.
pub const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest total `Retry-After` waited within one post; under the bus's
/// 30 s lease with room for the posts themselves.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(15);
/// The wait after a 429 without a usable `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Why a post did not go through.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SlackError {
    #[error("slack_webhook_url must be an http(s) URL")]
    BadUrl,
    #[error("the webhook answered {0}")]
    Status(u16),
    #[error("the webhook is rate limiting; retry after {0:?}")]
    RateLimited(Duration),
    /// Never holds the URL.
    #[error("the webhook cannot be reached: {0}")]
    Transport(String),
}

/// One incoming-webhook URL.
pub struct SlackWebhook {
    client: reqwest::Client,
    url: Secret<String>,
    max_wait: Duration,
}

impl std::fmt::Debug for SlackWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackWebhook").finish_non_exhaustive()
    }
}

impl SlackWebhook {
    pub fn new(url: Secret<String>) -> Result<Self, SlackError> {
        Self::check(&url)?;
        let client = reqwest::Client::builder()
            .timeout(POST_TIMEOUT)
            .build()
            .map_err(|e| SlackError::Transport(e.without_url().to_string()))?;
        Ok(Self {
            client,
            url,
            max_wait: MAX_RETRY_WAIT,
        })
    }

    /// Checks a URL [`SlackWebhook::new`] takes: http(s) with a host.
    pub fn check(url: &Secret<String>) -> Result<(), SlackError> {
        let parsed = reqwest::Url::parse(url.expose()).map_err(|_| SlackError::BadUrl)?;
        if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() {
            Ok(())
        } else {
            Err(SlackError::BadUrl)
        }
    }

    /// Sets the longest total `Retry-After` waited within one post.
    #[must_use]
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// Posts `text`; waits out `429 Retry-After` within the bound.
    pub async fn post(&self, text: &str) -> Result<(), SlackError> {
        let outcome = self.try_post(text).await;
        let label = if outcome.is_ok() { "sent" } else { "failed" };
        metrics::counter!("notify_slack_posts_total", "outcome" => label).increment(1);
        if let Err(error) = &outcome {
            tracing::warn!(%error, "slack post failed");
        }
        outcome
    }

    async fn try_post(&self, text: &str) -> Result<(), SlackError> {
        let body = json!({ "text": text });
        let mut waited = Duration::ZERO;
        loop {
            let response = self
                .client
                .post(self.url.expose())
                .json(&body)
                .send()
                .await
                .map_err(|e| SlackError::Transport(e.without_url().to_string()))?;
            let status = response.status();
            if status.is_success() {
                return Ok(());
            }
            if status != reqwest::StatusCode::TOO_MANY_REQUESTS {
                return Err(SlackError::Status(status.as_u16()));
            }
            metrics::counter!("notify_slack_posts_total", "outcome" => "rate_limited").increment(1);
            let wait = retry_after(response.headers()).unwrap_or(DEFAULT_RETRY_AFTER);
            if waited + wait > self.max_wait {
                return Err(SlackError::RateLimited(wait));
            }
            tracing::info!(retry_after = ?wait, "slack webhook rate limited; waiting");
            tokio::time::sleep(wait).await;
            waited += wait;
        }
    }
}

/// `Retry-After` in seconds (the form Slack sends); an HTTP date or a
/// nonsense value is treated as absent. Capped at an hour.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds.min(3600)))
}

/// Turns a message into Slack text; `Ok(None)` posts nothing.
pub type RenderSlack = fn(&Envelope) -> Result<Option<String>, String>;

/// A subscriber that posts each of its messages to a webhook, under a
/// name of its own (own retries, own dead letters). Line calls will be
/// one (`park`'s calls, when that module exists). Without a webhook the
/// text is logged and the delivery is done.
pub struct SlackSubscriber {
    name: &'static str,
    topics: &'static [&'static str],
    render: RenderSlack,
    webhook: Option<std::sync::Arc<SlackWebhook>>,
}

impl SlackSubscriber {
    #[must_use]
    pub fn new(
        name: &'static str,
        topics: &'static [&'static str],
        render: RenderSlack,
        webhook: Option<std::sync::Arc<SlackWebhook>>,
    ) -> Self {
        Self {
            name,
            topics,
            render,
            webhook,
        }
    }
}

#[async_trait]
impl Handler for SlackSubscriber {
    fn name(&self) -> &'static str {
        self.name
    }

    fn topics(&self) -> &'static [&'static str] {
        self.topics
    }

    async fn handle(&self, message: &Envelope) -> Result<(), HandlerError> {
        let Some(text) = (self.render)(message).map_err(HandlerError)? else {
            return Ok(());
        };
        match &self.webhook {
            Some(webhook) => webhook
                .post(&text)
                .await
                .map_err(|e| HandlerError(e.to_string())),
            None => {
                tracing::info!(subscriber = self.name, %text, "slack not configured; logged");
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_in_seconds() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(reqwest::header::RETRY_AFTER, "2".parse().expect("a value"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().expect("a value"),
        );
        assert_eq!(retry_after(&headers), None);
        headers.insert(
            reqwest::header::RETRY_AFTER,
            "999999".parse().expect("a value"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3600)));
    }

    #[test]
    fn only_http_urls_are_taken_and_none_is_shown() {
        assert!(SlackWebhook::new(Secret::new("ftp://hooks.example.com/x".into())).is_err());
        assert!(SlackWebhook::new(Secret::new("not a url".into())).is_err());
        let hook = SlackWebhook::new(Secret::new("https://hooks.example.com/T/B/secret".into()))
            .expect("an https url");
        assert!(!format!("{hook:?}").contains("secret"));
    }
}
