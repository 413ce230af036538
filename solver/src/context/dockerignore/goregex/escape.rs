//! Go's one-character escapes: `\n`, `\x41`, `\x{263a}`, `\101`, and escaped punctuation.

use super::MAX_RUNE;
use super::error::{ErrorCode, GoSyntaxError};

/// A one-character escape (Go's `parseEscape`); `text` starts with its `\`.
pub(super) fn single_escape(text: &str) -> Result<(u32, &str), GoSyntaxError> {
    let after = &text[1..];
    let mut chars = after.chars();
    let Some(c) = chars.next() else {
        return Err(GoSyntaxError::bare(ErrorCode::TrailingBackslash));
    };
    let tail = chars.as_str();
    let invalid = || GoSyntaxError::new(ErrorCode::InvalidEscape, format!("\\{c}"));
    let code = match c {
        // `\1`..`\7` alone would be a backreference, which RE2 refuses.
        '1'..='7' if !tail.starts_with(is_octal) => return Err(invalid()),
        '0'..='7' => return Ok(octal(c, tail)),
        'x' => {
            return hex(tail).ok_or_else(|| GoSyntaxError::new(ErrorCode::InvalidEscape, r"\x"));
        }
        'a' => 0x07,
        'f' => 0x0C,
        'n' => 0x0A,
        'r' => 0x0D,
        't' => 0x09,
        'v' => 0x0B,
        c if c.is_ascii() && !c.is_ascii_alphanumeric() => u32::from(c),
        _ => return Err(invalid()),
    };
    Ok((code, tail))
}

fn is_octal(c: char) -> bool {
    matches!(c, '0'..='7')
}

/// Up to three octal digits, the first already read.
fn octal(first: char, mut tail: &str) -> (u32, &str) {
    let mut code = u32::from(first) - u32::from('0');
    for _ in 1..3 {
        let Some(digit) = tail.chars().next().filter(|&c| is_octal(c)) else {
            break;
        };
        code = code * 8 + (u32::from(digit) - u32::from('0'));
        tail = &tail[1..];
    }
    (code, tail)
}

/// `\xHH` or `\x{H...}`, after the `x`.
fn hex(tail: &str) -> Option<(u32, &str)> {
    if let Some(braced) = tail.strip_prefix('{') {
        let end = braced.find('}')?;
        let digits = &braced[..end];
        if digits.is_empty() {
            return None;
        }
        let mut code: u32 = 0;
        for c in digits.chars() {
            code = code * 16 + c.to_digit(16)?;
            if code > MAX_RUNE {
                return None;
            }
        }
        return Some((code, &braced[end + 1..]));
    }
    let mut chars = tail.chars();
    let high = chars.next()?.to_digit(16)?;
    let low = chars.next()?.to_digit(16)?;
    Some((high * 16 + low, chars.as_str()))
}
