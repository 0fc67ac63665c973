//! Crash points for fault tests: `STAMPEDE_CRASH_AT=<point>` makes the
//! process abort (no destructors, no flush, like `kill -9`) the first time a
//! request reaches that point, so a test can show what a retry finds after
//! a crash at an exact step of a claim. Unset, a point costs one load of an
//! initialised `OnceLock`. The server refuses to start with an unknown name,
//! and logs a warning when one is set.

use std::sync::OnceLock;

/// The environment variable naming the armed point.
pub const CRASH_AT_VARIABLE: &str = "STAMPEDE_CRASH_AT";

/// Where a claim can be cut short, in the order a keyed request meets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// The `Idempotency-Key` is claimed; nothing is taken yet.
    BeforeTake,
    /// The units are taken from the gate; the durable write has not run.
    AfterTake,
    /// The durable write committed; the key's answer is not recorded.
    AfterWrite,
    /// The key's answer is recorded; the client has not received it.
    AfterAnswer,
}

impl CrashPoint {
    /// Every point, for validation and for tests that try each.
    pub const ALL: [Self; 4] = [
        Self::BeforeTake,
        Self::AfterTake,
        Self::AfterWrite,
        Self::AfterAnswer,
    ];

    /// The point's name in [`CRASH_AT_VARIABLE`].
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BeforeTake => "before-take",
            Self::AfterTake => "after-take",
            Self::AfterWrite => "after-write",
            Self::AfterAnswer => "after-answer",
        }
    }

    /// The point named `name`.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

static ARMED: OnceLock<Option<CrashPoint>> = OnceLock::new();

/// Reads [`CRASH_AT_VARIABLE`] once: the armed point, if any; an error
/// naming the valid points for an unknown name.
///
/// # Errors
/// The variable names no point.
pub fn arm_from_env() -> Result<Option<CrashPoint>, String> {
    let armed = match std::env::var(CRASH_AT_VARIABLE) {
        Ok(name) if !name.is_empty() => Some(CrashPoint::parse(&name).ok_or_else(|| {
            let known: Vec<&str> = CrashPoint::ALL.iter().map(|p| p.as_str()).collect();
            format!(
                "{CRASH_AT_VARIABLE}={name} names no crash point (known: {})",
                known.join(", ")
            )
        })?),
        _ => None,
    };
    Ok(*ARMED.get_or_init(|| armed))
}

/// Aborts the process if `point` is the armed one. Only servers arm a point
/// (through [`arm_from_env`]); anything else never crashes here.
pub fn reached(point: CrashPoint) {
    if ARMED.get().copied().flatten() == Some(point) {
        eprintln!("{CRASH_AT_VARIABLE}: aborting at {}", point.as_str());
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_point_parses_back_from_its_name() {
        for point in CrashPoint::ALL {
            assert_eq!(CrashPoint::parse(point.as_str()), Some(point));
        }
        assert_eq!(CrashPoint::parse("after-lunch"), None);
    }

    #[test]
    fn an_unarmed_process_passes_every_point() {
        // Nothing in this test binary arms a point.
        for point in CrashPoint::ALL {
            reached(point);
        }
    }
}
