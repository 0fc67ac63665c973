//! Reward requests: their status with its one legal decision, and the codes
//! that say why a request was refused.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::status::{InvalidTransition, text_form};

/// Where a reward request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RequestStatus {
    /// Waiting for a staff decision, holding one unit of a limited quantity.
    Pending,
    /// Granted.
    Approved,
    /// Refused, at request time or by staff.
    Rejected,
}

impl RequestStatus {
    pub const ALL: [Self; 3] = [Self::Pending, Self::Approved, Self::Rejected];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Approved => "APPROVED",
            Self::Rejected => "REJECTED",
        }
    }

    /// The only moves: PENDING→APPROVED and PENDING→REJECTED.
    #[must_use]
    pub const fn can_move_to(self, next: Self) -> bool {
        matches!(
            (self, next),
            (Self::Pending, Self::Approved | Self::Rejected)
        )
    }

    pub fn move_to(self, next: Self) -> Result<Self, InvalidTransition> {
        if self.can_move_to(next) {
            Ok(next)
        } else {
            Err(InvalidTransition {
                from: self.as_str(),
                to: next.as_str(),
            })
        }
    }

    /// Whether a request in this status uses up one of the user's
    /// `per_user_limit` (pending and approved ones do; rejected ones do not).
    #[must_use]
    pub const fn counts_towards_limit(self) -> bool {
        matches!(self, Self::Pending | Self::Approved)
    }
}

text_form!(RequestStatus, "PENDING, APPROVED, REJECTED");

/// Why a request was rejected when it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReasonCode {
    /// The event was not live.
    EventNotActive,
    /// The condition did not hold; the request's `reason` says which part.
    ConditionNotMet,
    /// No unit of the limited quantity was left.
    OutOfStock,
}

impl ReasonCode {
    pub const ALL: [Self; 3] = [
        Self::EventNotActive,
        Self::ConditionNotMet,
        Self::OutOfStock,
    ];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::EventNotActive => "EVENT_NOT_ACTIVE",
            Self::ConditionNotMet => "CONDITION_NOT_MET",
            Self::OutOfStock => "OUT_OF_STOCK",
        }
    }
}

text_form!(
    ReasonCode,
    "EVENT_NOT_ACTIVE, CONDITION_NOT_MET, OUT_OF_STOCK"
);

#[cfg(test)]
mod tests {
    use super::*;

    use RequestStatus::{Approved, Pending, Rejected};

    #[test]
    fn only_a_pending_request_can_be_decided() {
        let legal = [(Pending, Approved), (Pending, Rejected)];
        for from in RequestStatus::ALL {
            for to in RequestStatus::ALL {
                assert_eq!(
                    from.can_move_to(to),
                    legal.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn deciding_twice_is_an_invalid_transition() {
        assert_eq!(Pending.move_to(Approved), Ok(Approved));
        assert_eq!(Pending.move_to(Rejected), Ok(Rejected));

        let twice = Approved.move_to(Rejected).expect_err("already decided");

        assert_eq!(twice.to_string(), "cannot move from APPROVED to REJECTED");
        assert!(Rejected.move_to(Approved).is_err());
        assert!(Pending.move_to(Pending).is_err());
    }

    #[test]
    fn pending_and_approved_requests_count_towards_the_per_user_limit() {
        assert!(Pending.counts_towards_limit());
        assert!(Approved.counts_towards_limit());
        assert!(!Rejected.counts_towards_limit());
    }

    #[test]
    fn statuses_and_reason_codes_are_screaming_snake_case_both_ways() {
        for status in RequestStatus::ALL {
            assert_eq!(
                serde_json::to_value(status).expect("serialises"),
                status.as_str()
            );
            assert_eq!(status.as_str().parse::<RequestStatus>(), Ok(status));
        }
        for code in ReasonCode::ALL {
            assert_eq!(
                serde_json::to_value(code).expect("serialises"),
                code.as_str()
            );
            assert_eq!(code.as_str().parse::<ReasonCode>(), Ok(code));
        }
        assert_eq!(
            serde_json::to_value(ReasonCode::ConditionNotMet).expect("serialises"),
            "CONDITION_NOT_MET"
        );
        assert!("pending".parse::<RequestStatus>().is_err());
        assert!("SOLD_OUT".parse::<ReasonCode>().is_err());
    }
}
