//! Gives a Rust `regex` the meaning Go's `regexp` gives to the expressions Docker generates.
//!
//! Docker splices the user's pattern into a Go regular expression, so Go's RE2 syntax leaks
//! through: `\d` is a digit class, `[[:alpha:]]` a POSIX class, `\Q..\E` quotes, and `[*]`
//! becomes `[[^/]*]`, which Go reads as the class `[[^/]`, a star, and a literal `]`. Rust's
//! syntax differs exactly there (nested classes, `&&`/`--`/`~~` operators, Unicode-aware
//! `\d`/`\w`/`\b`, no `\Q`), so the text is parsed with Go's rules and written out in a form
//! Rust cannot misread: literals as `\x{..}`, classes as explicit code-point ranges.
//!
//! Only what the pattern compiler can emit is covered. Groups, `.`, `*` and `?` come from the
//! compiler itself and mean the same in both dialects; the user's `( ) . + $` arrive escaped,
//! but `|`, `{` and `}` arrive raw (see `pattern.rs`), so alternation and repeat counts follow
//! Go's rules, including its refusals that Rust would let through (`a*{2}`, counts over 1000).
//! Unicode property names (`\p{Greek}`) are left to Rust to resolve.

mod class;
mod error;
mod escape;

use class::{class, perl_class, property, push_class};
pub(crate) use error::{ErrorCode, GoSyntaxError};
use escape::single_escape;

/// Go's `syntax.MaxRune`.
const MAX_RUNE: u32 = 0x10_FFFF;
/// Go's largest repeat count.
const MAX_REPEAT: u64 = 1000;
/// Matches no character at all (Rust refuses an empty `[]`).
const NOTHING: &str = r"[^\x{0}-\x{10FFFF}]";

/// Translates Go regexp text into Rust regex text with the same meaning, or says why Go
/// would refuse to compile it.
pub(crate) fn to_rust(go: &str) -> Result<String, GoSyntaxError> {
    let mut out = String::with_capacity(go.len() * 2);
    let mut rest = go;
    // Go refuses a repeat right after another (`a**`) or with nothing to repeat (`(*`, `|*`).
    // Where the repeat just before began, for Go's message (`a**` names `**`).
    let mut after_repeat: Option<usize> = None;
    let mut has_operand = false;
    while let Some(c) = rest.chars().next() {
        let start = go.len() - rest.len();
        let mut repeat = None;
        let mut operand = true;
        rest = match c {
            '\\' => {
                let before = out.len();
                let tail = escape(rest, &mut out)?;
                // An empty `\Q\E` leaves the stack as it was.
                operand = out.len() > before || has_operand;
                tail
            }
            '[' => {
                let (negated, items, after) = class(rest)?;
                push_class(&mut out, negated, &items);
                after
            }
            '(' | '|' => {
                out.push(c);
                operand = false;
                &rest[1..]
            }
            '^' | '$' | '.' | ')' => {
                out.push(c);
                &rest[1..]
            }
            '*' | '+' | '?' => {
                repeat = Some(c.to_string());
                &rest[1..]
            }
            '{' => match repeat_count(rest)? {
                Some((count, tail)) => {
                    repeat = Some(count);
                    tail
                }
                // Not a count: Go takes the `{` literally.
                None => {
                    push_literal(&mut out, u32::from(c));
                    &rest[1..]
                }
            },
            _ => {
                push_literal(&mut out, u32::from(c));
                &rest[c.len_utf8()..]
            }
        };
        match repeat {
            Some(op) => {
                let written = &go[start..go.len() - rest.len()];
                if let Some(previous) = after_repeat {
                    let both = &go[previous..go.len() - rest.len()];
                    return Err(GoSyntaxError::new(ErrorCode::InvalidNestedRepeat, both));
                }
                if !has_operand {
                    return Err(GoSyntaxError::new(
                        ErrorCode::MissingRepeatArgument,
                        written,
                    ));
                }
                out.push_str(&op);
                // A `?` right after a repeat makes it lazy rather than repeating it again.
                if let Some(tail) = rest.strip_prefix('?') {
                    out.push('?');
                    rest = tail;
                }
                after_repeat = Some(start);
            }
            None => {
                after_repeat = None;
                has_operand = operand;
            }
        }
    }
    Ok(out)
}

/// A repeat count `{n}`, `{n,}` or `{n,m}` at the start of `text`, as Rust text; `None` when
/// `text` holds no count (Go then reads the `{` as a literal).
fn repeat_count(text: &str) -> Result<Option<(String, &str)>, GoSyntaxError> {
    let Some((min, tail)) = text.strip_prefix('{').and_then(decimal) else {
        return Ok(None);
    };
    let (max, tail) = match tail.strip_prefix(',') {
        None => (Some(min), tail),
        Some(tail) if tail.starts_with('}') => (None, tail),
        Some(tail) => match decimal(tail) {
            Some((max, tail)) => (Some(max), tail),
            None => return Ok(None),
        },
    };
    let Some(tail) = tail.strip_prefix('}') else {
        return Ok(None);
    };
    let written = &text[..text.len() - tail.len()];
    if min > MAX_REPEAT || max.is_some_and(|max| max > MAX_REPEAT || max < min) {
        return Err(GoSyntaxError::new(ErrorCode::InvalidRepeatSize, written));
    }
    let count = match max {
        Some(max) if max == min => format!("{{{min}}}"),
        Some(max) => format!("{{{min},{max}}}"),
        None => format!("{{{min},}}"),
    };
    Ok(Some((count, tail)))
}

/// A decimal number without leading zeros, as Go's `parseInt`; huge values saturate.
fn decimal(text: &str) -> Option<(u64, &str)> {
    let digits = text.len() - text.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (number, tail) = text.split_at(digits);
    if number.is_empty() || (number.len() > 1 && number.starts_with('0')) {
        return None;
    }
    let value = number.bytes().fold(0u64, |acc, d| {
        acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    });
    Some((value, tail))
}

/// An escape outside a class; `text` starts with its `\`. Returns what follows it.
fn escape<'a>(text: &'a str, out: &mut String) -> Result<&'a str, GoSyntaxError> {
    let after = &text[1..];
    match after.chars().next() {
        None => return Err(GoSyntaxError::bare(ErrorCode::TrailingBackslash)),
        Some('A') => out.push_str(r"\A"),
        // Go's word boundaries are ASCII-only.
        Some('b') => out.push_str(r"(?-u:\b)"),
        Some('B') => out.push_str(r"(?-u:\B)"),
        Some('z') => out.push_str(r"\z"),
        Some('C') => return Err(GoSyntaxError::new(ErrorCode::InvalidEscape, r"\C")),
        Some('Q') => {
            // Everything up to `\E` (or the end, `$` included) is literal.
            let quoted = &after[1..];
            let (literal, tail) = quoted.split_once(r"\E").unwrap_or((quoted, ""));
            for c in literal.chars() {
                push_literal(out, u32::from(c));
            }
            return Ok(tail);
        }
        Some('p' | 'P') => {
            let (item, tail) = property(text)?;
            push_class(out, false, &[item]);
            return Ok(tail);
        }
        Some(_) => {
            if let Some((item, tail)) = perl_class(text) {
                push_class(out, false, &[item]);
                return Ok(tail);
            }
            let (code, tail) = single_escape(text)?;
            push_literal(out, code);
            return Ok(tail);
        }
    }
    Ok(&after[1..])
}

/// Appends a literal code point. Go can name a surrogate, which no `&str` contains.
fn push_literal(out: &mut String, code: u32) {
    match char::from_u32(code) {
        Some(c) if c.is_ascii_alphanumeric() || c == '/' || c == '_' => out.push(c),
        Some(_) => out.push_str(&format!("\\x{{{code:X}}}")),
        None => out.push_str(NOTHING),
    }
}

#[cfg(test)]
mod tests {
    use super::to_rust;

    /// Whether Go's reading of `go` matches `text`, through the Rust translation.
    fn go_matches(go: &str, text: &str) -> bool {
        let rust = to_rust(go).unwrap();
        regex::Regex::new(&rust).unwrap().is_match(text)
    }

    #[test]
    fn generated_shapes() {
        assert!(go_matches(r"^(.*/)?dir2/[^/]*$", "a/b/dir2/file"));
        assert!(!go_matches(r"^(.*/)?dir2/[^/]*$", "a/dir2/x/y"));
        assert!(go_matches(r"^\.[^/]*$", ".foo"));
        assert!(!go_matches(r"^\.[^/]*$", "foo"));
        assert!(go_matches(r"^a\.\|\)\$\(\}\+\{bc$", "a.|)$(}+{bc"));
    }

    #[test]
    fn go_class_rules() {
        // `[*]` compiles to this: the class `[[^/]`, a star, then a literal `]`.
        let star_class = r"^[[^/]*]$";
        assert!(go_matches(star_class, "]"));
        assert!(go_matches(star_class, "[^/]"));
        assert!(!go_matches(star_class, "*"));
        // `-` and `&&` are not operators in Go.
        assert!(go_matches(r"^[a&&b]$", "&"));
        assert!(go_matches(r"^[a-]$", "-"));
        assert!(go_matches(r"^[]a]$", "]"));
        assert!(go_matches(r"^[^a]$", "\n"));
        assert!(go_matches(r"^[[:alpha:]]$", "q"));
        assert!(go_matches(r"^[[:^alpha:]]$", "é"));
        assert!(go_matches(r"^[\d]$", "7"));
        assert!(!go_matches(r"^\d$", "٣"), "Go's \\d is ASCII");
        assert!(!go_matches(r"^\w$", "é"), "Go's \\w is ASCII");
        assert!(go_matches(r"^\s$", "\t"));
        assert!(!go_matches(r"^\s$", "\u{b}"), "Go's \\s has no \\v");
        assert!(go_matches(r"^\pL$", "é"));
        assert!(go_matches(r"^\p{^L}$", "1"));
        assert!(go_matches(r"^[\P{L}]$", "1"));
    }

    #[test]
    fn go_escapes() {
        assert!(go_matches(r"^\x41$", "A"));
        assert!(go_matches(r"^\x{263a}$", "☺"));
        assert!(go_matches(r"^\101$", "A"));
        assert!(go_matches(r"^\0$", "\0"));
        assert!(go_matches(r"^\Qa.b\E$", "a.b"));
        assert!(!go_matches(r"^\Qa.b\E$", "axb"));
        assert!(
            go_matches(r"^\Qab$", "ab$"),
            "\\Q without \\E swallows the anchor"
        );
        assert!(go_matches(r"^a\b", "a b"));
        assert!(!go_matches(r"^a\b", "ab"));
        assert!(!go_matches(r"^\x{D800}$", ""));
        assert!(go_matches(r"^[\x{D000}-\x{E000}]$", "\u{E000}"));
    }

    #[test]
    fn go_alternation_and_counts() {
        assert!(go_matches(r"^a|b$", "axx"));
        assert!(go_matches(r"^a|b$", "xxb"));
        assert!(go_matches(r"^a{2}$", "aa"));
        assert!(!go_matches(r"^a{2}$", "a"));
        assert!(go_matches(r"^a{2,}$", "aaaa"));
        assert!(go_matches(r"^a{1,2}$", "aa"));
        assert!(go_matches(r"^a{,2}$", "a{,2}"), "not a count");
        assert!(go_matches(r"^a{02}$", "a{02}"), "leading zero: not a count");
        assert!(go_matches(r"^a{2$", "a{2"));
        assert!(go_matches(r"^{2}a$", "a"), "Go repeats the anchor");
        assert!(
            go_matches(r"^a\Q\E*$", "aaa"),
            "an empty quote keeps the operand"
        );
    }

    #[test]
    fn go_refusals() {
        for go in [
            r"^\q$",
            r"^\C$",
            r"^\1$",
            r"^[Local-Only]$",
            r"^[a$",
            r"^[[:foo:]]$",
            r"^\p{}$",
            r"^\p$",
            r"^\x{}$",
            r"^\x{110000}$",
            r"^\xZZ$",
            r"^[\q]$",
            r"^\é$",
            r"^\p{sc=Greek}$",
            r"^a**$",
            r"^a*{2}$",
            r"^(.*/)?{2}$",
            r"^a|{2}$",
            r"^(*a)$",
            r"^a{1001}$",
            r"^a{3,2}$",
            r"^a{99999999999999999999}$",
            r"^a{2}{3}$",
        ] {
            assert!(to_rust(go).is_err(), "{go}");
        }
    }
    #[test]
    fn refusals_are_worded_as_go_words_them() {
        use super::ErrorCode;
        for (go, code, said) in [
            (
                "^[z-a]$",
                ErrorCode::InvalidCharRange,
                "invalid character class range: `z-a`",
            ),
            (
                "^a**$",
                ErrorCode::InvalidNestedRepeat,
                "invalid nested repetition operator: `**`",
            ),
            (
                "^a*{2}$",
                ErrorCode::InvalidNestedRepeat,
                "invalid nested repetition operator: `*{2}`",
            ),
            (
                "^(*a)$",
                ErrorCode::MissingRepeatArgument,
                "missing argument to repetition operator: `*`",
            ),
            (
                "^a{1001}$",
                ErrorCode::InvalidRepeatSize,
                "invalid repeat count: `{1001}`",
            ),
            (
                r"^\C$",
                ErrorCode::InvalidEscape,
                r"invalid escape sequence: `\C`",
            ),
            ("^[a", ErrorCode::MissingBracket, "missing closing ]"),
            (
                "a\\",
                ErrorCode::TrailingBackslash,
                "trailing backslash at end of expression",
            ),
        ] {
            let e = to_rust(go).unwrap_err();
            assert_eq!((e.code, e.to_string().as_str()), (code, said), "{go}");
        }
    }
}
