//! The one check every text a client sends passes before it is stored or
//! searched for: no control characters (Unicode category Cc, U+0000–U+001F
//! and U+007F–U+009F). PostgreSQL refuses U+0000 in `text` while SQLite keeps
//! it, so without this the two backends disagree (and PostgreSQL answers 500);
//! the others are invisible, or move a terminal's cursor, wherever the text is
//! shown.
//!
//! Each module's text types (names, descriptions, keys, codes, addresses) call
//! [`single_line`] or [`multi_line`] from their constructors, after trimming.

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
}
