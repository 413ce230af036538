//! The few Go `strconv` parsers whose exact acceptance BuildKit's flag values depend on:
//! Rust's own parsers accept a leading `+` and other spellings Go rejects, and vice versa.

use crate::parser::go_quote;

/// Go's `strconv.ParseBool`: `1 t T TRUE true True` and `0 f F FALSE false False`.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseUint(s, radix, bits)` for radix 8 or 10: digits only, no sign, no
/// prefix, no underscores. The error is Go's message.
pub(crate) fn parse_uint(s: &str, radix: u32, bits: u32) -> Result<u64, String> {
    let syntax = || format!("strconv.ParseUint: parsing {}: invalid syntax", go_quote(s));
    if s.is_empty() || !s.chars().all(|c| c.is_digit(radix)) {
        return Err(syntax());
    }
    let max = if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    match u64::from_str_radix(s, radix) {
        Ok(v) if v <= max => Ok(v),
        _ => Err(format!(
            "strconv.ParseUint: parsing {}: value out of range",
            go_quote(s)
        )),
    }
}

/// Go's `strconv.ParseInt(s, 10, bits)`: an optional sign, then decimal digits.
pub(crate) fn parse_int(s: &str, bits: u32) -> Result<i64, String> {
    let syntax = || format!("strconv.ParseInt: parsing {}: invalid syntax", go_quote(s));
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(syntax());
    }
    let limit = 1i128 << (bits.min(64) - 1);
    let range = || {
        format!(
            "strconv.ParseInt: parsing {}: value out of range",
            go_quote(s)
        )
    };
    let v: i128 = s.parse().map_err(|_| range())?;
    if v < -limit || v >= limit {
        return Err(range());
    }
    i64::try_from(v).map_err(|_| range())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_bool_spellings() {
        assert_eq!(parse_bool("True"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("yes"), None);
        assert_eq!(parse_bool("tRue"), None);
    }

    #[test]
    fn uint_is_strict() {
        assert_eq!(parse_uint("0755", 8, 32), Ok(0o755));
        assert!(parse_uint("+1", 10, 32).is_err());
        assert!(parse_uint("8", 8, 32).is_err());
        assert_eq!(
            parse_uint("4294967296", 10, 32).unwrap_err(),
            "strconv.ParseUint: parsing \"4294967296\": value out of range"
        );
    }

    #[test]
    fn int_accepts_sign() {
        assert_eq!(parse_int("-3", 32), Ok(-3));
        assert_eq!(parse_int("+3", 32), Ok(3));
        assert_eq!(
            parse_int("x", 32).unwrap_err(),
            "strconv.ParseInt: parsing \"x\": invalid syntax"
        );
        assert!(parse_int("2147483648", 32).is_err());
    }
}
