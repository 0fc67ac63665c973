//! The `PAYMENT_STATUS_CHANGED` webhook Toss Payments posts when a payment
//! changes state. Its body is a notice, not proof: anyone can post it, so
//! the route that receives it fetches the payment by order id
//! ([`PaymentProvider::lookup`](crate::payments::PaymentProvider::lookup))
//! and acts on what the provider says. This module only reads the body into
//! a typed value and refuses what is not one.
//!
//! ```json
//! {"eventType": "PAYMENT_STATUS_CHANGED",
//!  "createdAt": "2026-12-03T10:00:00.000000",
//!  "data": {"paymentKey": "...", "orderId": "...", "status": "DONE", ...}}
//! ```

use serde::Deserialize;

use super::wire::TossStatus;

/// The event type this module reads.
pub const PAYMENT_STATUS_CHANGED: &str = "PAYMENT_STATUS_CHANGED";

/// The largest body read, in bytes (a Payment object is a few KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The longest order id Toss accepts.
pub const MAX_ORDER_ID_CHARS: usize = 64;

/// The longest payment key accepted.
pub const MAX_PAYMENT_KEY_CHARS: usize = 200;

/// A well-formed `PAYMENT_STATUS_CHANGED` notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentStatusChanged {
    pub payment_key: String,
    pub order_id: String,
    /// The status the notice claims; verify it with a look-up.
    pub status: TossStatus,
    /// Toss's `createdAt`, as sent (local time without an offset).
    pub created_at: Option<String>,
}

/// Why a body is not a `PAYMENT_STATUS_CHANGED` notice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// Not a JSON object of the expected shape.
    #[error("the webhook body is malformed: {0}")]
    Malformed(String),
    /// Well-formed, but another event type (e.g. `DEPOSIT_CALLBACK`).
    #[error("the webhook event type {0:?} is not handled")]
    OtherEvent(String),
}

impl WebhookError {
    /// A stable code for a problem+json answer.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "MALFORMED_WEBHOOK",
            Self::OtherEvent(_) => "UNSUPPORTED_WEBHOOK_EVENT",
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    event_type: String,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    data: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    payment_key: String,
    order_id: String,
    status: TossStatus,
}

/// Reads a webhook body.
pub fn parse(body: &[u8]) -> Result<PaymentStatusChanged, WebhookError> {
    let malformed = |why: &str| WebhookError::Malformed(why.to_owned());
    if body.len() > MAX_BODY_BYTES {
        return Err(malformed("the body is larger than 64 KiB"));
    }
    let body: Body = serde_json::from_slice(body)
        .map_err(|e| WebhookError::Malformed(format!("not the expected JSON: {e}")))?;
    if body.event_type != PAYMENT_STATUS_CHANGED {
        if body.event_type.is_empty()
            || body.event_type.len() > 64
            || !body
                .event_type
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b == b'_')
        {
            return Err(malformed("eventType is not an event type"));
        }
        return Err(WebhookError::OtherEvent(body.event_type));
    }
    let data: Data = body
        .data
        .ok_or_else(|| malformed("data is missing"))
        .and_then(|data| {
            serde_json::from_value(data)
                .map_err(|e| WebhookError::Malformed(format!("data is not a payment: {e}")))
        })?;
    let order_id_ok = (1..=MAX_ORDER_ID_CHARS).contains(&data.order_id.len())
        && data
            .order_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !order_id_ok {
        return Err(malformed(
            "data.orderId must be 1 to 64 letters, digits, '-' or '_'",
        ));
    }
    let key_ok = (1..=MAX_PAYMENT_KEY_CHARS).contains(&data.payment_key.chars().count())
        && data.payment_key.chars().all(|c| c.is_ascii_graphic());
    if !key_ok {
        return Err(malformed(
            "data.paymentKey must be 1 to 200 printable ASCII characters",
        ));
    }
    if let Some(created_at) = &body.created_at
        && (created_at.len() > 64 || created_at.chars().any(char::is_control))
    {
        return Err(malformed("createdAt is not a time"));
    }
    Ok(PaymentStatusChanged {
        payment_key: data.payment_key,
        order_id: data.order_id,
        status: data.status,
        created_at: body.created_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(data: &str) -> Vec<u8> {
        format!(
            r#"{{"eventType":"PAYMENT_STATUS_CHANGED","createdAt":"2026-12-03T10:00:00.000000","data":{data}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn a_status_change_is_read() {
        let notice = parse(&body(
            r#"{"paymentKey":"tgen_1","orderId":"order-1","status":"DONE","totalAmount":1000}"#,
        ))
        .expect("well-formed");
        assert_eq!(notice.order_id, "order-1");
        assert_eq!(notice.payment_key, "tgen_1");
        assert_eq!(notice.status, TossStatus::Done);
        assert_eq!(
            notice.created_at.as_deref(),
            Some("2026-12-03T10:00:00.000000")
        );
    }

    #[test]
    fn malformed_bodies_are_refused_with_a_reason() {
        for (bad, why) in [
            (b"not json".to_vec(), "JSON"),
            (b"[]".to_vec(), "JSON"),
            (
                br#"{"eventType":"PAYMENT_STATUS_CHANGED"}"#.to_vec(),
                "missing",
            ),
            (body(r#"{"orderId":"o-1","status":"DONE"}"#), "paymentKey"),
            (
                body(r#"{"paymentKey":"k","orderId":"o-1","status":"PAID"}"#),
                "payment",
            ),
            (
                body(r#"{"paymentKey":"k","orderId":"o 1; drop","status":"DONE"}"#),
                "orderId",
            ),
            (
                body(r#"{"paymentKey":"k\n","orderId":"o-1","status":"DONE"}"#),
                "paymentKey",
            ),
            (
                br#"{"eventType":"<script>","data":{}}"#.to_vec(),
                "eventType",
            ),
            (vec![b' '; MAX_BODY_BYTES + 1], "64 KiB"),
        ] {
            let err = parse(&bad).expect_err(why);
            assert!(matches!(err, WebhookError::Malformed(_)), "{err:?}");
            assert!(err.to_string().contains(why), "{err} should say {why}");
        }
    }

    #[test]
    fn other_events_are_told_apart_from_malformed_ones() {
        let err = parse(br#"{"eventType":"DEPOSIT_CALLBACK","data":{}}"#).expect_err("other");
        assert_eq!(err, WebhookError::OtherEvent("DEPOSIT_CALLBACK".into()));
        assert_eq!(err.code(), "UNSUPPORTED_WEBHOOK_EVENT");
    }
}
