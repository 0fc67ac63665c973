//! The rewards module's errors, mapped to problem+json in one place.

use kernel::{FieldError, Problem};

use crate::model::{InvalidTransition, RewardRequestId};

#[derive(Debug, thiserror::Error)]
pub enum RewardsError {
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("event not found")]
    EventNotFound,
    #[error("reward not found")]
    RewardNotFound,
    #[error("event reward not found")]
    EventRewardNotFound,
    #[error(transparent)]
    InvalidTransition(#[from] InvalidTransition),
    #[error("the event changed meanwhile; read it again")]
    EventChanged,
    #[error("only a DRAFT event can be deleted")]
    EventNotDraft,
    #[error("{taken} units are already taken; the quantity cannot go below that")]
    QuantityBelowTaken { taken: u32 },
    #[error("reward request not found")]
    RequestNotFound,
    /// The user already holds `per_user_limit` requests; one of them, when
    /// known (it may still be being recorded).
    #[error("you already hold the allowed number of requests for this reward")]
    AlreadyRequested(Option<RewardRequestId>),
    #[error("commerce cannot answer: {0}")]
    CommerceUnavailable(String),
    #[error("stock gate: {0}")]
    StockUnavailable(String),
    /// The durable write of a claim did not answer in time; the gate's
    /// sweep settles or returns its unit once the database has decided.
    #[error("recording the request did not finish within {0:?}")]
    WriteTimedOut(std::time::Duration),
    #[error("a stock claim ended without an answer: {0}")]
    ClaimAborted(String),
    #[error("encoding a message: {0}")]
    Encode(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl RewardsError {
    pub fn encode(e: impl std::fmt::Display) -> Self {
        Self::Encode(e.to_string())
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError {
            field: field.to_owned(),
            message: message.into(),
        }])
    }
}

impl From<gate::ClaimError> for RewardsError {
    fn from(e: gate::ClaimError) -> Self {
        match e {
            gate::ClaimError::Refused(refusal) => Self::StockUnavailable(refusal.to_string()),
            gate::ClaimError::WriteTimedOut(after) => Self::WriteTimedOut(after),
            gate::ClaimError::Aborted(why) => Self::ClaimAborted(why),
        }
    }
}

impl From<RewardsError> for Problem {
    fn from(e: RewardsError) -> Self {
        use RewardsError as E;
        match e {
            E::Invalid(errors) => Self::validation(errors),
            E::EventNotFound => Self::not_found("event"),
            E::RewardNotFound => Self::not_found("reward"),
            E::EventRewardNotFound => Self::not_found("event reward"),
            E::InvalidTransition(_) => Self::conflict("INVALID_TRANSITION", e.to_string()),
            E::EventChanged => Self::conflict("EVENT_CHANGED", e.to_string()),
            E::EventNotDraft => Self::conflict("EVENT_NOT_DRAFT", e.to_string()),
            E::QuantityBelowTaken { taken } => {
                Self::conflict("QUANTITY_BELOW_TAKEN", e.to_string()).with("taken", taken)
            }
            E::RequestNotFound => Self::not_found("reward request"),
            E::AlreadyRequested(held) => Self::conflict("ALREADY_REQUESTED", e.to_string())
                .with("request_id", held.map(|id| id.0)),
            E::StockUnavailable(ref cause) | E::CommerceUnavailable(ref cause) => {
                Self::unavailable(cause)
            }
            E::WriteTimedOut(_) => Self::unavailable(&e),
            E::ClaimAborted(ref cause) | E::Encode(ref cause) => Self::internal(cause),
            E::Database(ref cause) => Self::database(cause),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_carry_their_stable_codes() {
        let cases = [
            (
                RewardsError::InvalidTransition(InvalidTransition {
                    from: "DRAFT",
                    to: "COMPLETED",
                }),
                "INVALID_TRANSITION",
            ),
            (RewardsError::EventNotDraft, "EVENT_NOT_DRAFT"),
            (RewardsError::AlreadyRequested(None), "ALREADY_REQUESTED"),
            (
                RewardsError::QuantityBelowTaken { taken: 3 },
                "QUANTITY_BELOW_TAKEN",
            ),
        ];
        for (error, code) in cases {
            let problem = Problem::from(error);
            assert_eq!(problem.status, 409);
            assert_eq!(problem.code, code);
        }
    }

    #[test]
    fn unknown_ids_are_not_found_and_database_errors_say_nothing() {
        let problem = Problem::from(RewardsError::EventNotFound);
        assert_eq!((problem.status, problem.code.as_str()), (404, "NOT_FOUND"));

        let problem = Problem::from(RewardsError::Database(sqlx::Error::RowNotFound));
        assert_eq!(problem.status, 500);
        assert!(!problem.detail.contains("row"), "{}", problem.detail);

        let problem = Problem::from(RewardsError::Database(sqlx::Error::PoolTimedOut));
        assert_eq!(
            (problem.status, problem.code.as_str()),
            (503, "UNAVAILABLE")
        );
        assert!(!problem.detail.contains("pool"), "{}", problem.detail);
    }
}
