//! Why Go's `regexp` would refuse an expression: its `syntax.Error`, a code and the text it
//! names, worded as Go words it.

/// Go's `syntax.ErrorCode`s that the translation can meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorCode {
    /// `a**`.
    InvalidNestedRepeat,
    /// `*` with nothing before it.
    MissingRepeatArgument,
    /// `{1001}`, `{2,1}`.
    InvalidRepeatSize,
    /// A `\` that ends the expression.
    TrailingBackslash,
    /// `\C`, `\q`, a backreference.
    InvalidEscape,
    /// A class that never ends.
    MissingBracket,
    /// `[z-a]`, an unknown POSIX class or Unicode property.
    InvalidCharRange,
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ErrorCode::InvalidNestedRepeat => "invalid nested repetition operator",
            ErrorCode::MissingRepeatArgument => "missing argument to repetition operator",
            ErrorCode::InvalidRepeatSize => "invalid repeat count",
            ErrorCode::TrailingBackslash => "trailing backslash at end of expression",
            ErrorCode::InvalidEscape => "invalid escape sequence",
            ErrorCode::MissingBracket => "missing closing ]",
            ErrorCode::InvalidCharRange => "invalid character class range",
        })
    }
}

/// A refusal: the code, and the part of the expression it is about (empty when Go names
/// none).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) struct GoSyntaxError {
    /// What is wrong.
    pub(crate) code: ErrorCode,
    /// Where: the offending text.
    pub(crate) expr: String,
}

impl std::fmt::Display for GoSyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.expr.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{}: `{}`", self.code, self.expr)
        }
    }
}

impl GoSyntaxError {
    /// `code` about `expr` (as it appears in the expression; without backquotes).
    pub(crate) fn new(code: ErrorCode, expr: impl Into<String>) -> Self {
        GoSyntaxError {
            code,
            expr: expr.into(),
        }
    }

    /// `code` about nothing in particular.
    pub(crate) fn bare(code: ErrorCode) -> Self {
        Self::new(code, "")
    }
}
