//! The JSON Toss Payments speaks: its Payment object, its error body and
//! the request bodies this adapter sends (the fake server reads the same).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::payments::ProviderPaymentStatus;

/// A payment's status as Toss spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TossStatus {
    Ready,
    InProgress,
    WaitingForDeposit,
    Done,
    Canceled,
    PartialCanceled,
    Aborted,
    Expired,
}

impl TossStatus {
    /// What an order makes of it: only `DONE` is charged and kept; a
    /// cancelled payment (wholly or in part) was charged and given back;
    /// everything else took nothing (yet).
    #[must_use]
    pub const fn provider_status(self) -> ProviderPaymentStatus {
        match self {
            Self::Done => ProviderPaymentStatus::Done,
            Self::Canceled | Self::PartialCanceled => ProviderPaymentStatus::Cancelled,
            Self::Ready
            | Self::InProgress
            | Self::WaitingForDeposit
            | Self::Aborted
            | Self::Expired => ProviderPaymentStatus::NotCharged,
        }
    }
}

/// The parts of Toss's Payment object the adapter reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TossPayment {
    pub payment_key: String,
    pub order_id: String,
    pub status: TossStatus,
    pub total_amount: i64,
    #[serde(default)]
    pub balance_amount: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub approved_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub cancels: Option<Vec<TossCancel>>,
}

/// One cancellation of a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TossCancel {
    pub cancel_amount: i64,
    pub cancel_reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub canceled_at: OffsetDateTime,
}

/// Toss's error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TossError {
    pub code: String,
    pub message: String,
}

/// `POST /v1/payments/confirm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmRequest {
    pub payment_key: String,
    pub order_id: String,
    pub amount: i64,
}

/// `POST /v1/payments/{paymentKey}/cancel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelRequest {
    pub cancel_reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refundable_amount: Option<i64>,
}
