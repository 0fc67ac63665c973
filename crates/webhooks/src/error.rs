//! The webhooks module's errors, mapped to problem+json in one place.

use kernel::{FieldError, Problem};

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("webhook endpoint not found")]
    EndpointNotFound,
    #[error("webhook delivery not found")]
    DeliveryNotFound,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Internal(String),
}

impl WebhookError {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError {
            field: field.to_owned(),
            message: message.into(),
        }])
    }
}

impl From<WebhookError> for Problem {
    fn from(e: WebhookError) -> Self {
        use WebhookError as E;
        match e {
            E::Invalid(errors) => Self::validation(errors),
            E::EndpointNotFound => Self::not_found("webhook endpoint"),
            E::DeliveryNotFound => Self::not_found("webhook delivery"),
            E::Database(ref cause) => Self::database(cause),
            E::Internal(ref cause) => Self::internal(cause),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_its_status_and_says_nothing_inside() {
        let p = Problem::from(WebhookError::field("url", "must be http"));
        assert_eq!((p.status, p.code.as_str()), (422, "VALIDATION_FAILED"));
        assert_eq!(p.errors[0].field, "url");
        let p = Problem::from(WebhookError::EndpointNotFound);
        assert_eq!((p.status, p.code.as_str()), (404, "NOT_FOUND"));
        let p = Problem::from(WebhookError::Internal("secret stuff".into()));
        assert_eq!(p.status, 500);
        assert!(!p.detail.contains("secret"));
    }
}
