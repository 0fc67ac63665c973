//! Status enums: each writes its text form once (`as_str`, `ALL`) and its
//! legal moves once ([`Lifecycle::can_move_to`]); the errors, `Display`,
//! `FromStr` and `move_to` are shared here.

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

/// A status with legal moves between its values.
pub trait Lifecycle: Copy {
    /// The value's name in the API.
    fn name(self) -> &'static str;

    /// Whether `self → next` is a legal move; staying put is not a move.
    fn can_move_to(self, next: Self) -> bool;

    /// `next`, if the move is legal.
    fn move_to(self, next: Self) -> Result<Self, InvalidTransition> {
        if self.can_move_to(next) {
            Ok(next)
        } else {
            Err(InvalidTransition {
                from: self.name(),
                to: next.name(),
            })
        }
    }
}

/// `Display` and `FromStr` (erring with [`UnknownValue`]) through the enum's
/// `as_str` and `ALL`, so the text form of each value is written once.
#[macro_export]
macro_rules! text_form {
    ($ty:ty, $expected:literal) => {
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::lifecycle::UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .into_iter()
                    .find(|value| value.as_str() == s)
                    .ok_or($crate::lifecycle::UnknownValue {
                        expected: $expected,
                    })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Light {
        Red,
        Green,
    }

    impl Light {
        const ALL: [Self; 2] = [Self::Red, Self::Green];

        const fn as_str(self) -> &'static str {
            match self {
                Self::Red => "RED",
                Self::Green => "GREEN",
            }
        }
    }

    impl Lifecycle for Light {
        fn name(self) -> &'static str {
            self.as_str()
        }

        fn can_move_to(self, next: Self) -> bool {
            matches!((self, next), (Self::Red, Self::Green))
        }
    }

    text_form!(Light, "RED, GREEN");

    #[test]
    fn a_move_is_legal_or_names_itself() {
        assert_eq!(Light::Red.move_to(Light::Green), Ok(Light::Green));
        assert_eq!(
            Light::Green.move_to(Light::Red).map_err(|e| e.to_string()),
            Err("cannot move from GREEN to RED".to_owned())
        );
        assert!(Light::Red.move_to(Light::Red).is_err(), "staying put");
    }

    #[test]
    fn the_text_form_goes_both_ways() {
        for light in Light::ALL {
            assert_eq!(light.to_string().parse::<Light>(), Ok(light));
        }
        assert_eq!(
            "red".parse::<Light>().map_err(|e| e.to_string()),
            Err("must be one of RED, GREEN".to_owned())
        );
    }
}
