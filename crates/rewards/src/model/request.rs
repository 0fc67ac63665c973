//! Reward requests: their status with its one legal decision, the codes that
//! say why a request was refused, and the rule that turns the facts into an
//! outcome.

use kernel::{Timestamp, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::condition::Evaluation;
use super::ids::{EventId, EventRewardId, RewardId, RewardRequestId};
use kernel::{Lifecycle, text_form};

/// One attempt to claim an event reward, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RewardRequest {
    pub id: RewardRequestId,
    pub user_id: UserId,
    pub event_id: EventId,
    pub event_reward_id: EventRewardId,
    /// The catalogue reward asked for (what a grant gives).
    pub reward_id: RewardId,
    pub status: RequestStatus,
    /// Why it was rejected when made; null otherwise (and for a staff rejection).
    #[schema(required = true)]
    pub reason_code: Option<ReasonCode>,
    /// A human explanation, e.g. "logged in 2 of 7 days", or the staff's note.
    #[schema(required = true)]
    pub reason: Option<String>,
    pub created_at: Timestamp,
    #[schema(required = true)]
    pub decided_at: Option<Timestamp>,
    /// The staff member who decided a PENDING request.
    #[schema(required = true)]
    pub decided_by: Option<UserId>,
}

impl RewardRequest {
    /// Whether recording the request claimed its unit of stock: it was
    /// recorded PENDING or APPROVED, whatever staff decided later (a staff
    /// rejection gives the unit back itself). A request rejected when made,
    /// out of stock included, never held one.
    #[must_use]
    pub fn claimed_stock(&self) -> bool {
        self.status != RequestStatus::Rejected || self.decided_by.is_some()
    }
}

/// What a request gets before stock is considered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Recorded as REJECTED with this code and reason.
    Reject(ReasonCode, String),
    /// Claim a unit (when limited), then record in this status: APPROVED when
    /// the reward resolves itself, else PENDING until staff decide.
    Claim(RequestStatus),
}

impl Verdict {
    /// The one rule for a request: a live event first, then the condition,
    /// then `auto_resolve` picks the status. Running out of stock is decided
    /// by the stock gate afterwards (then [`OUT_OF_STOCK`]).
    #[must_use]
    pub fn of(live: bool, evaluation: &Evaluation, auto_resolve: bool) -> Self {
        if !live {
            return Self::Reject(
                ReasonCode::EventNotActive,
                "the event is not running now".to_owned(),
            );
        }
        if !evaluation.met() {
            let reason = evaluation
                .reason()
                .unwrap_or_else(|| "the condition is not met".to_owned());
            return Self::Reject(ReasonCode::ConditionNotMet, reason);
        }
        Self::Claim(if auto_resolve {
            RequestStatus::Approved
        } else {
            RequestStatus::Pending
        })
    }
}

/// The reason of an `OUT_OF_STOCK` rejection.
pub const OUT_OF_STOCK: &str = "no units are left";

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

    /// Whether a request in this status uses up one of the user's
    /// `per_user_limit` (pending and approved ones do; rejected ones do not).
    #[must_use]
    pub const fn counts_towards_limit(self) -> bool {
        matches!(self, Self::Pending | Self::Approved)
    }
}

impl Lifecycle for RequestStatus {
    fn name(self) -> &'static str {
        self.as_str()
    }

    /// The only moves: PENDING→APPROVED and PENDING→REJECTED.
    fn can_move_to(self, next: Self) -> bool {
        matches!(
            (self, next),
            (Self::Pending, Self::Approved | Self::Rejected)
        )
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
    use crate::model::{Condition, EvalContext, Facts};
    use time::macros::datetime;

    use RequestStatus::{Approved, Pending, Rejected};

    fn evaluation(days_logged_in: u32) -> Evaluation {
        let condition =
            Condition::parse(&serde_json::json!({"type": "CONTINUOUS_LOGIN", "days": 3}))
                .expect("valid");
        let now = Timestamp::from(datetime!(2026-11-22 12:00 UTC));
        let ctx = EvalContext {
            now,
            event_starts_at: Timestamp::from(datetime!(2026-11-01 00:00 UTC)),
        };
        let facts = Facts {
            login_days: (0..days_logged_in)
                .map(|back| ctx.today() - time::Duration::days(i64::from(back)))
                .collect(),
            ..Facts::default()
        };
        condition.evaluate(&facts, &ctx)
    }

    #[test]
    fn a_request_outside_a_live_event_is_rejected_before_its_condition() {
        let verdict = Verdict::of(false, &evaluation(3), true);
        assert!(matches!(
            verdict,
            Verdict::Reject(ReasonCode::EventNotActive, _)
        ));
    }

    #[test]
    fn an_unmet_condition_is_rejected_with_the_evaluator_s_reason() {
        let verdict = Verdict::of(true, &evaluation(2), true);
        assert_eq!(
            verdict,
            Verdict::Reject(
                ReasonCode::ConditionNotMet,
                "logged in 2 of 3 days".to_owned()
            )
        );
    }

    #[test]
    fn a_met_condition_is_approved_or_held_by_auto_resolve() {
        assert_eq!(
            Verdict::of(true, &evaluation(3), true),
            Verdict::Claim(Approved)
        );
        assert_eq!(
            Verdict::of(true, &evaluation(3), false),
            Verdict::Claim(Pending)
        );
    }

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
