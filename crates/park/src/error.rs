//! The park's errors, mapped to problem+json in one place.

use kernel::{FieldError, Problem};

use crate::line::LineStoreError;
use crate::model::{EntryStatus, LineEntryId};

#[derive(Debug, thiserror::Error)]
pub enum ParkError {
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("attraction not found")]
    AttractionNotFound,
    #[error("line entry not found")]
    EntryNotFound,
    #[error("you are not in this line")]
    NotInLine,
    #[error("the attraction is not operating")]
    NotOperating,
    #[error("you are already in this line")]
    AlreadyInLine(LineEntryId),
    #[error("you are in {0} lines already, the most allowed at once")]
    LineLimitReached(u32),
    #[error("the entry is {0}, not CALLED")]
    NotCalled(EntryStatus),
    #[error("the entry's time to return has passed")]
    Expired,
    #[error("the entry is in another attraction's line")]
    WrongAttraction,
    #[error(transparent)]
    Lines(#[from] LineStoreError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl ParkError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError {
            field: field.to_owned(),
            message: message.into(),
        }])
    }
}

impl From<ParkError> for Problem {
    fn from(e: ParkError) -> Self {
        use ParkError as E;
        match e {
            E::Invalid(errors) => Self::validation(errors),
            E::AttractionNotFound => Self::not_found("attraction"),
            E::EntryNotFound => Self::not_found("line entry"),
            E::NotInLine => Self::not_found("line entry"),
            E::NotOperating => Self::conflict("ATTRACTION_NOT_OPERATING", e.to_string()),
            E::AlreadyInLine(id) => {
                Self::conflict("ALREADY_IN_LINE", e.to_string()).with("entry_id", id.0)
            }
            E::LineLimitReached(n) => {
                Self::conflict("LINE_LIMIT_REACHED", e.to_string()).with("max_lines_per_user", n)
            }
            E::NotCalled(_) => Self::conflict("NOT_CALLED", e.to_string()),
            E::Expired => Self::conflict("EXPIRED", e.to_string()),
            E::WrongAttraction => Self::conflict("WRONG_ATTRACTION", e.to_string()),
            E::Lines(ref cause) => Self::unavailable(cause),
            E::Database(ref cause) => Self::database(cause),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_carry_their_stable_codes() {
        for (error, code) in [
            (ParkError::NotOperating, "ATTRACTION_NOT_OPERATING"),
            (
                ParkError::AlreadyInLine(LineEntryId::new()),
                "ALREADY_IN_LINE",
            ),
            (ParkError::LineLimitReached(3), "LINE_LIMIT_REACHED"),
            (ParkError::NotCalled(EntryStatus::Left), "NOT_CALLED"),
            (ParkError::Expired, "EXPIRED"),
        ] {
            let problem = Problem::from(error);
            assert_eq!((problem.status, problem.code.as_str()), (409, code));
        }
        let problem = Problem::from(ParkError::Lines(LineStoreError("down".into())));
        assert_eq!(problem.status, 503);
    }
}
