//! The payment provider seam: a charge, a refund and a look-up by order id,
//! each with the outcomes an order must tell apart.

use std::fmt;

use async_trait::async_trait;
use kernel::money::Money;
use time::OffsetDateTime;

/// Which provider took a payment, as the API and the order's row spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderName {
    Toss,
    Fake,
}

impl ProviderName {
    pub const ALL: [Self; 2] = [Self::Toss, Self::Fake];

    /// The name in the API and in the order's row.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Toss => "toss",
            Self::Fake => "fake",
        }
    }
}

kernel::text_form!(ProviderName, "toss or fake");

/// One attempt to take an order's money.
///
/// `order_ref` is the order's id as the provider knows it; `attempt` counts
/// the tries for that order from 1, so an idempotency key built from both
/// names one attempt and a retry of the same attempt replays at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub order_ref: String,
    pub payment_key: String,
    pub amount: Money,
    pub attempt: u32,
}

impl Charge {
    /// The idempotency key of this attempt: Toss matches keys on key, URL
    /// and method and ignores the body, so it names the order and attempt.
    #[must_use]
    pub fn idempotency_key(&self) -> String {
        format!("stampede-charge-{}-{}", self.order_ref, self.attempt)
    }
}

/// What a charge did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// The money is taken.
    Approved {
        payment_key: String,
        approved_at: OffsetDateTime,
    },
    /// The provider refused it; nothing was taken. `code` is the provider's
    /// own (kept on the order), `message` its text for people.
    Declined { code: String, message: String },
    /// The answer was lost, late, a 5xx or garbled: the money may or may not
    /// have been taken. Only a look-up settles it.
    Unknown { reason: String },
}

/// Giving a payment's money back (a full refund).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub order_ref: String,
    pub payment_key: String,
    pub amount: Money,
    pub reason: String,
}

impl Refund {
    /// The idempotency key of the refund: one refund per order, so a retry
    /// through the outbox replays instead of refunding twice.
    #[must_use]
    pub fn idempotency_key(&self) -> String {
        format!("stampede-refund-{}", self.order_ref)
    }
}

/// What a refund did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    /// The money is back with the buyer (also when it already was).
    Refunded { refunded_at: OffsetDateTime },
    /// The provider refused it for good (e.g. nothing left to refund).
    Refused { code: String, message: String },
    /// Not known to have happened; retry later with the same key.
    Unknown { reason: String },
}

/// A payment as the provider reports it when asked by order id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderPayment {
    pub payment_key: String,
    pub status: ProviderPaymentStatus,
    pub amount: Money,
    pub approved_at: Option<OffsetDateTime>,
}

/// The states of a provider's payment that an order acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderPaymentStatus {
    /// Charged.
    Done,
    /// Charged and given back, wholly or in part.
    Cancelled,
    /// Not charged (aborted, expired, still waiting for the buyer).
    NotCharged,
}

/// A look-up that could not say: the provider did not answer usefully.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupFailed(pub String);

impl fmt::Display for LookupFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the payment provider could not be asked: {}", self.0)
    }
}

impl std::error::Error for LookupFailed {}

/// A payment provider. Implementations bound every call by a timeout and
/// turn whatever they cannot read into `Unknown`, never a panic.
#[async_trait]
pub trait PaymentProvider: Send + Sync {
    /// Which provider this is.
    fn name(&self) -> ProviderName;

    /// Takes the money of one attempt.
    async fn charge(&self, charge: &Charge) -> ChargeOutcome;

    /// Gives a payment's money back.
    async fn refund(&self, refund: &Refund) -> RefundOutcome;

    /// The payment made for `order_ref`, if any (`Ok(None)`: none was made).
    async fn lookup(&self, order_ref: &str) -> Result<Option<ProviderPayment>, LookupFailed>;
}
