//! A wrapper for values that must never reach a log line or a serialised
//! document.

use serde::Deserialize;

/// Holds a secret (a password, a key) and prints as `[redacted]`. It can be
/// read from configuration but has no `Serialize`, so no serialised
/// structure can carry it by accident:
///
/// ```compile_fail
/// let secret = kernel::Secret::new("hunter2".to_owned());
/// let _ = serde_json::to_string(&secret);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub const fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret itself; call it only where the value is used.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_value() {
        let s = Secret::new("hunter22".to_owned());
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(s.expose(), "hunter22");
    }
}
