//! Go's bracketed and named character classes, and how to write them for Rust.
//!
//! Go reads a class with its own rules (`[` is an ordinary member, `-` at the end is literal,
//! `[:alpha:]` and `\d` are ASCII sets), so each class is parsed into code-point ranges and
//! written back as `\x{..}` ranges that Rust cannot take for nesting or set operations.

use super::error::{ErrorCode, GoSyntaxError};
use super::escape::single_escape;
use super::{MAX_RUNE, NOTHING};

/// Code-point ranges, inclusive.
pub(super) type Ranges = Vec<(u32, u32)>;

/// One member of a character class.
pub(super) enum Item {
    /// Plain characters and ranges.
    Ranges(Ranges),
    /// The complement of some ranges (`\D`, `[:^alpha:]`).
    Negated(Ranges),
    /// A Unicode property, named as the user wrote it.
    Property { name: String, negated: bool },
}

/// A bracketed class; `text` starts with its `[`. Returns (negated, members, what follows).
pub(super) fn class(text: &str) -> Result<(bool, Vec<Item>, &str), GoSyntaxError> {
    let body = &text[1..];
    let (negated, mut rest) = match body.strip_prefix('^') {
        Some(tail) => (true, tail),
        None => (false, body),
    };
    let mut items = Vec::new();
    let mut ranges = Ranges::new();
    // A `]` right after `[` or `[^` is a member, not the end.
    let mut first = true;
    while first || !rest.starts_with(']') {
        first = false;
        if let Some((item, tail)) = posix_class(rest)? {
            items.push(item);
            rest = tail;
            continue;
        }
        if rest.starts_with(r"\p") || rest.starts_with(r"\P") {
            let (item, tail) = property(rest)?;
            items.push(item);
            rest = tail;
            continue;
        }
        if let Some((item, tail)) = perl_class(rest) {
            items.push(item);
            rest = tail;
            continue;
        }
        let (lo, tail) = class_char(rest)?;
        rest = tail;
        let mut hi = lo;
        // `[a-]` is `a` or `-`: a `-` only makes a range when something other than `]` follows.
        if let Some(tail) = rest
            .strip_prefix('-')
            .filter(|t| !t.is_empty() && !t.starts_with(']'))
        {
            let (end, tail) = class_char(tail)?;
            if end < lo {
                return Err(GoSyntaxError::new(
                    ErrorCode::InvalidCharRange,
                    range_text(lo, end),
                ));
            }
            hi = end;
            rest = tail;
        }
        ranges.push((lo, hi));
    }
    items.push(Item::Ranges(ranges));
    Ok((negated, items, &rest[1..]))
}

/// One character inside a class, escaped or not.
fn class_char(text: &str) -> Result<(u32, &str), GoSyntaxError> {
    match text.chars().next() {
        None => Err(GoSyntaxError::bare(ErrorCode::MissingBracket)),
        Some('\\') => single_escape(text),
        Some(c) => Ok((u32::from(c), &text[c.len_utf8()..])),
    }
}

/// A POSIX class such as `[:alpha:]` or `[:^space:]` at the start of `text`, if there is one.
fn posix_class(text: &str) -> Result<Option<(Item, &str)>, GoSyntaxError> {
    let Some(inner) = text.strip_prefix("[:").filter(|_| text.len() > 2) else {
        return Ok(None);
    };
    // Like Go, look for the closing `:]` anywhere further on, even past the class's end.
    let Some(end) = inner.find(":]") else {
        return Ok(None);
    };
    let (name, tail) = (&inner[..end], &inner[end + 2..]);
    let (negated, name) = match name.strip_prefix('^') {
        Some(name) => (true, name),
        None => (false, name),
    };
    let ranges = posix_ranges(name)
        .ok_or_else(|| GoSyntaxError::new(ErrorCode::InvalidCharRange, format!("[:{name}:]")))?;
    let item = if negated {
        Item::Negated(ranges)
    } else {
        Item::Ranges(ranges)
    };
    Ok(Some((item, tail)))
}

/// Go's `posixGroup` table.
fn posix_ranges(name: &str) -> Option<Ranges> {
    let ranges: &[(u8, u8)] = match name {
        "alnum" => &[(b'0', b'9'), (b'A', b'Z'), (b'a', b'z')],
        "alpha" => &[(b'A', b'Z'), (b'a', b'z')],
        "ascii" => &[(0, 0x7F)],
        "blank" => &[(b'\t', b'\t'), (b' ', b' ')],
        "cntrl" => &[(0, 0x1F), (0x7F, 0x7F)],
        "digit" => &[(b'0', b'9')],
        "graph" => &[(b'!', b'~')],
        "lower" => &[(b'a', b'z')],
        "print" => &[(b' ', b'~')],
        "punct" => &[(b'!', b'/'), (b':', b'@'), (b'[', b'`'), (b'{', b'~')],
        "space" => &[(b'\t', b'\r'), (b' ', b' ')],
        "upper" => &[(b'A', b'Z')],
        "word" => &[(b'0', b'9'), (b'A', b'Z'), (b'a', b'z'), (b'_', b'_')],
        "xdigit" => &[(b'0', b'9'), (b'A', b'F'), (b'a', b'f')],
        _ => return None,
    };
    Some(
        ranges
            .iter()
            .map(|&(lo, hi)| (u32::from(lo), u32::from(hi)))
            .collect(),
    )
}

/// A Perl class (`\d \D \s \S \w \W`, ASCII-only in Go) at the start of `text`, if there is one.
pub(super) fn perl_class(text: &str) -> Option<(Item, &str)> {
    let tail = text.strip_prefix('\\')?;
    let letter = tail.chars().next()?;
    let ranges: Ranges = match letter.to_ascii_lowercase() {
        'd' => vec![(0x30, 0x39)],
        // Go's `\s` leaves out `\v`, unlike POSIX `[:space:]`.
        's' => vec![(0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)],
        'w' => vec![(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
        _ => return None,
    };
    let item = if letter.is_ascii_uppercase() {
        Item::Negated(ranges)
    } else {
        Item::Ranges(ranges)
    };
    Some((item, &tail[1..]))
}

/// A Unicode property `\pL`, `\p{Greek}`, `\P{^Greek}`; `text` starts with its `\`.
pub(super) fn property(text: &str) -> Result<(Item, &str), GoSyntaxError> {
    let mut negated = text.starts_with(r"\P");
    let after = &text[2..];
    let (name, tail) = match after.chars().next() {
        None => return Err(GoSyntaxError::new(ErrorCode::InvalidCharRange, text)),
        Some('{') => {
            let end = after
                .find('}')
                .ok_or_else(|| GoSyntaxError::new(ErrorCode::InvalidCharRange, text))?;
            (&after[1..end], &after[end + 1..])
        }
        Some(c) => after.split_at(c.len_utf8()),
    };
    let name = match name.strip_prefix('^') {
        Some(name) => {
            negated = !negated;
            name
        }
        None => name,
    };
    // Go only knows names made of these; Rust resolves the name itself (loosely, like Go).
    let plausible = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ' '));
    if !plausible {
        return Err(GoSyntaxError::new(
            ErrorCode::InvalidCharRange,
            format!("\\p{{{name}}}"),
        ));
    }
    Ok((
        Item::Property {
            name: name.to_owned(),
            negated,
        },
        tail,
    ))
}

/// How a range looks in an error message.
fn range_text(lo: u32, hi: u32) -> String {
    let show =
        |code: u32| char::from_u32(code).map_or_else(|| format!("\\x{{{code:X}}}"), String::from);
    format!("{}-{}", show(lo), show(hi))
}

/// Appends a class of `items`, in Rust syntax that cannot be read as nesting or set operations.
pub(super) fn push_class(out: &mut String, negated: bool, items: &[Item]) {
    let mut body = String::new();
    for item in items {
        match item {
            Item::Ranges(ranges) => push_ranges(&mut body, ranges),
            Item::Negated(ranges) => {
                let mut inner = String::new();
                push_ranges(&mut inner, ranges);
                if inner.is_empty() {
                    // The complement of nothing is everything.
                    body.push_str(r"\x{0}-\x{10FFFF}");
                } else {
                    body.push_str(&format!("[^{inner}]"));
                }
            }
            Item::Property { name, negated } => {
                let letter = if *negated { 'P' } else { 'p' };
                body.push_str(&format!("\\{letter}{{{name}}}"));
            }
        }
    }
    match (body.is_empty(), negated) {
        (true, false) => out.push_str(NOTHING),
        (true, true) => out.push_str(r"[\x{0}-\x{10FFFF}]"),
        (false, false) => out.push_str(&format!("[{body}]")),
        (false, true) => out.push_str(&format!("[^{body}]")),
    }
}

/// Appends ranges as `\x{..}-\x{..}`, trimming the surrogate gap no `&str` can contain.
fn push_ranges(out: &mut String, ranges: &[(u32, u32)]) {
    for &(lo, hi) in ranges {
        let lo = if (0xD800..=0xDFFF).contains(&lo) {
            0xE000
        } else {
            lo
        };
        let hi = if (0xD800..=0xDFFF).contains(&hi) {
            0xD7FF
        } else {
            hi.min(MAX_RUNE)
        };
        if lo > hi {
            continue;
        }
        if lo == hi {
            out.push_str(&format!("\\x{{{lo:X}}}"));
        } else {
            out.push_str(&format!("\\x{{{lo:X}}}-\\x{{{hi:X}}}"));
        }
    }
}
