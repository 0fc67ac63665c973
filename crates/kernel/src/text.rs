//! The one check every text a client sends passes before it is stored or
//! searched for: no control characters (Unicode category Cc, U+0000–U+001F
//! and U+007F–U+009F). PostgreSQL refuses U+0000 in `text` while SQLite keeps
//! it, so without this the two backends disagree (and PostgreSQL answers 500);
//! the others are invisible, or move a terminal's cursor, wherever the text is
//! shown.
//!
//! Each module's text types (names, descriptions, keys, codes, addresses) call
//! [`single_line`] or [`multi_line`] from their constructors, after trimming;
//! the two every module shows, [`Name`] and [`Description`], live here.

use std::fmt;

use serde::Serialize;
use utoipa::ToSchema;

/// A text holds a control character it may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ControlCharacter {
    /// Found in a one-line text, where none is allowed.
    #[error("must not contain control characters")]
    SingleLine,
    /// Found in free text, where only line feeds and tabs are allowed.
    #[error("must not contain control characters other than line feeds and tabs")]
    MultiLine,
}

/// For one-line text (names, ids, keys, codes, email addresses, search
/// terms): no control character at all.
pub fn single_line(text: &str) -> Result<(), ControlCharacter> {
    if text.chars().any(char::is_control) {
        Err(ControlCharacter::SingleLine)
    } else {
        Ok(())
    }
}

/// For free text a person writes in a text area (descriptions, notes):
/// line feeds and tabs are allowed, no other control character.
pub fn multi_line(text: &str) -> Result<(), ControlCharacter> {
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t'))
    {
        Err(ControlCharacter::MultiLine)
    } else {
        Ok(())
    }
}

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
                single_line(name)?;
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
        multi_line(raw)?;
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
    fn one_line_text_refuses_every_control_character() {
        for bad in [
            "AB\u{0}CD",
            "\u{0}",
            "a\nb",
            "a\tb",
            "a\rb",
            "\u{1b}[31m",
            "x\u{7f}",
            "x\u{85}",
            "x\u{9f}",
        ] {
            assert_eq!(
                single_line(bad),
                Err(ControlCharacter::SingleLine),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn one_line_text_keeps_any_other_character() {
        for good in [
            "",
            "Winter festival",
            "축제 🎉",
            "a b",
            "\u{a0}",
            "\u{200b}",
        ] {
            assert_eq!(single_line(good), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn free_text_allows_line_feeds_and_tabs_only() {
        assert_eq!(multi_line("line one\n\tline two\n"), Ok(()));
        for bad in ["a\u{0}b", "a\r\nb", "\u{1b}", "\u{7f}", "\u{8}"] {
            assert_eq!(multi_line(bad), Err(ControlCharacter::MultiLine), "{bad:?}");
        }
    }

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
