//! Free text shown to users: names and descriptions of events and rewards.

use std::fmt;

use kernel::text::{self, ControlCharacter};
use serde::Serialize;
use utoipa::ToSchema;

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 2000;

/// A display name: trimmed, 1 to 200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, min_length = 1, max_length = 200)]
pub struct Name(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidName {
    #[error("must not be blank")]
    Blank,
    #[error("must be at most {MAX_NAME_CHARS} characters")]
    TooLong,
    #[error(transparent)]
    Control(#[from] ControlCharacter),
}

impl Name {
    pub fn parse(raw: &str) -> Result<Self, InvalidName> {
        let name = raw.trim();
        match name.chars().count() {
            0 => Err(InvalidName::Blank),
            n if n > MAX_NAME_CHARS => Err(InvalidName::TooLong),
            _ => {
                text::single_line(name)?;
                Ok(Self(name.to_owned()))
            }
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A description: at most 2000 characters, kept as written (it may be
/// empty); line feeds and tabs are its only control characters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, max_length = 2000)]
pub struct Description(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidDescription {
    #[error("must be at most {MAX_DESCRIPTION_CHARS} characters")]
    TooLong,
    #[error(transparent)]
    Control(#[from] ControlCharacter),
}

impl Description {
    pub fn parse(raw: &str) -> Result<Self, InvalidDescription> {
        if raw.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(InvalidDescription::TooLong);
        }
        text::multi_line(raw)?;
        Ok(Self(raw.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_counted_in_characters() {
        let name = Name::parse("  Winter festival  ").expect("valid");
        assert_eq!(name.as_str(), "Winter festival");
        assert!(Name::parse(&"축".repeat(MAX_NAME_CHARS)).is_ok());
    }

    #[test]
    fn blank_and_overlong_names_are_refused() {
        assert_eq!(Name::parse(""), Err(InvalidName::Blank));
        assert_eq!(Name::parse(" \t\n "), Err(InvalidName::Blank));
        assert_eq!(
            Name::parse(&"x".repeat(MAX_NAME_CHARS + 1)),
            Err(InvalidName::TooLong)
        );
    }

    #[test]
    fn descriptions_may_be_empty_but_not_longer_than_2000_characters() {
        assert_eq!(Description::parse("").expect("valid").as_str(), "");
        assert!(Description::parse(&"é".repeat(MAX_DESCRIPTION_CHARS)).is_ok());
        assert_eq!(
            Description::parse(&"é".repeat(MAX_DESCRIPTION_CHARS + 1)),
            Err(InvalidDescription::TooLong)
        );
    }

    #[test]
    fn names_refuse_control_characters_inside() {
        for bad in [
            "AB\u{0}CD",
            "Winter\nfestival",
            "a\tb",
            "\u{1b}[31mred",
            "x\u{7f}y",
        ] {
            assert_eq!(
                Name::parse(bad),
                Err(InvalidName::Control(ControlCharacter::SingleLine)),
                "{bad:?}"
            );
        }
        // Surrounding whitespace is trimmed, not refused.
        assert_eq!(Name::parse("\tFair\n").expect("valid").as_str(), "Fair");
    }

    #[test]
    fn descriptions_keep_line_feeds_and_tabs_but_no_other_control_character() {
        let text = "Line one\n\tLine two\n";
        assert_eq!(Description::parse(text).expect("valid").as_str(), text);
        for bad in ["a\u{0}b", "a\r\nb", "\u{7}", "\u{9b}"] {
            assert_eq!(
                Description::parse(bad),
                Err(InvalidDescription::Control(ControlCharacter::MultiLine)),
                "{bad:?}"
            );
        }
    }
}
