//! What can go wrong while expanding a word, worded exactly as BuildKit words it.
//!
//! Each variant's `Display` is BuildKit's message for that case; BuildKit then wraps every one
//! as `failed to process "<word>": <message>`, which [`ShellError::buildkit_message`] rebuilds
//! for callers that want the whole text. Offsets are byte offsets into the word.

use super::chars::is_print;

/// An expansion failure, carrying the byte offset in the word where the fault is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShellError {
    /// A `'` with no closing `'`; the offset is the opening quote.
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote {
        /// Byte offset of the opening quote.
        offset: usize,
    },
    /// A `"` with no closing `"`; the offset is the opening quote.
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote {
        /// Byte offset of the opening quote.
        offset: usize,
    },
    /// The word ended while a nested word still waited for `expected` (BuildKit reports this
    /// as a missing `}` or `/` instead whenever the word has ended, so it rarely surfaces).
    #[error("unexpected end of statement while looking for matching {expected}")]
    Unterminated {
        /// The character that never came.
        expected: char,
        /// Byte offset of the end of the word.
        offset: usize,
    },
    /// `${` with no closing `}`; the offset is the `$`.
    #[error("syntax error: missing '}}'")]
    MissingBrace {
        /// Byte offset of the `$`.
        offset: usize,
    },
    /// `${V/pattern` with no `/` after the pattern; the offset is the `$`.
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash {
        /// Byte offset of the `$`.
        offset: usize,
    },
    /// `${}`, `${{…}` or `${:…}`; the offset is the character after `${`.
    #[error("syntax error: bad substitution")]
    BadSubstitution {
        /// Byte offset of the character after `${`.
        offset: usize,
    },
    /// An operator BuildKit does not support (`${V=w}`, `${V:#p}`, `${V:x}`, `${V` …).
    /// `modifier` is the text BuildKit prints; it shows the end of the word as `\u{FFFD}`,
    /// as Go's `string(scanner.EOF)` does.
    #[error("unsupported modifier ({modifier}) in substitution")]
    UnsupportedModifier {
        /// The operator as BuildKit prints it (one or two characters, `:` included).
        modifier: String,
        /// Byte offset of the operator.
        offset: usize,
    },
    /// `${V?msg}` or `${V:?msg}` with `V` unset; `message` is the expanded `msg`, or
    /// `is not allowed to be unset` when it is empty.
    #[error("{name}: {message}")]
    Unset {
        /// The variable's name.
        name: String,
        /// The expanded message, or BuildKit's default one.
        message: String,
        /// Byte offset of the `$`.
        offset: usize,
    },
    /// `${V:?msg}` with `V` set but empty; `message` is the expanded `msg`, or
    /// `is not allowed to be empty`.
    #[error("{name}: {message}")]
    Empty {
        /// The variable's name.
        name: String,
        /// The expanded message, or BuildKit's default one.
        message: String,
        /// Byte offset of the `$`.
        offset: usize,
    },
    /// A `#`, `%` or `/` pattern that is not a valid glob (`\x`, a trailing `\`).
    /// For `%`/`%%` the pattern is shown reversed, as BuildKit shows it.
    #[error("invalid pattern ({pattern}) in substitution: {reason}")]
    InvalidPattern {
        /// The pattern after expansion.
        pattern: String,
        /// Why it is invalid.
        reason: String,
        /// Byte offset of the `$`.
        offset: usize,
    },
    /// Substitutions nested deeper than kiln allows (Go's growable stack has no such limit;
    /// ours is there so that no input can overflow the stack).
    #[error("syntax error: substitutions nested deeper than {limit} levels")]
    TooDeep {
        /// The nesting limit.
        limit: usize,
        /// Byte offset of the `$` that went past it.
        offset: usize,
    },
}

impl ShellError {
    /// The byte offset in the word where the problem is.
    pub fn offset(&self) -> usize {
        match self {
            Self::UnterminatedSingleQuote { offset }
            | Self::UnterminatedDoubleQuote { offset }
            | Self::Unterminated { offset, .. }
            | Self::MissingBrace { offset }
            | Self::MissingSlash { offset }
            | Self::BadSubstitution { offset }
            | Self::UnsupportedModifier { offset, .. }
            | Self::Unset { offset, .. }
            | Self::Empty { offset, .. }
            | Self::InvalidPattern { offset, .. }
            | Self::TooDeep { offset, .. } => *offset,
        }
    }

    /// BuildKit's complete message for this error in `word`:
    /// `failed to process "<word>": <message>`, the word quoted as Go's `%q` quotes it.
    pub fn buildkit_message(&self, word: &str) -> String {
        format!("failed to process {}: {self}", go_quote(word))
    }
}

/// Quotes `s` as Go's `strconv.Quote` does (what `%q` prints for a string).
pub(super) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' | '\\' => {
                out.push('\\');
                out.push(ch);
            }
            _ if is_print(ch) => out.push(ch),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            _ if ch < ' ' || ch == '\u{7f}' => out.push_str(&format!("\\x{:02x}", u32::from(ch))),
            _ if u32::from(ch) < 0x10000 => out.push_str(&format!("\\u{:04x}", u32::from(ch))),
            _ => out.push_str(&format!("\\U{:08x}", u32::from(ch))),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_buildkit() {
        let cases = [
            (
                ShellError::MissingBrace { offset: 0 },
                "syntax error: missing '}'",
            ),
            (
                ShellError::MissingSlash { offset: 0 },
                "syntax error: missing '/' in ${}",
            ),
            (
                ShellError::BadSubstitution { offset: 2 },
                "syntax error: bad substitution",
            ),
            (
                ShellError::UnsupportedModifier {
                    modifier: ":#".into(),
                    offset: 5,
                },
                "unsupported modifier (:#) in substitution",
            ),
            (
                ShellError::Unset {
                    name: "V".into(),
                    message: "is not allowed to be unset".into(),
                    offset: 0,
                },
                "V: is not allowed to be unset",
            ),
            (
                ShellError::Unterminated {
                    expected: '}',
                    offset: 3,
                },
                "unexpected end of statement while looking for matching }",
            ),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), text);
        }
        assert_eq!(ShellError::BadSubstitution { offset: 2 }.offset(), 2);
    }

    #[test]
    fn buildkit_message_quotes_like_go() {
        let err = ShellError::UnterminatedDoubleQuote { offset: 0 };
        assert_eq!(
            err.buildkit_message("\"a\tb\\한\u{a0}\u{1}\u{7f}\u{feff}\u{1f600}"),
            "failed to process \"\\\"a\\tb\\\\한\\u00a0\\x01\\x7f\\ufeff\u{1f600}\": \
             unexpected end of statement while looking for matching double-quote"
        );
        assert_eq!(go_quote("\u{e0001}"), "\"\\U000e0001\"");
    }
}
