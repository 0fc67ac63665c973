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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payment_as_toss_sends_it_is_read() {
        let payment: TossPayment = serde_json::from_str(
            r#"{"mId":"tosspayments","version":"2022-11-16","paymentKey":"tgen_20261203abc",
                "orderId":"order-7","orderName":"2 tickets","status":"DONE",
                "requestedAt":"2026-12-03T19:00:00+09:00","approvedAt":"2026-12-03T19:00:05+09:00",
                "totalAmount":30000,"balanceAmount":30000,"currency":"KRW","method":"카드",
                "cancels":null,"card":{"issuerCode":"61"}}"#,
        )
        .expect("a Toss payment");
        assert_eq!(payment.status, TossStatus::Done);
        assert_eq!(payment.total_amount, 30_000);
        let approved = payment.approved_at.expect("approvedAt");
        assert_eq!(approved.offset().whole_hours(), 9);
        assert_eq!(approved.unix_timestamp(), 1_796_292_005);
    }

    #[test]
    fn statuses_map_to_what_an_order_acts_on() {
        for (text, status, provider) in [
            ("DONE", TossStatus::Done, ProviderPaymentStatus::Done),
            (
                "CANCELED",
                TossStatus::Canceled,
                ProviderPaymentStatus::Cancelled,
            ),
            (
                "PARTIAL_CANCELED",
                TossStatus::PartialCanceled,
                ProviderPaymentStatus::Cancelled,
            ),
            (
                "READY",
                TossStatus::Ready,
                ProviderPaymentStatus::NotCharged,
            ),
            (
                "IN_PROGRESS",
                TossStatus::InProgress,
                ProviderPaymentStatus::NotCharged,
            ),
            (
                "WAITING_FOR_DEPOSIT",
                TossStatus::WaitingForDeposit,
                ProviderPaymentStatus::NotCharged,
            ),
            (
                "ABORTED",
                TossStatus::Aborted,
                ProviderPaymentStatus::NotCharged,
            ),
            (
                "EXPIRED",
                TossStatus::Expired,
                ProviderPaymentStatus::NotCharged,
            ),
        ] {
            let read: TossStatus =
                serde_json::from_value(serde_json::Value::String(text.into())).expect(text);
            assert_eq!(read, status);
            assert_eq!(read.provider_status(), provider, "{text}");
        }
        assert!(serde_json::from_str::<TossStatus>("\"PAID\"").is_err());
    }
}
