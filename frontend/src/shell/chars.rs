//! Go's `unicode` character classes, which decide where a variable name ends, what separates
//! fields and what `%q` quoting escapes.
//!
//! BuildKit classifies characters with Go's tables, and Rust's `char` methods draw the lines
//! elsewhere (`char::is_alphabetic` is the wider Alphabetic property, `char::is_numeric` all of
//! `N`), so the general categories are asked of `regex`'s Unicode tables instead.

use std::sync::LazyLock;

use regex::Regex;

/// Go's `unicode.IsLetter`: general category `L`.
static LETTER: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"\A\p{L}\z").ok());
/// Go's `unicode.IsDigit`: general category `Nd`.
static DIGIT: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"\A\p{Nd}\z").ok());
/// Go's `unicode.IsPrint` outside ASCII: categories `L`, `M`, `N`, `P` and `S`.
static PRINT: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"\A[\p{L}\p{M}\p{N}\p{P}\p{S}]\z").ok());

fn in_class(class: &LazyLock<Option<Regex>>, ch: char) -> bool {
    let mut buf = [0u8; 4];
    class
        .as_ref()
        .is_some_and(|re| re.is_match(ch.encode_utf8(&mut buf)))
}

/// Go's `unicode.IsLetter`.
pub(super) fn is_letter(ch: char) -> bool {
    if ch.is_ascii() {
        ch.is_ascii_alphabetic()
    } else {
        in_class(&LETTER, ch)
    }
}

/// Go's `unicode.IsDigit`.
pub(super) fn is_digit(ch: char) -> bool {
    if ch.is_ascii() {
        ch.is_ascii_digit()
    } else {
        in_class(&DIGIT, ch)
    }
}

/// Go's `unicode.IsSpace`. Both Go and Rust use the Unicode `White_Space` property (Go lists
/// the same Latin-1 members by hand), so the std method is exact.
pub(super) fn is_space(ch: char) -> bool {
    ch.is_whitespace()
}

/// Go's `unicode.IsPrint`, which decides what `strconv.Quote` leaves unescaped.
pub(super) fn is_print(ch: char) -> bool {
    if ch.is_ascii() {
        (' '..='~').contains(&ch)
    } else {
        in_class(&PRINT, ch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_follow_category_l_not_alphabetic() {
        assert!(is_letter('a') && is_letter('Z') && is_letter('한') && is_letter('µ'));
        assert!(!is_letter('_') && !is_letter('1'));
        // U+2160 ROMAN NUMERAL ONE is Alphabetic (Nl) but not a letter for Go.
        assert!('\u{2160}'.is_alphabetic() && !is_letter('\u{2160}'));
    }

    #[test]
    fn digits_follow_category_nd_not_numeric() {
        assert!(is_digit('0') && is_digit('٣'));
        // U+00B2 SUPERSCRIPT TWO is No: numeric for Rust, not a digit for Go.
        assert!('²'.is_numeric() && !is_digit('²'));
    }

    #[test]
    fn space_and_print() {
        assert!(is_space(' ') && is_space('\u{85}') && is_space('\u{a0}') && is_space('\u{3000}'));
        assert!(!is_space('\u{200b}'));
        assert!(is_print(' ') && is_print('한') && is_print('€'));
        assert!(!is_print('\u{a0}') && !is_print('\u{feff}') && !is_print('\n'));
    }
}
