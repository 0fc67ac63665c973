//! Custom activity that feeds `CUSTOM` conditions: a metric, a value and when
//! it happened, with an optional source id that makes a resend count once.

use kernel::{FieldError, Timestamp, UserId};

use super::condition::check_metric;

pub const MAX_SOURCE_ID_CHARS: usize = 255;

/// A validated activity record.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub user_id: UserId,
    pub metric: String,
    /// Finite; may be negative (a refund that undoes a purchase).
    pub value: f64,
    pub occurred_at: Timestamp,
    /// The sender's id for this fact; a second record with it is ignored.
    pub source_id: Option<String>,
}

impl Activity {
    /// Checks every field, reporting each problem at once.
    pub fn parse(
        user_id: &str,
        metric: &str,
        value: f64,
        occurred_at: Timestamp,
        source_id: Option<&str>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut fail = |field: &str, message: String| {
            errors.push(FieldError {
                field: field.to_owned(),
                message,
            });
        };
        let user_id = uuid::Uuid::parse_str(user_id).map(UserId);
        if user_id.is_err() {
            fail("user_id", "must be a UUID".to_owned());
        }
        if let Err(message) = check_metric(metric) {
            fail("metric", message);
        }
        if !value.is_finite() {
            fail("value", "must be a finite number".to_owned());
        }
        if let Some(source) = source_id {
            let chars = source.chars().count();
            if chars == 0 || chars > MAX_SOURCE_ID_CHARS {
                fail(
                    "source_id",
                    format!("must be 1 to {MAX_SOURCE_ID_CHARS} characters"),
                );
            } else if let Err(e) = kernel::text::single_line(source) {
                fail("source_id", e.to_string());
            }
        }
        let user_id = match user_id {
            Ok(id) if errors.is_empty() => id,
            _ => return Err(errors),
        };
        Ok(Self {
            user_id,
            metric: metric.to_owned(),
            value,
            occurred_at,
            source_id: source_id.map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::from(time::macros::datetime!(2026-11-22 12:00 UTC))
    }

    #[test]
    fn a_valid_activity_keeps_its_fields() {
        let user = UserId::new();
        let activity = Activity::parse(
            &user.0.to_string(),
            "purchases",
            -2.5,
            now(),
            Some("order-1"),
        )
        .expect("valid");
        assert_eq!(activity.user_id, user);
        assert_eq!(activity.metric, "purchases");
        assert_eq!(activity.source_id.as_deref(), Some("order-1"));
    }

    #[test]
    fn every_bad_field_is_reported() {
        let long = "x".repeat(MAX_SOURCE_ID_CHARS + 1);
        let errors = Activity::parse("nobody", "Bad Metric", f64::NAN, now(), Some(&long))
            .expect_err("invalid");
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["user_id", "metric", "value", "source_id"]);
        let user = UserId::new().0.to_string();
        assert!(Activity::parse(&user, "m", 1.0, now(), Some("")).is_err());
    }

    #[test]
    fn a_source_id_holds_no_control_character() {
        let user = UserId::new().0.to_string();
        for bad in ["order\u{0}1", "order\n1", "\u{1b}"] {
            let errors = Activity::parse(&user, "m", 1.0, now(), Some(bad)).expect_err("invalid");
            assert_eq!(errors.len(), 1, "{bad:?}");
            assert_eq!(errors[0].field, "source_id");
            assert_eq!(errors[0].message, "must not contain control characters");
        }
    }
}
