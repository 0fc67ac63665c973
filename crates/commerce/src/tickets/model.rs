//! A ticket and its code. No I/O.

use kernel::{Timestamp, UserId, text_form};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::OrderId;
use crate::products::ProductId;

kernel::id_type!(
    /// One ticket: one unit of a paid order.
    TicketId
);

/// Where a ticket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TicketStatus {
    Valid,
    Used,
    Void,
}

impl TicketStatus {
    pub const ALL: [Self; 3] = [Self::Valid, Self::Used, Self::Void];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "VALID",
            Self::Used => "USED",
            Self::Void => "VOID",
        }
    }
}

text_form!(TicketStatus, "VALID, USED, VOID");

/// Random bits in a ticket code: well above the 80 asked for.
pub const CODE_BITS: usize = 128;

/// A ticket's code: 128 random bits as 32 lowercase hex digits, so no
/// one guesses a ticket by counting.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(transparent)]
pub struct TicketCode(String);

impl TicketCode {
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = [0u8; CODE_BITS / 8];
        rand::fill(&mut bytes);
        Self(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// A stored code, as it was written.
    #[must_use]
    pub fn stored(code: String) -> Self {
        Self(code)
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A ticket, as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Ticket {
    pub id: TicketId,
    pub order_id: OrderId,
    pub product_id: ProductId,
    pub user_id: UserId,
    #[schema(value_type = String)]
    pub code: TicketCode,
    pub status: TicketStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checked_in_at: Option<Timestamp>,
}

/// The body of `POST /check-ins`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewCheckIn {
    /// The ticket's code, as scanned.
    pub code: String,
    /// The scanner's own id for this scan (1 to 128 characters): the same
    /// nonce again replays the first answer.
    pub nonce: String,
}

impl NewCheckIn {
    /// The most characters of a code or nonce.
    pub const MAX_LEN: usize = 128;

    /// The fields, if both are 1 to [`Self::MAX_LEN`] printable characters.
    pub fn checked(&self) -> Result<(&str, &str), Vec<kernel::FieldError>> {
        let ok = |s: &str| {
            (1..=Self::MAX_LEN).contains(&s.chars().count()) && !s.chars().any(char::is_control)
        };
        let mut errors = Vec::new();
        for (field, value) in [("code", &self.code), ("nonce", &self.nonce)] {
            if !ok(value) {
                errors.push(kernel::FieldError {
                    field: field.into(),
                    message: format!("must be 1 to {} printable characters", Self::MAX_LEN),
                });
            }
        }
        if errors.is_empty() {
            Ok((self.code.as_str(), self.nonce.as_str()))
        } else {
            Err(errors)
        }
    }
}

/// What a scan found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CheckInResult {
    /// Let in: the ticket is `USED` from now.
    Ok,
    /// Scanned before, at `checked_in_at`.
    AlreadyUsed,
    /// The ticket was voided (its order cancelled).
    Void,
    /// No ticket has this code.
    Unknown,
}

/// The answer of `POST /check-ins`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckIn {
    pub result: CheckInResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<CheckedTicket>,
    /// When the ticket was first checked in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_in_at: Option<Timestamp>,
}

/// The ticket a scan found, as a check-in shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckedTicket {
    pub id: TicketId,
    pub order_id: OrderId,
    pub product_id: ProductId,
    pub user_id: UserId,
    pub status: TicketStatus,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_carry_128_random_bits_and_do_not_repeat() {
        let codes: HashSet<String> = (0..10_000).map(|_| TicketCode::generate().0).collect();
        assert_eq!(codes.len(), 10_000);
        for code in codes.iter().take(50) {
            assert_eq!(code.len(), 32);
            assert!(code.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }
}
