//! Payments: the seam between an order and whoever takes the money.
//!
//! A provider answers a charge with one of three outcomes. *Unknown* is the
//! one that matters under faults: a timeout, a 5xx, a lost answer or a
//! garbled one may hide a charge that happened, so the order keeps its holds
//! and a reconciliation sweep asks the provider by order id — never charging
//! twice and never refunding a payment that did not happen.
//!
//! `provider` holds the trait and its types; `fake` the provider for demos
//! and outside test suites (`--fake-payments`); `toss` the Toss Payments
//! adapter, speaking its real protocol.

pub mod fake;
pub mod provider;
pub mod toss;

pub use fake::FakeOutcome;
pub use fake::FakeProvider;
pub use provider::{
    Charge, ChargeOutcome, LookupFailed, PaymentProvider, ProviderName, ProviderPayment,
    ProviderPaymentStatus, Refund, RefundOutcome,
};
pub use toss::{TossProvider, TossSettings};
