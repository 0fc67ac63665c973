//! Reading form fields into the values the services take, and back: the
//! refusals read as the API's field errors, so they show on the form.

use kernel::{Problem, Timestamp};
use time::macros::format_description;

use crate::session::Fields;

/// A `datetime-local` value (no zone) read as UTC, or an RFC 3339 one.
pub fn moment(fields: &Fields, name: &str) -> Result<Timestamp, Problem> {
    let raw = fields.value(name).trim();
    let full = match raw.len() {
        16 => format!("{raw}:00Z"),
        19 => format!("{raw}Z"),
        _ => raw.to_owned(),
    };
    Timestamp::parse(&full)
        .map_err(|_| Problem::invalid_field(name, "is not a date and time (UTC)"))
}

/// The `datetime-local` value of an instant (UTC, to the second), so an
/// edit form that is sent back unchanged keeps it.
#[must_use]
pub fn datetime_local(at: Timestamp) -> String {
    at.as_datetime()
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]"
        ))
        .unwrap_or_default()
}

pub fn whole(fields: &Fields, name: &str) -> Result<i64, Problem> {
    fields
        .value(name)
        .trim()
        .parse()
        .map_err(|_| Problem::invalid_field(name, "is not a whole number"))
}

/// One of an enum's values by its API name (a `select` or a button).
pub fn choice<T>(fields: &Fields, name: &str) -> Result<T, Problem>
where
    T: std::str::FromStr<Err = kernel::lifecycle::UnknownValue>,
{
    fields
        .value(name)
        .parse()
        .map_err(|e: kernel::lifecycle::UnknownValue| Problem::invalid_field(name, e.to_string()))
}

/// What `read` makes of the field, or `None` when it is left empty.
fn optional<T>(
    fields: &Fields,
    name: &str,
    read: fn(&Fields, &str) -> Result<T, Problem>,
) -> Result<Option<T>, Problem> {
    if fields.value(name).trim().is_empty() {
        Ok(None)
    } else {
        read(fields, name).map(Some)
    }
}

/// A whole number, or `None` when the field is left empty.
pub fn optional_whole(fields: &Fields, name: &str) -> Result<Option<i64>, Problem> {
    optional(fields, name, whole)
}

/// A moment, or `None` when the field is left empty.
pub fn optional_moment(fields: &Fields, name: &str) -> Result<Option<Timestamp>, Problem> {
    optional(fields, name, moment)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        Fields(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn a_datetime_local_value_reads_as_utc_and_round_trips() {
        let f = fields(&[("a", "2026-12-03T10:15"), ("b", "2026-12-03T10:15:30")]);
        let a = moment(&f, "a").expect("minutes");
        let b = moment(&f, "b").expect("seconds");

        assert_eq!(a.to_string(), "2026-12-03T10:15:00Z");
        assert_eq!(datetime_local(b), "2026-12-03T10:15:30");
        assert_eq!(
            moment(&fields(&[("b", &datetime_local(b))]), "b").expect("again"),
            b
        );
    }

    #[test]
    fn bad_numbers_and_dates_are_field_errors_and_empty_is_none() {
        let f = fields(&[("n", "1.5"), ("e", " "), ("d", "tomorrow")]);

        assert!(whole(&f, "n").is_err());
        assert_eq!(optional_whole(&f, "e").expect("empty"), None);
        assert_eq!(optional_whole(&f, "missing").expect("absent"), None);
        let refused = moment(&f, "d").expect_err("not a date").into_details();
        assert_eq!(refused.errors[0].field, "d");
    }

    #[test]
    fn a_choice_reads_an_api_name_and_names_the_field_it_refuses() {
        use park::model::AttractionStatus;
        let f = fields(&[("to", "DOWN"), ("bad", "down")]);

        assert_eq!(
            choice::<AttractionStatus>(&f, "to").expect("a status"),
            AttractionStatus::Down
        );
        let refused = choice::<AttractionStatus>(&f, "bad")
            .expect_err("names are upper-case")
            .into_details();
        assert_eq!(refused.errors[0].field, "bad");
        assert!(refused.errors[0].message.contains("OPERATING"));
    }
}
