//! The glob patterns of `${V#p}`, `${V%p}` and `${V/p/r}`, matched the way BuildKit does:
//! translated to a regular expression (Go's and `regex`'s leftmost-first semantics agree).
//!
//! A pattern knows `*` (any run of characters), `?` (one character) and `\` escapes of `*`,
//! `?` and `\`; everything else, regex metacharacters included, is literal. There are no
//! bracket expressions. `\` is the pattern's own escape whatever the Dockerfile escape token.

use regex::{Match, Regex};

use super::scanner::skip_bom;

/// Translates a glob into a regex; `greedy` picks `.*` over `.*?` for `*`, `anchored` pins
/// the match to the start. The error is BuildKit's reason text.
fn to_regex(pattern: &str, greedy: bool, anchored: bool) -> Result<Regex, String> {
    let mut out = String::with_capacity(pattern.len() + 4);
    if anchored {
        out.push('^');
    }
    // BuildKit reads the pattern with a fresh Go scanner, which drops a leading BOM.
    let mut chars = skip_bom(pattern).chars().peekable();
    while let Some(tok) = chars.next() {
        match tok {
            '*' => out.push_str(if greedy { ".*" } else { ".*?" }),
            '?' => out.push('.'),
            '\\' => {
                // `\}` and `\/` escape the delimiters of `${…}`, not the pattern.
                if matches!(chars.peek(), Some('}' | '/')) {
                    continue;
                }
                match chars.next() {
                    Some(esc @ ('*' | '?' | '\\')) => {
                        out.push('\\');
                        out.push(esc);
                    }
                    // Go's `%c` prints the end of input (-1) as U+FFFD.
                    other => {
                        return Err(format!(
                            "invalid escape '\\{}'",
                            other.unwrap_or('\u{fffd}')
                        ));
                    }
                }
            }
            literal => {
                let mut buf = [0u8; 4];
                out.push_str(&regex::escape(literal.encode_utf8(&mut buf)));
            }
        }
    }
    Regex::new(&out).map_err(|e| e.to_string())
}

/// `${V#p}` / `${V##p}`: `value` without the shortest (or longest) prefix matching `pattern`.
pub(super) fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let re = to_regex(pattern, greedy, true)?;
    let rest = re
        .find(value)
        .and_then(|m| value.get(m.end()..))
        .unwrap_or(value);
    Ok(rest.to_owned())
}

/// `${V%p}` / `${V%%p}`: `value` without the shortest (or longest) matching suffix.
///
/// A regex cannot find the shortest rightmost match, so, like BuildKit, this reverses the
/// value and the pattern (keeping escape pairs in order) and trims a prefix instead. On error
/// the reversed pattern is what gets reported, as in BuildKit.
pub(super) fn trim_suffix(
    pattern: &str,
    value: &str,
    greedy: bool,
) -> Result<String, (String, String)> {
    let reversed_pattern = reverse_pattern(pattern);
    let reversed_value: String = value.chars().rev().collect();
    trim_prefix(&reversed_pattern, &reversed_value, greedy)
        .map(|rest| rest.chars().rev().collect())
        .map_err(|reason| (reversed_pattern, reason))
}

/// Reverses a pattern but keeps each `\x` escape pair in order: `a\*c` → `c\*a`.
fn reverse_pattern(pattern: &str) -> String {
    let mut tokens: Vec<(char, Option<char>)> = Vec::new();
    let mut chars = pattern.chars();
    while let Some(ch) = chars.next() {
        if ch == '\\' {
            // A trailing lone `\` stays a token of its own.
            tokens.push((ch, chars.next()));
        } else {
            tokens.push((ch, None));
        }
    }
    let mut out = String::with_capacity(pattern.len());
    for (first, second) in tokens.into_iter().rev() {
        out.push(first);
        out.extend(second);
    }
    out
}

/// `${V/p/r}` (first match) and `${V//p/r}` (every match): `*` is greedy, nothing anchored.
pub(super) fn replace(
    pattern: &str,
    value: &str,
    replacement: &str,
    all: bool,
) -> Result<String, String> {
    let re = to_regex(pattern, true, false)?;
    if all {
        return Ok(replace_all(&re, value, replacement));
    }
    Ok(match re.find(value) {
        Some(m) => {
            // BuildKit splices the first match by hand: no `$` template expansion here.
            let mut out = String::with_capacity(value.len() + replacement.len());
            out.push_str(value.get(..m.start()).unwrap_or_default());
            out.push_str(replacement);
            out.push_str(value.get(m.end()..).unwrap_or_default());
            out
        }
        None => value.to_owned(),
    })
}

/// Go's `Regexp.ReplaceAllString`: its walk over matches (an empty match right after a match
/// is skipped) and its `$` template in the replacement.
fn replace_all(re: &Regex, value: &str, template: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut last_end = 0;
    let mut search = 0;
    while search <= value.len() {
        let Some(m) = re.find_at(value, search) else {
            break;
        };
        out.push_str(value.get(last_end..m.start()).unwrap_or_default());
        if m.end() > last_end || m.start() == 0 {
            expand_template(&mut out, template, &m);
        }
        last_end = m.end();
        let width = value
            .get(search..)
            .and_then(|rest| rest.chars().next())
            .map_or(0, char::len_utf8);
        search = if search + width > m.end() {
            search + width
        } else if search + 1 > m.end() {
            search + 1
        } else {
            m.end()
        };
    }
    out.push_str(value.get(last_end..).unwrap_or_default());
    out
}

/// Go's `Regexp.Expand` for a regex without groups: `$$` is `$`, `$0`/`${0}` the match, any
/// other well-formed `$name`/`${name}` nothing, and a malformed one a literal `$`.
fn expand_template(out: &mut String, template: &str, m: &Match<'_>) {
    let mut rest = template;
    while let Some((before, after)) = rest.split_once('$') {
        out.push_str(before);
        rest = after;
        if let Some(after_dollar) = rest.strip_prefix('$') {
            out.push('$');
            rest = after_dollar;
            continue;
        }
        match template_name(rest) {
            Some((name, after_name)) => {
                rest = after_name;
                if name == "0" {
                    out.push_str(m.as_str());
                }
            }
            None => out.push('$'),
        }
    }
    out.push_str(rest);
}

/// Splits a template reference (`name` or `{name}`) off `s`: the name and what follows.
fn template_name(s: &str) -> Option<(&str, &str)> {
    let (body, braced) = match s.strip_prefix('{') {
        Some(body) => (body, true),
        None => (s, false),
    };
    let len: usize = body
        .chars()
        .take_while(|&c| super::chars::is_letter(c) || super::chars::is_digit(c) || c == '_')
        .map(char::len_utf8)
        .sum();
    let name = body.get(..len).filter(|n| !n.is_empty())?;
    let after = body.get(len..)?;
    if braced {
        Some((name, after.strip_prefix('}')?))
    } else {
        Some((name, after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_like_buildkit() {
        let re = |p: &str| to_regex(p, true, true).map(|r| r.as_str().to_owned());
        assert_eq!(re("*").as_deref(), Ok("^.*"));
        assert_eq!(re("?").as_deref(), Ok("^."));
        assert_eq!(re("\\*").as_deref(), Ok("^\\*"));
        assert_eq!(
            to_regex("*", false, false).map(|r| r.as_str().to_owned()),
            Ok(".*?".to_owned())
        );
        for bad in ["\\", "\\x", "\\\\\\"] {
            assert!(to_regex(bad, true, true).is_err(), "{bad}");
        }
        assert_eq!(
            to_regex("\\x", true, true).err().as_deref(),
            Some("invalid escape '\\x'")
        );
        assert_eq!(
            to_regex("\\", true, true).err().as_deref(),
            Some("invalid escape '\\\u{fffd}'")
        );
    }

    #[test]
    fn metacharacters_are_literal() {
        let value = "()[]{}^$.*?|\\x";
        assert_eq!(
            trim_prefix("()[]{\\}^$.\\*\\?|\\\\", value, false).as_deref(),
            Ok("x")
        );
        assert_eq!(trim_prefix("a.c", "abcd", false).as_deref(), Ok("abcd"));
        assert_eq!(trim_prefix("#&-~ ", "#&-~ z", false).as_deref(), Ok("z"));
    }

    #[test]
    fn reverses_patterns_keeping_escapes() {
        assert_eq!(reverse_pattern("a\\*c"), "c\\*a");
        assert_eq!(reverse_pattern("\\\\\\ab"), "b\\a\\\\");
        assert_eq!(reverse_pattern("ab\\"), "\\ba");
        assert_eq!(reverse_pattern("👽\\🚀🖖"), "🖖\\🚀👽");
        assert_eq!(reverse_pattern("\\\\b"), "b\\\\");
    }

    #[test]
    fn prefix_and_suffix_trimming() {
        assert_eq!(trim_prefix("*x", "xxyy", false).as_deref(), Ok("xyy"));
        assert_eq!(trim_prefix("*x", "xxyy", true).as_deref(), Ok("yy"));
        assert_eq!(trim_prefix("*", "xxyy", false).as_deref(), Ok("xxyy"));
        assert_eq!(trim_suffix("y*", "xxyy", false).as_deref(), Ok("xxy"));
        assert_eq!(trim_suffix("y*", "xxyy", true).as_deref(), Ok("xx"));
        assert_eq!(trim_suffix("\\**", "xx**", true).as_deref(), Ok("xx"));
        assert_eq!(
            trim_suffix("한*", "가한나한", false).as_deref(),
            Ok("가한나")
        );
        // The reversed pattern keeps `\x` in order, and is what gets reported.
        assert_eq!(
            trim_suffix("a\\x", "v", false),
            Err(("\\xa".to_owned(), "invalid escape '\\x'".to_owned()))
        );
    }

    #[test]
    fn replacement_first_and_all() {
        assert_eq!(
            replace("/tmp", "/tmp/tmp/bar.txt", "", false).as_deref(),
            Ok("/tmp/bar.txt")
        );
        assert_eq!(
            replace("/tmp", "/tmp/tmp/bar.txt", "", true).as_deref(),
            Ok("/bar.txt")
        );
        assert_eq!(replace("", "xxyy", "ww", false).as_deref(), Ok("wwxxyy"));
        assert_eq!(replace("", "ab", "-", true).as_deref(), Ok("-a-b-"));
        assert_eq!(replace("a*", "baaac", "-", true).as_deref(), Ok("b-"));
        // An empty match right after a match is skipped (`.` stops at a newline).
        assert_eq!(replace("*", "ab\ncd", "-", true).as_deref(), Ok("-\n-"));
        assert_eq!(replace("*", "", "x", true).as_deref(), Ok("x"));
        assert_eq!(replace("*", "abc", "x", true).as_deref(), Ok("x"));
        assert_eq!(replace("\\/", "/a/", "\\/", true).as_deref(), Ok("\\/a\\/"));
    }

    #[test]
    fn replace_all_expands_go_templates() {
        // Only `$0` (the match) exists; other names are empty, `$$` is `$`, junk stays.
        assert_eq!(replace("b", "abc", "[$0]", true).as_deref(), Ok("a[b]c"));
        assert_eq!(replace("b", "abc", "[${0}]", true).as_deref(), Ok("a[b]c"));
        assert_eq!(
            replace("b", "abc", "[$1$x${y}]", true).as_deref(),
            Ok("a[]c")
        );
        assert_eq!(replace("b", "abc", "[$$0]", true).as_deref(), Ok("a[$0]c"));
        assert_eq!(
            replace("b", "abc", "[$-${0]", true).as_deref(),
            Ok("a[$-${0]c")
        );
        assert_eq!(replace("b", "abc", "[$00]", true).as_deref(), Ok("a[]c"));
        // The first-match form splices the replacement literally.
        assert_eq!(replace("b", "abc", "[$0]", false).as_deref(), Ok("a[$0]c"));
    }

    #[test]
    fn leading_bom_of_a_pattern_is_dropped() {
        assert_eq!(trim_prefix("\u{feff}a", "ab", false).as_deref(), Ok("b"));
    }
}
