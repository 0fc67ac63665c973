//! The `fake` provider, for demos and outside test suites: the buyer names
//! the outcome (`APPROVE`, `DECLINE`, `UNKNOWN`) and the provider remembers
//! what it charged, so a look-up after an unknown answer settles it the way
//! a real provider would. Enabled only with `--fake-payments`.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::provider::{
    Charge, ChargeOutcome, LookupFailed, PaymentProvider, ProviderName, ProviderPayment,
    ProviderPaymentStatus, Refund, RefundOutcome,
};

/// The outcome a fake payment asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FakeOutcome {
    #[default]
    Approve,
    Decline,
    /// The charge happens but its answer is "lost": a look-up finds it.
    Unknown,
}

impl FakeOutcome {
    pub const ALL: [Self; 3] = [Self::Approve, Self::Decline, Self::Unknown];

    /// The outcome as the API spells it.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "APPROVE",
            Self::Decline => "DECLINE",
            Self::Unknown => "UNKNOWN",
        }
    }

    /// The payment key a fake charge carries, so the provider can read the
    /// outcome the buyer asked for from the charge alone.
    #[must_use]
    pub fn payment_key(self, order_ref: &str) -> String {
        format!("fake-{}-{order_ref}", self.as_str())
    }

    fn of_payment_key(key: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|outcome| key.starts_with(&format!("fake-{}-", outcome.as_str())))
            .unwrap_or_default()
    }
}

kernel::text_form!(FakeOutcome, "APPROVE, DECLINE or UNKNOWN");

/// The decline code the fake provider answers with.
pub const FAKE_DECLINE_CODE: &str = "FAKE_DECLINED";

/// A provider in process memory.
#[derive(Debug, Default)]
pub struct FakeProvider {
    payments: Mutex<HashMap<String, ProviderPayment>>,
}

impl FakeProvider {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn payments(&self) -> std::sync::MutexGuard<'_, HashMap<String, ProviderPayment>> {
        // A poisoned map still holds what was charged; keep using it.
        self.payments
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl PaymentProvider for FakeProvider {
    fn name(&self) -> ProviderName {
        ProviderName::Fake
    }

    async fn charge(&self, charge: &Charge) -> ChargeOutcome {
        let outcome = FakeOutcome::of_payment_key(&charge.payment_key);
        if outcome == FakeOutcome::Decline {
            return ChargeOutcome::Declined {
                code: FAKE_DECLINE_CODE.to_owned(),
                message: "the fake provider declined, as asked".to_owned(),
            };
        }
        let now = OffsetDateTime::now_utc();
        let payment = self
            .payments()
            .entry(charge.order_ref.clone())
            .or_insert_with(|| ProviderPayment {
                payment_key: charge.payment_key.clone(),
                status: ProviderPaymentStatus::Done,
                amount: charge.amount,
                approved_at: Some(now),
            })
            .clone();
        match outcome {
            FakeOutcome::Unknown => ChargeOutcome::Unknown {
                reason: "the fake provider lost its answer, as asked".to_owned(),
            },
            _ => ChargeOutcome::Approved {
                payment_key: payment.payment_key,
                approved_at: payment.approved_at.unwrap_or(now),
            },
        }
    }

    async fn refund(&self, refund: &Refund) -> RefundOutcome {
        let mut payments = self.payments();
        match payments.get_mut(&refund.order_ref) {
            Some(payment) => {
                payment.status = ProviderPaymentStatus::Cancelled;
                RefundOutcome::Refunded {
                    refunded_at: OffsetDateTime::now_utc(),
                }
            }
            None => RefundOutcome::Refused {
                code: "NOT_FOUND_PAYMENT".to_owned(),
                message: "the fake provider holds no payment for this order".to_owned(),
            },
        }
    }

    async fn lookup(&self, order_ref: &str) -> Result<Option<ProviderPayment>, LookupFailed> {
        Ok(self.payments().get(order_ref).cloned())
    }
}

#[cfg(test)]
mod tests {
    use kernel::money::{Currency, Money};

    use super::*;

    fn charge(outcome: FakeOutcome) -> Charge {
        Charge {
            order_ref: "order-1".to_owned(),
            payment_key: outcome.payment_key("order-1"),
            amount: Money::new(1_000, Currency::parse("KRW").expect("KRW")),
            attempt: 1,
        }
    }

    #[tokio::test]
    async fn an_unknown_answer_hides_a_charge_that_a_lookup_finds() {
        let provider = FakeProvider::new();
        let outcome = provider.charge(&charge(FakeOutcome::Unknown)).await;
        assert!(
            matches!(outcome, ChargeOutcome::Unknown { .. }),
            "{outcome:?}"
        );
        let found = provider.lookup("order-1").await.expect("lookup");
        assert_eq!(found.map(|p| p.status), Some(ProviderPaymentStatus::Done));
    }

    #[tokio::test]
    async fn a_decline_charges_nothing() {
        let provider = FakeProvider::new();
        let outcome = provider.charge(&charge(FakeOutcome::Decline)).await;
        assert!(
            matches!(outcome, ChargeOutcome::Declined { .. }),
            "{outcome:?}"
        );
        assert_eq!(provider.lookup("order-1").await.expect("lookup"), None);
    }

    #[tokio::test]
    async fn a_retried_charge_takes_the_money_once() {
        let provider = FakeProvider::new();
        let first = provider.charge(&charge(FakeOutcome::Approve)).await;
        let second = provider.charge(&charge(FakeOutcome::Approve)).await;
        assert_eq!(first, second);
        assert_eq!(provider.payments().len(), 1);
    }

    #[tokio::test]
    async fn a_refund_of_nothing_is_refused() {
        let provider = FakeProvider::new();
        let refund = Refund {
            order_ref: "order-2".to_owned(),
            payment_key: "fake-APPROVE-order-2".to_owned(),
            amount: Money::new(1, Currency::parse("KRW").expect("KRW")),
            reason: "test".to_owned(),
        };
        assert!(matches!(
            provider.refund(&refund).await,
            RefundOutcome::Refused { .. }
        ));
    }
}
