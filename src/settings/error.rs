//! The one place that turns config problems into `file:line:col: message`.
//!
//! toml gives byte spans; users need lines and columns they can type into an editor, counted in
//! characters because Arabic names and terms are several bytes each.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in one config file, at a 1-based line and a 1-based column in characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{col}: {message}", file.display())]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Every problem found in one load, in file order, so one `marsad check` shows them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A config file's path and text, for turning byte offsets into positions.
pub(crate) struct SourceText<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl SourceText<'_> {
    /// An error at byte `offset` of this file.
    pub fn error(&self, offset: usize, message: impl Into<String>) -> ConfigError {
        let (line, col) = line_col(self.text, offset);
        ConfigError {
            file: self.path.to_path_buf(),
            line,
            col,
            message: one_line(&message.into()),
        }
    }

    /// The 1-based line of byte `offset`, for messages that refer to another place in the file.
    pub fn line_of(&self, offset: usize) -> usize {
        line_col(self.text, offset).0
    }

    /// An error about the whole file (it cannot be read, or something is missing from it).
    pub fn whole_file(path: &Path, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: path.to_path_buf(),
            line: 1,
            col: 1,
            message: message.into(),
        }
    }

    /// An error from toml (syntax, or serde's view of a value), at its span when it has one.
    pub fn toml_error(&self, err: &toml::de::Error, fallback_offset: usize) -> ConfigError {
        let offset = err.span().map_or(fallback_offset, |span| span.start);
        self.error(offset, tidy_serde_message(err.message()))
    }
}

/// Messages from other crates (selector and query parsers) may span lines; scripts and editors
/// expect one error per line.
fn one_line(message: &str) -> String {
    let parts: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    parts.join(": ")
}

/// 1-based line and character column of byte `offset` in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..text.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// serde speaks of fields and variants; TOML users write keys and values.
fn tidy_serde_message(message: &str) -> String {
    message
        .trim_end()
        .replace("unknown field", "unknown key")
        .replace("missing field", "missing key")
        .replace("unknown variant", "unknown value")
}

/// Maps a byte offset into a string's decoded value to the byte offset, inside the raw TOML
/// literal `raw` (quotes included), where that character is written.
///
/// Needed because messages about a query point inside the string: `"russia AND isreal"` has
/// `isreal` at value offset 11 but file offset start+12, and escapes or a multi-line string shift
/// it further.
pub(crate) fn literal_offset(raw: &str, decoded_offset: usize) -> usize {
    let (delimiter, basic, multiline) = if raw.starts_with("\"\"\"") {
        (3, true, true)
    } else if raw.starts_with("'''") {
        (3, false, true)
    } else if raw.starts_with('"') {
        (1, true, false)
    } else if raw.starts_with('\'') {
        (1, false, false)
    } else {
        (0, false, false)
    };
    let mut i = delimiter.min(raw.len());
    if multiline {
        // TOML drops a newline right after the opening delimiter.
        if raw[i..].starts_with("\r\n") {
            i += 2;
        } else if raw[i..].starts_with('\n') {
            i += 1;
        }
    }
    let mut decoded = 0;
    while let Some(c) = raw[i..].chars().next() {
        let escaped = if basic && c == '\\' {
            raw[i + 1..].chars().next()
        } else {
            None
        };
        // A line-ending backslash swallows the newline and the whitespace after it; it stands
        // for nothing, so it is skipped even when the target is the character after it.
        if escaped.is_some_and(char::is_whitespace) {
            i += 1;
            while let Some(w) = raw[i..].chars().next().filter(|w| w.is_whitespace()) {
                i += w.len_utf8();
            }
            continue;
        }
        if decoded >= decoded_offset {
            break;
        }
        let rest = &raw[i + 1..];
        match escaped {
            Some('u') => {
                decoded += escaped_len(rest.get(1..5));
                i += 6;
            }
            Some('U') => {
                decoded += escaped_len(rest.get(1..9));
                i += 10;
            }
            Some('x') => {
                decoded += escaped_len(rest.get(1..3));
                i += 4;
            }
            Some(e) => {
                decoded += 1;
                i += 1 + e.len_utf8();
            }
            None => {
                decoded += c.len_utf8();
                i += c.len_utf8();
            }
        }
    }
    i.min(raw.len())
}

/// UTF-8 length of the character a `\u`/`\U`/`\x` escape with these hex digits stands for.
fn escaped_len(hex: Option<&str>) -> usize {
    hex.and_then(|h| u32::from_str_radix(h, 16).ok())
        .and_then(char::from_u32)
        .map_or(1, char::len_utf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_characters_not_bytes() {
        let text = "name = \"الخنادق\"\nid = 3\n";
        assert_eq!(line_col(text, 0), (1, 1));
        let after_arabic = text.find("\"\n").unwrap();
        assert_eq!(line_col(text, after_arabic), (1, 16));
        let id = text.find("3").unwrap();
        assert_eq!(line_col(text, id), (2, 6));
        assert_eq!(line_col(text, text.len() + 10), (3, 1));
    }

    #[test]
    fn literal_offsets_skip_quotes_and_escapes() {
        let value = "russia AND isreal";
        let at = value.find("isreal").unwrap();
        assert_eq!(literal_offset("\"russia AND isreal\"", at), at + 1);
        assert_eq!(literal_offset("'russia AND isreal'", at), at + 1);
        assert_eq!(literal_offset("'''\nrussia AND isreal'''", at), at + 4);
        // `\"x\"` decodes to `"x"`: one decoded byte per two raw bytes.
        let raw = r#""\"a b\" AND isreal""#;
        let decoded = "\"a b\" AND isreal";
        assert_eq!(
            &raw[literal_offset(raw, decoded.find("isreal").unwrap())..],
            "isreal\""
        );
        // `\u0631` is two bytes decoded (ر), six raw.
        let raw = r#""\u0631 isreal""#;
        assert_eq!(&raw[literal_offset(raw, 3)..], "isreal\"");
        // A line-ending backslash joins lines.
        let raw = "\"\"\"russia AND \\\n      isreal\"\"\"";
        assert_eq!(&raw[literal_offset(raw, 11)..], "isreal\"\"\"");
    }
}
