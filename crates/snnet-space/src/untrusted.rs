//! Strings read from outside: safe display and name checks.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::error::{Error, NameProblem, Result};
use crate::limits::MAX_NAME_LEN;

/// Whether printing `c` raw could drive or deceive a terminal: control characters (C0, DEL and
/// C1, which start escape sequences, move the cursor or erase) and the invisible Unicode
/// formatting characters that reorder or hide text (bidirectional embeddings, overrides and
/// isolates, zero-width characters, line and paragraph separators, the byte-order mark).
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// A string read from outside (a name from a spec file, a checkpoint or a table), made safe to
/// print to a terminal: control characters and invisible formatting characters (see below) are
/// replaced by Rust-style escapes (`\n`, `\r`, `\t`, `\u{1b}`, `\u{202e}`); everything else,
/// non-ASCII letters included, is kept. Borrows when there is nothing to escape.
///
/// Escaped are the control characters (C0, DEL and C1: terminal escape sequences start with
/// `ESC`, `\r` and backspace overwrite what was printed) and the characters that reorder or hide
/// text: bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069, U+061C),
/// zero-width characters (U+200B–U+200F, U+2060–U+2064, U+FEFF), the soft hyphen, and the line
/// and paragraph separators.
///
/// ```
/// use snnet_space::display_safe;
///
/// assert_eq!(display_safe("deit_tiny_patch16_224"), "deit_tiny_patch16_224");
/// assert_eq!(display_safe("evil\u{1b}[2Jname\n"), "evil\\u{1b}[2Jname\\n");
/// assert_eq!(display_safe("abc\u{202e}fed"), "abc\\u{202e}fed");
/// assert_eq!(display_safe("modèle_ü"), "modèle_ü");
/// ```
pub fn display_safe(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len().saturating_add(8));
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// [`display_safe`], cut to at most `max` characters (with `…` when cut): for echoing a possibly
/// huge input in an error message.
pub(crate) fn display_short(s: &str, max: usize) -> String {
    let safe = display_safe(s);
    match safe.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", safe.get(..at).unwrap_or_default()),
        None => safe.into_owned(),
    }
}

/// Checks an anchor name or label read from outside: 1 to [`MAX_NAME_LEN`] bytes of letters,
/// digits (any script) and ASCII punctuation — no whitespace, control or formatting characters,
/// so that names print safely and read back on a command line.
///
/// # Errors
/// [`Error::LimitExceeded`] for a name over [`MAX_NAME_LEN`] bytes, [`Error::InvalidName`]
/// otherwise.
pub(crate) fn check_name(what: &'static str, value: &str) -> Result<()> {
    let invalid = |reason: NameProblem| {
        Err(Error::InvalidName {
            what,
            value: value.to_owned(),
            reason,
        })
    };
    if value.is_empty() {
        return invalid(NameProblem::Empty);
    }
    if value.len() > MAX_NAME_LEN {
        return Err(Error::LimitExceeded {
            what: if what == "label" {
                "label length in bytes"
            } else {
                "name length in bytes"
            },
            value: value.len() as u128,
            limit: MAX_NAME_LEN as u64,
            constant: "MAX_NAME_LEN",
            anchor: None,
        });
    }
    if let Some(c) = value
        .chars()
        .find(|&c| !(c.is_alphanumeric() || c.is_ascii_punctuation()))
    {
        return invalid(NameProblem::Character(c));
    }
    Ok(())
}

/// `msg` without the ` at line L column C` that serde_json appends (for messages that report the
/// position themselves, with the field).
pub fn strip_json_position(msg: &str) -> &str {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(at) = msg.rfind(" at line ")
        && let Some((line, column)) = msg
            .get(at..)
            .and_then(|tail| tail.strip_prefix(" at line "))
            .and_then(|tail| tail.split_once(" column "))
        && digits(line)
        && digits(column)
    {
        return msg.get(..at).unwrap_or(msg);
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_safe_escapes_only_what_it_must() {
        assert!(matches!(display_safe("plain_name-1.0"), Cow::Borrowed(_)));
        assert_eq!(
            display_safe("a\u{1b}]0;title\u{7}b"),
            "a\\u{1b}]0;title\\u{7}b"
        );
        assert_eq!(display_safe("\r\t\u{9b}"), "\\r\\t\\u{9b}");
        assert_eq!(
            display_safe("\u{2066}x\u{feff}\u{200b}"),
            "\\u{2066}x\\u{feff}\\u{200b}"
        );
        assert_eq!(display_safe("日本語\\"), "日本語\\");
        assert_eq!(display_short("ab\ncd", 3), "ab\\…");
        assert_eq!(display_short("abc", 3), "abc");
    }

    #[test]
    fn names_must_be_printable_and_bounded() {
        assert!(check_name("name", "deit_tiny_patch16_224").is_ok());
        assert!(check_name("name", "hf-hub:timm/vit_base.augreg_in21k").is_ok());
        assert!(check_name("name", "modèle").is_ok());
        for bad in [
            "",
            "a b",
            "x\u{1b}[31m",
            "a\nb",
            "abc\u{202e}",
            "zero\u{200b}width",
        ] {
            assert!(
                matches!(
                    check_name("name", bad),
                    Err(Error::InvalidName { what: "name", .. })
                ),
                "{bad:?}"
            );
        }
        let long = "a".repeat(MAX_NAME_LEN + 1);
        assert!(matches!(
            check_name("label", &long),
            Err(Error::LimitExceeded {
                constant: "MAX_NAME_LEN",
                ..
            })
        ));
        assert!(check_name("label", &long[1..]).is_ok());
        let err = check_name("name", "x\u{1b}[2J").unwrap_err().to_string();
        assert!(!err.contains('\u{1b}'), "{err}");
        assert!(err.contains("\\u{1b}"), "{err}");
    }
}
