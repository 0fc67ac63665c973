//! Toss Payments' error codes, sorted into what an order does with them.
//!
//! Toss answers an error as `{"code", "message"}` with a 4xx or 5xx status.
//! A 4xx with a code that is not listed here as *unknown* means the request
//! was refused and nothing was taken; a 5xx, a 429 or one of
//! [`UNKNOWN_CODES`] means the money may have moved, so only a look-up by
//! order id settles it.

/// Codes after which a charge may or may not have happened.
///
/// - `ALREADY_PROCESSED_PAYMENT`: this payment key was confirmed before
///   (by an earlier attempt whose answer was lost, most likely).
/// - `PROVIDER_ERROR`: the card company or bank failed mid-way.
/// - `IDEMPOTENT_REQUEST_PROCESSING` (409): the first request with this
///   idempotency key is still running.
/// - `FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING`,
///   `FAILED_INTERNAL_SYSTEM_PROCESSING`, `UNKNOWN_PAYMENT_ERROR`: Toss's
///   own failures (usually with a 5xx).
pub const UNKNOWN_CODES: &[&str] = &[
    "ALREADY_PROCESSED_PAYMENT",
    "PROVIDER_ERROR",
    "IDEMPOTENT_REQUEST_PROCESSING",
    "FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING",
    "FAILED_INTERNAL_SYSTEM_PROCESSING",
    "UNKNOWN_PAYMENT_ERROR",
];

/// Decline codes the fake server knows by name, with the status Toss
/// answers them with. Any other 4xx code is a decline too.
pub const DECLINE_CODES: &[(&str, u16)] = &[
    ("REJECT_CARD_COMPANY", 403),
    ("REJECT_CARD_PAYMENT", 403),
    ("INVALID_STOPPED_CARD", 403),
    ("INVALID_REJECT_CARD", 403),
    ("INVALID_CARD_LOST_OR_STOLEN", 403),
    ("REJECT_ACCOUNT_PAYMENT", 403),
    ("EXCEED_MAX_DAILY_PAYMENT_COUNT", 403),
    ("EXCEED_MAX_PAYMENT_AMOUNT", 403),
    ("NOT_AVAILABLE_PAYMENT", 403),
    ("INVALID_CARD_EXPIRATION", 400),
    ("INVALID_PASSWORD", 400),
    ("BELOW_MINIMUM_AMOUNT", 400),
    ("NOT_FOUND_PAYMENT_SESSION", 404),
];

/// The key was refused (401): a configuration error, not the buyer's.
pub const UNAUTHORIZED_KEY: &str = "UNAUTHORIZED_KEY";
/// A look-up or cancel named a payment Toss does not hold (404).
pub const NOT_FOUND_PAYMENT: &str = "NOT_FOUND_PAYMENT";
/// A cancel of a payment that is cancelled already.
pub const ALREADY_CANCELED_PAYMENT: &str = "ALREADY_CANCELED_PAYMENT";
/// A cancel whose `refundableAmount` is not the payment's balance.
pub const NOT_MATCHES_REFUNDABLE_AMOUNT: &str = "NOT_MATCHES_REFUNDABLE_AMOUNT";
/// A request Toss cannot read.
pub const INVALID_REQUEST: &str = "INVALID_REQUEST";
/// A confirm of an order id already confirmed with another payment key.
pub const DUPLICATED_ORDER_ID: &str = "DUPLICATED_ORDER_ID";
/// The first request with this idempotency key is still running (409).
pub const IDEMPOTENT_REQUEST_PROCESSING: &str = "IDEMPOTENT_REQUEST_PROCESSING";
/// Our own code for a charge in a currency the adapter does not send.
pub const UNSUPPORTED_CURRENCY: &str = "UNSUPPORTED_CURRENCY";

/// The status Toss answers `code` with, as the fake server uses it.
#[must_use]
pub fn status_of(code: &str) -> u16 {
    match code {
        UNAUTHORIZED_KEY => 401,
        NOT_FOUND_PAYMENT => 404,
        IDEMPOTENT_REQUEST_PROCESSING => 409,
        "PROVIDER_ERROR" | "ALREADY_PROCESSED_PAYMENT" => 400,
        "FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING"
        | "FAILED_INTERNAL_SYSTEM_PROCESSING"
        | "UNKNOWN_PAYMENT_ERROR" => 500,
        _ => DECLINE_CODES
            .iter()
            .find(|(known, _)| *known == code)
            .map_or(400, |(_, status)| *status),
    }
}

/// Whether an error answer leaves it open if the money moved.
#[must_use]
pub fn is_unknown(status: u16, code: &str) -> bool {
    status >= 500 || status == 429 || UNKNOWN_CODES.contains(&code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declines_and_unknowns_are_told_apart() {
        for (code, status) in DECLINE_CODES {
            assert!(!is_unknown(*status, code), "{code}");
            assert_eq!(status_of(code), *status);
        }
        for code in UNKNOWN_CODES {
            assert!(is_unknown(status_of(code), code), "{code}");
        }
        assert!(is_unknown(503, "ANYTHING"));
        assert!(is_unknown(429, "TOO_MANY_REQUESTS"));
        assert!(!is_unknown(400, "SOMETHING_NEW"));
    }
}
