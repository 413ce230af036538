//! Parser directives (`# syntax=`, `# escape=`, `# check=`): only valid in the comment block
//! at the very top of the file, before any blank line, instruction or ordinary comment.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

/// The directives BuildKit knows; any other `# key=value` line ends the directive block.
const VALID: [&str; 3] = ["syntax", "escape", "check"];

// Go's RE2 `\s` is ASCII-only; spell it out so the regex crate's Unicode `\s` does not widen it.
#[allow(clippy::expect_used)] // a literal pattern: it compiles or the tests fail
static DIRECTIVE_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*$")
        .expect("directive regex")
});

/// A parser directive found at the top of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directive {
    /// Lowercased name: `syntax`, `escape` or `check`.
    pub name: String,
    /// The value with surrounding whitespace removed.
    pub value: String,
    /// 1-based line number.
    pub line: usize,
}

/// Reads directive lines one at a time and remembers when the block has ended.
#[derive(Debug)]
pub(crate) struct DirectiveParser {
    line: usize,
    comment: &'static str,
    seen: Vec<String>,
    done: bool,
}

impl DirectiveParser {
    /// A parser for `#`-style directives whose first line is `line + 1`.
    pub(crate) fn new(line: usize, comment: &'static str) -> Self {
        DirectiveParser {
            line,
            comment,
            seen: Vec::new(),
            done: false,
        }
    }

    /// Offers one physical line (without its newline). Returns the directive it holds, if any;
    /// errors when a directive is repeated.
    pub(crate) fn parse_line(&mut self, line: &str) -> Result<Option<Directive>, String> {
        self.line += 1;
        if self.done {
            return Ok(None);
        }
        let Some(rest) = line.strip_prefix(self.comment) else {
            self.done = true;
            return Ok(None);
        };
        let rest = rest.trim_start();
        let Some(caps) = DIRECTIVE_RE.captures(rest) else {
            self.done = true;
            return Ok(None);
        };
        let name = caps[1].to_ascii_lowercase();
        if !VALID.contains(&name.as_str()) {
            self.done = true;
            return Ok(None);
        }
        if self.seen.contains(&name) {
            return Err(format!("only one {name} parser directive can be used"));
        }
        self.seen.push(name.clone());
        Ok(Some(Directive {
            name,
            value: caps[2].to_owned(),
            line: self.line,
        }))
    }

    /// Parses lines until the block ends (errors stop the scan, as in BuildKit).
    fn parse_all(mut self, data: &str) -> Vec<Directive> {
        let mut out = Vec::new();
        for line in data.lines() {
            if self.done {
                break;
            }
            match self.parse_line(line) {
                Ok(Some(d)) => out.push(d),
                Ok(None) => {}
                Err(_) => break,
            }
        }
        out
    }
}

/// All directives of the top-of-file block, as BuildKit's `DirectiveParser.ParseAll`.
pub fn parse_all_directives(src: &str) -> Result<Vec<Directive>, String> {
    let mut parser = DirectiveParser::new(0, "#");
    let mut out = Vec::new();
    for line in src.lines() {
        if parser.done {
            break;
        }
        if let Some(d) = parser.parse_line(line)? {
            out.push(d);
        }
    }
    Ok(out)
}

/// What [`detect_syntax`] and [`parse_directive`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirectiveValue {
    /// The first word of the value (for `syntax`, the frontend image reference).
    pub value: String,
    /// The whole value, options included (`docker/dockerfile:1 // opts`).
    pub cmdline: String,
    /// 1-based line of the directive (0 for the JSON form without a shebang).
    pub line: usize,
}

/// Finds the `syntax` directive: `# syntax=`, then `// syntax=`, then a JSON object
/// `{"syntax": "…"}`; a leading BOM and `#!` shebang line are skipped.
pub fn detect_syntax(src: &str) -> Option<DirectiveValue> {
    find_directive("syntax", src, true)
}

/// Finds a `#`-style directive such as `check`.
pub fn parse_directive(key: &str, src: &str) -> Option<DirectiveValue> {
    find_directive(key, src, false)
}

fn find_directive(key: &str, src: &str, any_format: bool) -> Option<DirectiveValue> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let (src, line) = discard_shebang(src);
    let from_parser = |comment| {
        DirectiveParser::new(line, comment)
            .parse_all(src)
            .into_iter()
            .find(|d| d.name == key)
            .map(|d| DirectiveValue {
                value: d.value.split(' ').next().unwrap_or_default().to_owned(),
                cmdline: d.value,
                line: d.line,
            })
    };
    if let Some(found) = from_parser("#") {
        return Some(found);
    }
    if !any_format {
        return None;
    }
    if let Some(found) = from_parser("//") {
        return Some(found);
    }
    let obj: serde_json::Map<String, serde_json::Value> = serde_json::from_str(src).ok()?;
    let v = obj.get(key)?.as_str()?;
    Some(DirectiveValue {
        value: v.to_owned(),
        cmdline: v.to_owned(),
        line,
    })
}

fn discard_shebang(src: &str) -> (&str, usize) {
    let (first, rest) = src.split_once('\n').unwrap_or((src, ""));
    if first.starts_with("#!") {
        (rest, 1)
    } else {
        (src, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_block_ends_at_first_other_line() {
        let mut p = DirectiveParser::new(0, "#");
        assert_eq!(p.parse_line("# escape=`").unwrap().unwrap().value, "`");
        assert!(p.parse_line("# not a directive").unwrap().is_none());
        assert!(p.parse_line("# syntax=foo").unwrap().is_none());
    }

    #[test]
    fn repeated_directive_is_an_error() {
        let mut p = DirectiveParser::new(0, "#");
        p.parse_line("#escape=\\").unwrap();
        assert_eq!(
            p.parse_line("# ESCAPE=`").unwrap_err(),
            "only one escape parser directive can be used"
        );
    }

    #[test]
    fn syntax_forms() {
        let v = detect_syntax("# syntax = docker/dockerfile:1 // x\nFROM a").unwrap();
        assert_eq!(v.value, "docker/dockerfile:1");
        assert_eq!(v.cmdline, "docker/dockerfile:1 // x");
        assert_eq!(detect_syntax("//syntax=foo").unwrap().value, "foo");
        assert_eq!(detect_syntax(r#"{"syntax": "j"}"#).unwrap().value, "j");
        assert!(detect_syntax("FROM a").is_none());
    }
}
