//! One cleaned pattern: the test Docker picks for it and how a path is run through that test.
//!
//! Docker scans the pattern once and picks the cheapest exact test: string equality, a prefix
//! (`dir/**`), a suffix (`**/name`, `**name`) or, for anything with a real wildcard, a regular
//! expression that it generates as Go text. The same choice is made here, because the cheap
//! tests are not just faster: they compare bytes where the regexp would not (`**.txt` is a
//! suffix test, so its `.` is literal; a suffix test crosses newlines where `.*` does not).

use std::fmt;

use regex::Regex;

use super::{PatternError, goregex};

/// How Docker tests a path against one pattern; it picks the cheapest test that is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchStrategy {
    /// No wildcard: the path must equal the pattern.
    Exact,
    /// A trailing `**` and no other wildcard: the path must start with what precedes it.
    Prefix,
    /// A leading `**` and no other wildcard: the path must end with what follows it.
    Suffix,
    /// Anything else: the regular expression Docker generates, `^...$`.
    Regex,
}

/// What Docker compiles a pattern into, for comparing with its own output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    /// The test it picks.
    pub strategy: MatchStrategy,
    /// The Go regular expression it generates, for [`MatchStrategy::Regex`] only.
    pub go_regexp: Option<String>,
}

/// Docker's translation of a cleaned `pattern` (no `!`) for paths whose separator is
/// `separator`. Any other separator than `/` models Windows, where Go's `Clean` has already
/// turned each `/` into it and `\` is no escape; kiln itself always matches with `/`.
pub fn translate(pattern: &str, separator: char) -> Translation {
    if separator == '/' {
        return generate(pattern, '/');
    }
    let native: String = pattern
        .chars()
        .map(|c| if c == '/' { separator } else { c })
        .collect();
    generate(&native, separator)
}

/// The scan Docker runs over a pattern, character by character.
fn generate(pattern: &str, separator: char) -> Translation {
    // A `\` separator has to be escaped inside the generated regexp.
    let sep = if separator == '\\' {
        r"\\".to_owned()
    } else {
        separator.to_string()
    };
    let mut regexp = String::from("^");
    let mut strategy = MatchStrategy::Exact;
    let mut chars = pattern.chars().peekable();
    // Go's text scanner silently drops a byte-order mark at the very start.
    chars.next_if_eq(&'\u{feff}');
    let mut index = 0;
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.next_if_eq(&'*').is_some() => {
                // `**/` is the same as `**`.
                chars.next_if_eq(&separator);
                if chars.peek().is_none() {
                    if strategy == MatchStrategy::Exact {
                        strategy = MatchStrategy::Prefix;
                    } else {
                        regexp.push_str(".*");
                        strategy = MatchStrategy::Regex;
                    }
                } else {
                    // Any number of directories, none included.
                    regexp.push_str(&format!("(.*{sep})?"));
                    strategy = MatchStrategy::Regex;
                }
                if index == 0 {
                    strategy = MatchStrategy::Suffix;
                }
            }
            '*' => {
                regexp.push_str(&format!("[^{sep}]*"));
                strategy = MatchStrategy::Regex;
            }
            '?' => {
                regexp.push_str(&format!("[^{sep}]"));
                strategy = MatchStrategy::Regex;
            }
            // Regexp syntax that means nothing to a glob. Docker means to escape `.+()|{}$`,
            // but its lookup table drops every character from `@` up (a bitmap of 8 bytes), so
            // `|`, `{` and `}` reach the regexp raw: `*.js|*.ts` is an alternation and `a{2}*` a
            // repeat count. `^` is not in the list either, which makes `[^a]` a negated class.
            '.' | '+' | '(' | ')' | '$' => {
                regexp.push('\\');
                regexp.push(c);
            }
            '\\' if separator == '\\' => regexp.push_str(&sep),
            '\\' => match chars.next() {
                Some(escaped) => {
                    regexp.push('\\');
                    regexp.push(escaped);
                    strategy = MatchStrategy::Regex;
                }
                None => regexp.push('\\'),
            },
            '[' | ']' => {
                regexp.push(c);
                strategy = MatchStrategy::Regex;
            }
            _ => regexp.push(c),
        }
        index += 1;
    }
    let go_regexp = (strategy == MatchStrategy::Regex).then(|| regexp + "$");
    Translation {
        strategy,
        go_regexp,
    }
}

/// The test a pattern runs, ready to use.
#[derive(Debug, Clone)]
enum Test {
    Exact,
    Prefix,
    Suffix,
    Regex(Regex),
    /// Go's `regexp` refuses the generated text; Docker fails every match with this pattern.
    Broken(String),
}

/// One pattern of a matcher, cleaned, with its `!` taken off.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    exclusion: bool,
    test: Test,
}

impl Pattern {
    /// Prepares `text` (cleaned, syntax already checked); a regexp Go would refuse is kept as
    /// an error for match time, which is when Docker reports it.
    pub(crate) fn new(text: String, exclusion: bool) -> Self {
        let Translation {
            strategy,
            go_regexp,
        } = translate(&text, '/');
        let test = match (strategy, go_regexp) {
            (MatchStrategy::Exact, _) => Test::Exact,
            (MatchStrategy::Prefix, _) => Test::Prefix,
            (MatchStrategy::Suffix, _) => Test::Suffix,
            (MatchStrategy::Regex, go) => {
                let go = go.unwrap_or_default();
                match goregex::to_rust(&go)
                    .map_err(|e| e.to_string())
                    .and_then(|rust| Regex::new(&rust).map_err(|e| e.to_string()))
                {
                    Ok(regex) => Test::Regex(regex),
                    Err(reason) => Test::Broken(reason),
                }
            }
        };
        Self {
            text,
            exclusion,
            test,
        }
    }

    /// The cleaned pattern, without its `!`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this is a `!` exception, which re-includes what earlier patterns excluded.
    pub fn is_exclusion(&self) -> bool {
        self.exclusion
    }

    /// The test Docker picks for this pattern.
    pub fn strategy(&self) -> MatchStrategy {
        match self.test {
            Test::Exact => MatchStrategy::Exact,
            Test::Prefix => MatchStrategy::Prefix,
            Test::Suffix => MatchStrategy::Suffix,
            Test::Regex(_) | Test::Broken(_) => MatchStrategy::Regex,
        }
    }

    /// Whether this one pattern matches exactly `path` (slash-separated, relative): no parent
    /// directories are tried and the `!` is ignored.
    pub fn matches(&self, path: &str) -> Result<bool, PatternError> {
        // Byte-wise, as Go slices strings: a pattern starting with a byte-order mark cuts
        // through it here, and must neither panic nor match differently.
        let (bytes, text) = (path.as_bytes(), self.text.as_bytes());
        Ok(match &self.test {
            Test::Exact => bytes == text,
            Test::Prefix => {
                bytes.starts_with(text.get(..text.len().saturating_sub(2)).unwrap_or_default())
            }
            Test::Suffix => {
                let suffix = text.get(2..).unwrap_or_default();
                // `**/foo` also matches `foo` itself.
                bytes.ends_with(suffix)
                    || suffix.strip_prefix(b"/").is_some_and(|bare| bytes == bare)
            }
            Test::Regex(regex) => regex.is_match(path),
            Test::Broken(reason) => {
                return Err(PatternError::BadPattern {
                    pattern: self.text.clone(),
                    reason: reason.clone(),
                });
            }
        })
    }
}

impl fmt::Display for Pattern {
    /// Shows the pattern as it would be written in `.dockerignore`, `!` included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.exclusion {
            f.write_str("!")?;
        }
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::{MatchStrategy, Pattern, translate};

    fn matches(pattern: &str, path: &str) -> bool {
        Pattern::new(pattern.to_owned(), false)
            .matches(path)
            .unwrap()
    }

    #[test]
    fn strategies() {
        let cases = [
            ("abc.def", MatchStrategy::Exact, None),
            ("dir/**", MatchStrategy::Prefix, None),
            ("**", MatchStrategy::Suffix, None),
            ("**/foo/bar", MatchStrategy::Suffix, None),
            ("**.txt", MatchStrategy::Suffix, None),
            ("a\\", MatchStrategy::Exact, None),
            ("*", MatchStrategy::Regex, Some("^[^/]*$")),
            ("a**b**", MatchStrategy::Regex, Some("^a(.*/)?b.*$")),
            (
                "**/**/*.txt",
                MatchStrategy::Regex,
                Some(r"^(.*/)?(.*/)?[^/]*\.txt$"),
            ),
            ("a\\*b", MatchStrategy::Regex, Some(r"^a\*b$")),
            ("[^a]^", MatchStrategy::Regex, Some("^[^a]^$")),
        ];
        for (pattern, strategy, regexp) in cases {
            let got = translate(pattern, '/');
            assert_eq!(got.strategy, strategy, "{pattern}");
            assert_eq!(got.go_regexp.as_deref(), regexp, "{pattern}");
        }
    }

    #[test]
    fn windows_separator() {
        let got = translate("**/dir2/*", '\\');
        assert_eq!(got.go_regexp.as_deref(), Some(r"^(.*\\)?dir2\\[^\\]*$"));
    }

    #[test]
    fn cheap_tests_are_byte_exact() {
        assert!(matches("**.txt", "a/b.txt"));
        assert!(!matches("**.txt", "a/bxtxt"));
        assert!(matches("**/foo", "foo"));
        assert!(!matches("**/foo", "xfoo/"));
        assert!(matches("abc/**", "abc/x"));
        assert!(!matches("abc/**", "abc"));
        assert!(matches("**", "line\nbreak"));
        // A star stays within one level but crosses a newline, like Go's `[^/]*`.
        assert!(matches("*", "a\nb"));
        assert!(!matches("a/**/b", "a/x\ny/b"));
    }

    #[test]
    fn byte_order_mark_never_panics() {
        assert!(!matches("\u{feff}**", "x"));
        assert!(matches("\u{feff}**", "x\u{ffff}**"));
        assert!(matches("\u{feff}a*", "ab"));
        assert!(matches("\u{feff}abc", "\u{feff}abc"));
        assert!(!matches("\u{feff}abc", "abc"));
    }

    #[test]
    fn go_regexp_quirks() {
        // `[*]` reads as the class `[[^/]`, a star and a `]`.
        assert!(matches("[*]", "]"));
        assert!(matches("[*]", "^/]"));
        assert!(!matches("[*]", "*"));
        assert!(matches("a\\d", "a7"));
        assert!(!matches("a\\d", "ad"));
        // An unescaped `^` is an anchor in the middle of the regexp too.
        assert!(matches("*^a", "a"));
        assert!(!matches("*^a", "x^a"));
        // `|`, `{` and `}` reach Go's regexp raw once the pattern has a wildcard...
        assert!(matches("*.js|*.ts", "x.ts"));
        assert!(
            matches("*.js|*.ts", "x.js/y/z.ts"),
            "each branch anchors only one end"
        );
        assert!(matches("a{2}*", "aab"));
        assert!(!matches("a{2}*", "a{2}b"));
        assert!(
            matches("*.{js,ts}", "x.{js,ts}"),
            "not a repeat count: literal braces"
        );
        assert!(
            Pattern::new("a*{2}".to_owned(), false)
                .matches("a")
                .is_err(),
            "nested repeat"
        );
        // ...but without one the pattern is compared as it is.
        assert!(matches("a|b", "a|b"));
        assert!(!matches("a|b", "a"));
        let broken = Pattern::new("[Local-Only]".to_owned(), false);
        assert!(broken.matches("x").is_err());
        assert_eq!(broken.strategy(), MatchStrategy::Regex);
    }
}
