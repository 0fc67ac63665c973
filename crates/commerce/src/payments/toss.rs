//! The Toss Payments adapter: [`TossProvider`] speaks Toss's REST API.
//!
//! - charge: `POST /v1/payments/confirm` `{paymentKey, orderId, amount}`
//!   with `Idempotency-Key` from [`Charge::idempotency_key`];
//! - refund: `POST /v1/payments/{paymentKey}/cancel` `{cancelReason,
//!   refundableAmount}` with [`Refund::idempotency_key`];
//! - look-up: `GET /v1/payments/orders/{orderId}`.
//!
//! Every call carries `Authorization: Basic base64(secretKey + ":")` and is
//! bounded by the configured timeout. What comes back is sorted as
//! `docs/payments.md` tabulates: a decline code is *declined* (nothing
//! taken); a timeout, a connection error, a 5xx, an unreadable body or one
//! of [`codes::UNKNOWN_CODES`] is *unknown* (only a look-up settles it).
//!
//! `webhook` reads Toss's `PAYMENT_STATUS_CHANGED` notices; `fake_server`
//! (feature `testing`) is a local server speaking the same protocol.

pub mod codes;
#[cfg(feature = "testing")]
pub mod fake_server;
pub mod webhook;
pub mod wire;

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use kernel::Secret;
use kernel::money::{Currency, Money};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use time::OffsetDateTime;

use super::provider::{
    Charge, ChargeOutcome, LookupFailed, PaymentProvider, ProviderName, ProviderPayment, Refund,
    RefundOutcome,
};
use wire::{CancelRequest, ConfirmRequest, TossError, TossPayment, TossStatus};

/// Where the real API lives.
pub const DEFAULT_API_BASE: &str = "https://api.tosspayments.com";

/// The default bound on one call. Toss asks for a generous read timeout on
/// confirm (card companies are slow); an order waits at most this long.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest answer read, in bytes; a longer one is garbage.
pub const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// The longest `cancelReason` Toss accepts, in characters.
pub const MAX_CANCEL_REASON_CHARS: usize = 200;

/// How the adapter reaches Toss.
#[derive(Debug, Clone)]
pub struct TossSettings {
    /// The secret key (`live_sk_…`, `test_sk_…`).
    pub secret_key: Secret<String>,
    /// `https://api.tosspayments.com`, or a server speaking the same protocol.
    pub api_base: String,
    /// The bound on each call, connection and answer included.
    pub timeout: Duration,
}

impl TossSettings {
    /// Settings for the real API with the default timeout.
    #[must_use]
    pub fn new(secret_key: Secret<String>) -> Self {
        Self {
            secret_key,
            api_base: DEFAULT_API_BASE.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Checks the settings as [`TossProvider::new`] does, without building
    /// a client (for configuration checks at start-up).
    pub fn check(&self) -> Result<reqwest::Url, TossConfigError> {
        let key = self.secret_key.expose();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TossConfigError::BadKey);
        }
        if self.timeout.is_zero() || self.timeout > MAX_TIMEOUT {
            return Err(TossConfigError::BadTimeout);
        }
        check_api_base(&self.api_base)
    }
}

/// The longest timeout accepted.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a [`TossProvider`] could not be built. Never holds the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TossConfigError {
    #[error("toss_secret_key must be non-empty printable ASCII")]
    BadKey,
    #[error("toss_api_base must be an http(s) URL with a host, got {0:?}")]
    BadBase(String),
    #[error("toss_timeout_ms must be 1 to 120000")]
    BadTimeout,
    #[error("the HTTP client could not be built: {0}")]
    Client(String),
}

/// Checks an API base as [`TossProvider::new`] does (for configuration).
pub fn check_api_base(api_base: &str) -> Result<reqwest::Url, TossConfigError> {
    // A URL with credentials in it is not echoed.
    let shown = if api_base.contains('@') {
        "[withheld]"
    } else {
        api_base
    };
    let bad = || TossConfigError::BadBase(shown.to_owned());
    let url = reqwest::Url::parse(api_base).map_err(|_| bad())?;
    let ok = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && !url.cannot_be_a_base()
        && url.query().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    if ok { Ok(url) } else { Err(bad()) }
}

/// The Toss Payments provider.
pub struct TossProvider {
    client: reqwest::Client,
    base: reqwest::Url,
    /// `Basic base64(secretKey + ":")`, marked sensitive.
    authorization: HeaderValue,
    timeout: Duration,
}

impl std::fmt::Debug for TossProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TossProvider")
            .field("base", &self.base.as_str())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// What one call brought back, before it is sorted into an outcome.
enum Answer {
    /// A 2xx with a Payment object.
    Payment(TossPayment),
    /// A 4xx or 5xx with Toss's error body.
    Error { status: u16, error: TossError },
    /// No answer that can be read: timeout, connection, garbage.
    Lost(String),
}

impl TossProvider {
    pub fn new(settings: TossSettings) -> Result<Self, TossConfigError> {
        let base = settings.check()?;
        let key = settings.secret_key.expose();
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{key}:"));
        let mut authorization = HeaderValue::from_str(&format!("Basic {encoded}"))
            .map_err(|_| TossConfigError::BadKey)?;
        authorization.set_sensitive(true);
        let mut builder = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Stampede/", env!("CARGO_PKG_VERSION")));
        // A local server speaking the protocol (tests, a sandbox) is never
        // reached through a proxy from the environment.
        if is_loopback(&base) {
            builder = builder.no_proxy();
        }
        let client = builder
            .build()
            .map_err(|e| TossConfigError::Client(e.to_string()))?;
        Ok(Self {
            client,
            base,
            authorization,
            timeout: settings.timeout,
        })
    }

    /// The base URL with `segments` appended, each percent-encoded.
    fn url(&self, segments: &[&str]) -> reqwest::Url {
        let mut url = self.base.clone();
        // `check_api_base` refused cannot-be-a-base URLs, so this holds.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = match request
            .header(AUTHORIZATION, self.authorization.clone())
            .send()
            .await
        {
            Ok(response) => response,
            Err(e) if e.is_timeout() => {
                return Answer::Lost(format!("no answer within {:?}", self.timeout));
            }
            Err(e) => return Answer::Lost(format!("the request failed: {}", e.without_url())),
        };
        let status = response.status().as_u16();
        let body = match read_bounded(response).await {
            Ok(body) => body,
            Err(why) => return Answer::Lost(format!("HTTP {status}: {why}")),
        };
        if (200..300).contains(&status) {
            return match serde_json::from_slice::<TossPayment>(&body) {
                Ok(payment) => Answer::Payment(payment),
                Err(e) => Answer::Lost(format!("HTTP {status} with an unreadable payment: {e}")),
            };
        }
        match serde_json::from_slice::<TossError>(&body) {
            Ok(error) => Answer::Error { status, error },
            Err(_) => Answer::Lost(format!("HTTP {status} with an unreadable error body")),
        }
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    }
}

/// The body, up to [`MAX_ANSWER_BYTES`]; the client's timeout bounds the wait.
async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(format!(
                        "the answer is larger than {MAX_ANSWER_BYTES} bytes"
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) if e.is_timeout() => return Err("the answer stopped mid-way (timeout)".into()),
            Err(e) => return Err(format!("the answer broke off: {}", e.without_url())),
        }
    }
}

fn unknown(reason: String) -> ChargeOutcome {
    tracing::warn!(%reason, "toss: the charge's outcome is unknown");
    ChargeOutcome::Unknown { reason }
}

#[async_trait]
impl PaymentProvider for TossProvider {
    fn name(&self) -> ProviderName {
        ProviderName::Toss
    }

    async fn charge(&self, charge: &Charge) -> ChargeOutcome {
        if charge.amount.currency != Currency::KRW {
            return ChargeOutcome::Declined {
                code: codes::UNSUPPORTED_CURRENCY.to_owned(),
                message: format!(
                    "the Toss adapter charges KRW only, not {}",
                    charge.amount.currency
                ),
            };
        }
        let body = ConfirmRequest {
            payment_key: charge.payment_key.clone(),
            order_id: charge.order_ref.clone(),
            amount: charge.amount.amount,
        };
        let request = self
            .client
            .post(self.url(&["v1", "payments", "confirm"]))
            .header("Idempotency-Key", charge.idempotency_key())
            .json(&body);
        match self.send(request).await {
            Answer::Payment(payment) => {
                if payment.order_id != charge.order_ref
                    || payment.payment_key != charge.payment_key
                    || payment.total_amount != charge.amount.amount
                {
                    return unknown(
                        "the confirm answered a payment of another order, key or amount".into(),
                    );
                }
                match (payment.status, payment.approved_at) {
                    (TossStatus::Done, Some(approved_at)) => ChargeOutcome::Approved {
                        payment_key: payment.payment_key,
                        approved_at,
                    },
                    (status, _) => unknown(format!(
                        "the confirm answered a payment in status {status:?}, not DONE with approvedAt"
                    )),
                }
            }
            Answer::Error { status, error } if codes::is_unknown(status, &error.code) => {
                unknown(format!("HTTP {status} {}", error.code))
            }
            Answer::Error { status, error } => {
                if error.code == codes::UNAUTHORIZED_KEY {
                    tracing::error!("toss refused the secret key (401): check toss_secret_key");
                } else {
                    tracing::info!(status, code = %error.code, "toss declined a charge");
                }
                ChargeOutcome::Declined {
                    code: error.code,
                    message: error.message,
                }
            }
            Answer::Lost(reason) => unknown(reason),
        }
    }

    async fn refund(&self, refund: &Refund) -> RefundOutcome {
        let body = CancelRequest {
            cancel_reason: refund
                .reason
                .chars()
                .take(MAX_CANCEL_REASON_CHARS)
                .collect(),
            refundable_amount: Some(refund.amount.amount),
        };
        let request = self
            .client
            .post(self.url(&["v1", "payments", &refund.payment_key, "cancel"]))
            .header("Idempotency-Key", refund.idempotency_key())
            .json(&body);
        let outcome = match self.send(request).await {
            Answer::Payment(payment) if payment.payment_key != refund.payment_key => {
                RefundOutcome::Unknown {
                    reason: "the cancel answered another payment".into(),
                }
            }
            Answer::Payment(payment) if payment.status == TossStatus::Canceled => {
                let refunded_at = payment
                    .cancels
                    .as_deref()
                    .and_then(<[_]>::last)
                    .map_or_else(OffsetDateTime::now_utc, |cancel| cancel.canceled_at);
                RefundOutcome::Refunded { refunded_at }
            }
            Answer::Payment(payment) => RefundOutcome::Unknown {
                reason: format!(
                    "the cancel answered a payment in status {:?}, not CANCELED",
                    payment.status
                ),
            },
            Answer::Error { error, .. } if error.code == codes::ALREADY_CANCELED_PAYMENT => {
                RefundOutcome::Refunded {
                    refunded_at: OffsetDateTime::now_utc(),
                }
            }
            // A refused key is fixed by configuration; retrying then succeeds.
            Answer::Error { status, error }
                if codes::is_unknown(status, &error.code)
                    || error.code == codes::UNAUTHORIZED_KEY =>
            {
                RefundOutcome::Unknown {
                    reason: format!("HTTP {status} {}", error.code),
                }
            }
            Answer::Error { error, .. } => RefundOutcome::Refused {
                code: error.code,
                message: error.message,
            },
            Answer::Lost(reason) => RefundOutcome::Unknown { reason },
        };
        if let RefundOutcome::Unknown { reason } = &outcome {
            tracing::warn!(%reason, "toss: the refund's outcome is unknown; retry with the same key");
        }
        outcome
    }

    async fn lookup(&self, order_ref: &str) -> Result<Option<ProviderPayment>, LookupFailed> {
        let request = self
            .client
            .get(self.url(&["v1", "payments", "orders", order_ref]));
        match self.send(request).await {
            Answer::Payment(payment) if payment.order_id != order_ref => Err(LookupFailed(
                "the look-up answered a payment of another order".into(),
            )),
            Answer::Payment(payment) => {
                let currency = match payment.currency.as_deref() {
                    None => Currency::KRW,
                    Some(code) => Currency::parse(code).map_err(|_| {
                        LookupFailed(format!("the payment's currency {code:?} is not ISO 4217"))
                    })?,
                };
                Ok(Some(ProviderPayment {
                    payment_key: payment.payment_key,
                    status: payment.status.provider_status(),
                    amount: Money::new(payment.total_amount, currency),
                    approved_at: payment.approved_at,
                }))
            }
            Answer::Error { status: 404, error } if error.code == codes::NOT_FOUND_PAYMENT => {
                Ok(None)
            }
            Answer::Error { status, error } => {
                Err(LookupFailed(format!("HTTP {status} {}", error.code)))
            }
            Answer::Lost(reason) => Err(LookupFailed(reason)),
        }
    }
}
