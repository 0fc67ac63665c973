//! The span of time an analytics answer covers, as its query names it, and
//! the SQL that groups a timestamp column into minutes, hours or days on
//! either backend.

use serde::Deserialize;
use time::{Date, Duration, Month, OffsetDateTime};
use utoipa::IntoParams;

use crate::db::Backend;
use crate::error::FieldError;
use crate::timestamp::Timestamp;

/// The longest period an analytics call covers, in days.
pub const MAX_DAYS: i64 = 366;
/// Days of timeline when the query names none.
const DEFAULT_DAYS: i64 = 30;

/// The period of an analytics query: `days` ending today, or `from`–`to`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    /// Days of timeline ending today (UTC), 1 to 366 (default 30); ignored
    /// when `from` is given.
    #[param(minimum = 1, maximum = 366)]
    pub days: Option<i64>,
    /// Start of the period (RFC 3339, included). With it, the figures that
    /// are not timelines (distributions, totals) also count only what falls
    /// in the period; without it they count all time.
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// End of the period (RFC 3339, excluded; default now). Only with `from`.
    #[param(format = DateTime)]
    pub to: Option<String>,
}

/// `[from, to)`, and whether the caller chose it (then distributions are
/// limited to it too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: Timestamp,
    pub to: Timestamp,
    pub chosen: bool,
}

impl PeriodQuery {
    /// The period this query names at `now`, or what is wrong with it.
    pub fn period(&self, now: Timestamp) -> Result<Period, FieldError> {
        let invalid = |field: &str, message: String| FieldError {
            field: field.to_owned(),
            message,
        };
        let Some(from) = self.from.as_deref() else {
            if self.to.is_some() {
                return Err(invalid("to", "needs `from`".to_owned()));
            }
            let days = self.days.unwrap_or(DEFAULT_DAYS);
            if !(1..=MAX_DAYS).contains(&days) {
                return Err(invalid("days", format!("must be between 1 and {MAX_DAYS}")));
            }
            let tomorrow = now.as_datetime().date() + Duration::days(1);
            let to = Timestamp::from(tomorrow.midnight().assume_utc());
            return Ok(Period {
                from: to - Duration::days(days),
                to,
                chosen: false,
            });
        };
        let moment = |field: &str, text: &str| {
            Timestamp::parse(text)
                .map_err(|_| invalid(field, "is not an RFC 3339 date and time".to_owned()))
        };
        let from = moment("from", from)?;
        let to = self.to.as_deref().map_or(Ok(now), |to| moment("to", to))?;
        if to <= from {
            return Err(invalid("to", "must be after `from`".to_owned()));
        }
        if to - from > Duration::days(MAX_DAYS) {
            return Err(invalid(
                "to",
                format!("the period is longer than {MAX_DAYS} days"),
            ));
        }
        Ok(Period {
            from,
            to,
            chosen: true,
        })
    }
}

impl Period {
    /// What distributions and totals count: the period when the caller
    /// chose one, else all time.
    #[must_use]
    pub fn of_totals(self) -> Self {
        if self.chosen {
            return self;
        }
        let far = |year| {
            Date::from_calendar_date(year, Month::January, 1)
                .map_or(OffsetDateTime::UNIX_EPOCH, |d| d.midnight().assume_utc())
        };
        Self {
            from: Timestamp::from(far(1970)),
            to: Timestamp::from(far(9999)),
            chosen: false,
        }
    }

    /// The first and the last UTC day the period touches.
    #[must_use]
    pub fn days(self) -> (Date, Date) {
        let last = self.to - Duration::microseconds(1);
        (self.from.as_datetime().date(), last.as_datetime().date())
    }

    /// Buckets small enough to show a rush, few enough to draw: minutes up
    /// to two days, hours up to 62 days, days beyond.
    #[must_use]
    pub fn bucket(self) -> Bucket {
        let span = self.to - self.from;
        if span <= Duration::days(2) {
            Bucket::Minute
        } else if span <= Duration::days(62) {
            Bucket::Hour
        } else {
            Bucket::Day
        }
    }
}

/// A time series' step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Minute,
    Hour,
    Day,
}

impl Bucket {
    #[must_use]
    pub const fn minutes(self) -> u32 {
        match self {
            Self::Minute => 1,
            Self::Hour => 60,
            Self::Day => 1440,
        }
    }

    /// SQL turning the timestamp `column` into its bucket's key, the UTC
    /// `YYYY-MM-DD`, `YYYY-MM-DDTHH` or `YYYY-MM-DDTHH:MM` it starts at. On
    /// SQLite the stored text's prefix (see [`Timestamp`]).
    #[must_use]
    pub fn key_sql(self, backend: Backend, column: &str) -> String {
        if backend == Backend::Postgres {
            let format = match self {
                Self::Minute => r#"YYYY-MM-DD"T"HH24:MI"#,
                Self::Hour => r#"YYYY-MM-DD"T"HH24"#,
                Self::Day => "YYYY-MM-DD",
            };
            format!("to_char({column} at time zone 'UTC', '{format}')")
        } else {
            let length = match self {
                Self::Minute => 16,
                Self::Hour => 13,
                Self::Day => 10,
            };
            format!("substr({column}, 1, {length})")
        }
    }

    /// The RFC 3339 instant a key of [`Self::key_sql`] starts at.
    #[must_use]
    pub fn start_of(self, key: &str) -> String {
        match self {
            Self::Minute => format!("{key}:00Z"),
            Self::Hour => format!("{key}:00:00Z"),
            Self::Day => format!("{key}T00:00:00Z"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).expect("a timestamp")
    }

    fn query(days: Option<i64>, from: Option<&str>, to: Option<&str>) -> PeriodQuery {
        PeriodQuery {
            days,
            from: from.map(str::to_owned),
            to: to.map(str::to_owned),
        }
    }

    #[test]
    fn days_end_with_today_and_totals_cover_all_time() {
        let now = at("2026-12-03T18:00:00Z");
        let period = query(Some(7), None, None).period(now).expect("valid");
        assert_eq!(period.from, at("2026-11-27T00:00:00Z"));
        assert_eq!(period.to, at("2026-12-04T00:00:00Z"));
        assert!(!period.chosen);
        assert_eq!(
            period.days(),
            (
                at("2026-11-27T00:00:00Z").as_datetime().date(),
                now.as_datetime().date()
            )
        );
        let totals = period.of_totals();
        assert!(totals.from < at("2000-01-01T00:00:00Z") && totals.to > at("9000-01-01T00:00:00Z"));
        let default = query(None, None, None).period(now).expect("valid");
        assert_eq!(default.to - default.from, Duration::days(30));
    }

    #[test]
    fn a_chosen_period_limits_the_totals_and_defaults_to_now() {
        let now = at("2026-12-03T18:00:00Z");
        let period = query(Some(999), Some("2026-12-03T12:00:00+09:00"), None)
            .period(now)
            .expect("days is ignored");
        assert_eq!(period.from, at("2026-12-03T03:00:00Z"));
        assert_eq!(period.to, now);
        assert_eq!(period.of_totals(), period);
        assert_eq!(period.bucket(), Bucket::Minute);
    }

    #[test]
    fn bad_periods_name_their_field() {
        let now = at("2026-12-03T18:00:00Z");
        for (q, field) in [
            (query(Some(0), None, None), "days"),
            (query(Some(367), None, None), "days"),
            (query(None, None, Some("2026-12-01T00:00:00Z")), "to"),
            (query(None, Some("yesterday"), None), "from"),
            (
                query(None, Some("2026-12-01T00:00:00Z"), Some("soon")),
                "to",
            ),
            (
                query(
                    None,
                    Some("2026-12-02T00:00:00Z"),
                    Some("2026-12-01T00:00:00Z"),
                ),
                "to",
            ),
            (
                query(
                    None,
                    Some("2024-01-01T00:00:00Z"),
                    Some("2026-01-01T00:00:00Z"),
                ),
                "to",
            ),
        ] {
            assert_eq!(q.period(now).expect_err("invalid").field, field, "{q:?}");
        }
    }

    #[test]
    fn buckets_grow_with_the_period_and_name_their_start() {
        let period = |from, to| Period {
            from: at(from),
            to: at(to),
            chosen: true,
        };
        assert_eq!(
            period("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z").bucket(),
            Bucket::Hour
        );
        assert_eq!(
            period("2026-01-01T00:00:00Z", "2026-12-01T00:00:00Z").bucket(),
            Bucket::Day
        );
        assert_eq!(
            Bucket::Minute.start_of("2026-12-03T18:04"),
            "2026-12-03T18:04:00Z"
        );
        assert_eq!(
            Bucket::Hour.start_of("2026-12-03T18"),
            "2026-12-03T18:00:00Z"
        );
        assert_eq!(Bucket::Day.start_of("2026-12-03"), "2026-12-03T00:00:00Z");
        assert_eq!(
            Bucket::Hour.key_sql(Backend::Sqlite, "issued_at"),
            "substr(issued_at, 1, 13)"
        );
    }
}
