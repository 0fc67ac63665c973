//! What the named enums of this module (event and request statuses, reason
//! codes) share: their errors, and their text form.

/// A status change the lifecycle does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot move from {from} to {to}")]
pub struct InvalidTransition {
    pub from: &'static str,
    pub to: &'static str,
}

/// A string that names none of an enum's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be one of {expected}")]
pub struct UnknownValue {
    /// The accepted values, comma-separated.
    pub expected: &'static str,
}

/// `Display` and `FromStr` through the enum's `as_str` and `ALL`, so the text
/// form of each value is written once, in `as_str`.
macro_rules! text_form {
    ($ty:ty, $expected:literal) => {
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::model::status::UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .into_iter()
                    .find(|value| value.as_str() == s)
                    .ok_or($crate::model::status::UnknownValue {
                        expected: $expected,
                    })
            }
        }
    };
}
pub(crate) use text_form;
