//! BuildKit's `Node.Dump()` format: one `(keyword ["flags"] "arg"…)` line per instruction,
//! strings quoted exactly as Go's `strconv.Quote` does.

use std::fmt::Write as _;

use super::node::Node;

/// Dumps all instructions, one per line, each line ending in `\n` (the `result` file format).
pub fn dump(nodes: &[Node]) -> String {
    let mut out = String::new();
    for n in nodes {
        out.push('(');
        out.push_str(&dump_node(n));
        out.push_str(")\n");
    }
    out
}

/// Dumps one instruction without the surrounding parentheses.
pub fn dump_node(node: &Node) -> String {
    let mut s = node.value.to_lowercase();
    if !node.flags.is_empty() {
        let quoted: Vec<String> = node.flags.iter().map(|f| go_quote(f)).collect();
        let _ = write!(s, " [{}]", quoted.join(" "));
    }
    for a in &node.args {
        s.push(' ');
        s.push_str(&go_quote(a));
    }
    if let Some(sub) = &node.sub {
        let _ = write!(s, " ({})", dump_node(sub));
    }
    s.trim().to_owned()
}

/// Quotes `s` exactly like Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0b}' => out.push_str("\\v"),
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and ASCII space.
/// Without Unicode category tables this excludes what is knowably not printable — controls,
/// separators other than ' ', the common format characters, private use and noncharacters;
/// unassigned code points are treated as printable, where Go would escape them.
fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    let format = matches!(u,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x890..=0x891 | 0x8E2 | 0x180E
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF
        | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F);
    let private_or_non = matches!(u,
        0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD | 0xFDD0..=0xFDEF)
        || (u & 0xFFFE) == 0xFFFE;
    !format && !private_or_non
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_matches_go() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("\0\t\n"), r#""\x00\t\n""#);
        assert_eq!(go_quote("♥"), "\"♥\"");
        assert_eq!(go_quote("\u{7f}"), r#""\x7f""#);
        assert_eq!(go_quote("\u{ad}"), r#""\u00ad""#);
        assert_eq!(go_quote("\u{a0}"), r#""\u00a0""#);
        assert_eq!(go_quote("\u{e0001}"), r#""\U000e0001""#);
        assert_eq!(go_quote("\u{85}"), r#""\u0085""#);
    }
}
