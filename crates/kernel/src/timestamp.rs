//! Instants as stored and shown: UTC, microsecond precision, RFC 3339 in
//! JSON. On SQLite they are stored as fixed-width text
//! (`2026-11-22T03:05:19.500000Z`) so that comparing two in SQL compares the
//! instants; sqlx's default trims trailing zeros, which makes `…19.5Z` sort
//! before `…19Z`. On PostgreSQL they are `timestamptz`.

use std::fmt;
use std::ops::{Add, Sub};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::sqlite::{SqliteArgumentsBuffer, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Encode, Postgres, Sqlite, Type};
use time::format_description::BorrowedFormatItem;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Duration, OffsetDateTime, UtcOffset};

const SQLITE_FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// A UTC instant with microsecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, utoipa::ToSchema)]
#[schema(value_type = String, format = DateTime)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    /// Converts to UTC and truncates to whole microseconds.
    #[must_use]
    pub fn from_datetime(t: OffsetDateTime) -> Self {
        let t = t.to_offset(UtcOffset::UTC);
        let micros = t.microsecond();
        Self(t.replace_nanosecond(micros * 1_000).unwrap_or(t))
    }

    #[must_use]
    pub const fn as_datetime(self) -> OffsetDateTime {
        self.0
    }

    #[must_use]
    pub const fn unix_timestamp(self) -> i64 {
        self.0.unix_timestamp()
    }

    /// Parses RFC 3339 (any offset; converted to UTC).
    pub fn parse(s: &str) -> Result<Self, time::error::Parse> {
        OffsetDateTime::parse(s, &Rfc3339).map(Self::from_datetime)
    }

    fn sqlite_text(self) -> Result<String, time::error::Format> {
        self.0.format(SQLITE_FORMAT)
    }
}

impl From<OffsetDateTime> for Timestamp {
    fn from(t: OffsetDateTime) -> Self {
        Self::from_datetime(t)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.format(&Rfc3339) {
            Ok(s) => f.write_str(&s),
            Err(_) => write!(f, "{}", self.0),
        }
    }
}

impl Add<Duration> for Timestamp {
    type Output = Self;
    fn add(self, d: Duration) -> Self {
        Self::from_datetime(self.0 + d)
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Self;
    fn sub(self, d: Duration) -> Self {
        Self::from_datetime(self.0 - d)
    }
}

impl Add<std::time::Duration> for Timestamp {
    type Output = Self;
    fn add(self, d: std::time::Duration) -> Self {
        Self::from_datetime(self.0 + d)
    }
}

impl Sub<std::time::Duration> for Timestamp {
    type Output = Self;
    fn sub(self, d: std::time::Duration) -> Self {
        Self::from_datetime(self.0 - d)
    }
}

impl Sub for Timestamp {
    type Output = Duration;
    fn sub(self, other: Self) -> Duration {
        self.0 - other.0
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        time::serde::rfc3339::serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        time::serde::rfc3339::deserialize(d).map(Self::from_datetime)
    }
}

impl Type<Sqlite> for Timestamp {
    fn type_info() -> SqliteTypeInfo {
        <OffsetDateTime as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <OffsetDateTime as Type<Sqlite>>::compatible(ty)
    }
}

impl Encode<'_, Sqlite> for Timestamp {
    fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
        Encode::<Sqlite>::encode(self.sqlite_text()?, buf)
    }
}

/// The same text, for the SQLite writer's direct connection.
impl rusqlite::ToSql for Timestamp {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        self.sqlite_text()
            .map(rusqlite::types::ToSqlOutput::from)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
    }
}

impl<'r> Decode<'r, Sqlite> for Timestamp {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        <OffsetDateTime as Decode<Sqlite>>::decode(value).map(Self::from_datetime)
    }
}

impl Type<Postgres> for Timestamp {
    fn type_info() -> PgTypeInfo {
        <OffsetDateTime as Type<Postgres>>::type_info()
    }
    fn compatible(ty: &PgTypeInfo) -> bool {
        <OffsetDateTime as Type<Postgres>>::compatible(ty)
    }
}

impl Encode<'_, Postgres> for Timestamp {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        Encode::<Postgres>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for Timestamp {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        <OffsetDateTime as Decode<Postgres>>::decode(value).map(Self::from_datetime)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn sqlite_text_is_fixed_width_so_text_order_is_time_order() {
        let whole = Timestamp::from(datetime!(2026-11-22 03:05:19 UTC));
        let half = whole + Duration::milliseconds(500);
        let (a, b) = (
            whole.sqlite_text().expect("formats"),
            half.sqlite_text().expect("formats"),
        );
        assert_eq!(a, "2026-11-22T03:05:19.000000Z");
        assert_eq!(b, "2026-11-22T03:05:19.500000Z");
        assert!(a < b);
    }

    #[test]
    fn values_are_utc_and_truncated_to_microseconds() {
        let t = Timestamp::from(datetime!(2026-11-22 12:00:00.123456789 +09:00));
        assert_eq!(t.to_string(), "2026-11-22T03:00:00.123456Z");
        assert_eq!(
            Timestamp::parse("2026-11-22T12:00:00+09:00").ok(),
            Some(Timestamp::from(datetime!(2026-11-22 03:00 UTC)))
        );
    }

    #[test]
    fn json_is_rfc3339() {
        let t = Timestamp::from(datetime!(2026-11-22 10:00 UTC));
        assert_eq!(
            serde_json::to_string(&t).ok().as_deref(),
            Some("\"2026-11-22T10:00:00Z\"")
        );
        let back: Timestamp =
            serde_json::from_str("\"2026-11-22T19:00:00+09:00\"").expect("parses");
        assert_eq!(back, t);
    }
}
