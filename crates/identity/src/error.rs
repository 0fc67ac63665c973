//! Identity's errors, mapped to problem+json in one place.

use http::StatusCode;
use kernel::{FieldError, Problem};

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("the email is already registered")]
    EmailTaken,
    #[error("wrong email or password")]
    InvalidCredentials,
    #[error("too many failed logins")]
    LoginThrottled { retry_after_secs: u64 },
    #[error("the refresh token is not valid")]
    InvalidRefreshToken,
    #[error("the refresh token was already used; the login is revoked")]
    RefreshTokenReused,
    #[error("no refresh token was sent")]
    MissingRefreshToken,
    #[error("user not found")]
    UserNotFound,
    #[error("the change would leave no admin")]
    LastAdmin,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Internal(String),
}

impl IdentityError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError {
            field: field.to_owned(),
            message: message.into(),
        }])
    }
}

impl From<IdentityError> for Problem {
    fn from(e: IdentityError) -> Self {
        use IdentityError as E;
        match e {
            E::Invalid(errors) => Self::validation(errors),
            E::EmailTaken => Self::conflict("EMAIL_TAKEN", e.to_string()),
            E::InvalidCredentials => Self::unauthorized("INVALID_CREDENTIALS", e.to_string()),
            E::LoginThrottled { retry_after_secs } => Self::rate_limited(retry_after_secs),
            E::InvalidRefreshToken | E::MissingRefreshToken => {
                Self::unauthorized("INVALID_REFRESH_TOKEN", e.to_string())
            }
            E::RefreshTokenReused => Self::unauthorized("REFRESH_TOKEN_REUSED", e.to_string()),
            E::UserNotFound => Self::not_found("user"),
            E::LastAdmin => Self::new(StatusCode::CONFLICT, "LAST_ADMIN", e.to_string()),
            E::Database(ref cause) => Self::database(cause),
            E::Internal(ref cause) => Self::internal(cause),
        }
    }
}
