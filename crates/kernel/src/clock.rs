//! Time as a dependency, so rules about periods and expiry can be tested
//! without sleeping.

use std::sync::{Arc, Mutex};
use time::{Duration, OffsetDateTime};

use crate::timestamp::Timestamp;

/// A source of "now": UTC, microsecond precision (what PostgreSQL keeps),
/// so a value read back equals the value written.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

pub type SharedClock = Arc<dyn Clock>;

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from(OffsetDateTime::now_utc())
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    #[must_use]
    pub fn new(start: impl Into<Timestamp>) -> Self {
        Self(Mutex::new(start.into()))
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *now = *now + by;
    }

    pub fn set(&self, to: impl Into<Timestamp>) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = to.into();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let start = Timestamp::from(OffsetDateTime::UNIX_EPOCH + Duration::days(1));
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::seconds(5));
        assert_eq!(clock.now(), start + Duration::seconds(5));
    }

    #[test]
    fn system_clock_keeps_microsecond_precision() {
        assert_eq!(SystemClock.now().as_datetime().nanosecond() % 1_000, 0);
    }
}
