//! Reading a `.dockerignore` file into patterns, as Docker's `ignorefile.ReadAll` does.

use super::path::clean_path;

/// Splits `.dockerignore` text into patterns for [`super::PatternMatcher::new`].
///
/// Lines are split at `\n` with one trailing `\r` dropped; a UTF-8 byte-order mark opens the
/// first line only; a line whose first byte is `#` is a comment (`  #x` is the pattern `#x`);
/// lines are trimmed and blank ones dropped; a leading `!` marks an exception and the space
/// after it is trimmed; the rest is cleaned like Go's `filepath.Clean` and loses one leading
/// `/`, since patterns are always relative to the context root. A lone `!` is kept here and
/// refused by the matcher, as Docker does.
pub fn read_ignore_file(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines: Vec<&str> = text.split('\n').collect();
    // Text ending in a newline has no further line (Go's line scanner agrees).
    if lines.last() == Some(&"") {
        lines.pop();
    }
    lines
        .into_iter()
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .filter(|line| !line.starts_with('#'))
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| match line.strip_prefix('!') {
            Some(rest) => format!("!{}", relative(rest.trim())),
            None => relative(line),
        })
        .collect()
}

/// Cleans one pattern body and makes it relative to the context root.
fn relative(pattern: &str) -> String {
    if pattern.is_empty() {
        return String::new();
    }
    let cleaned = clean_path(pattern);
    match cleaned.strip_prefix('/') {
        // `/` alone stays: Docker only strips a slash that has something after it.
        Some(rest) if !rest.is_empty() => rest.to_owned(),
        _ => cleaned,
    }
}

#[cfg(test)]
mod tests {
    use super::read_ignore_file;

    #[test]
    fn reads_like_docker() {
        let text = "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! ";
        let want = [
            "test1",
            "test2",
            "a/file/here",
            "lastfile",
            "!inverted/abs/path",
            "!",
            "!",
        ];
        assert_eq!(read_ignore_file(text), want);
    }

    #[test]
    fn edges() {
        assert!(read_ignore_file("").is_empty());
        assert!(read_ignore_file("\n\n  \n").is_empty());
        assert_eq!(read_ignore_file("\u{feff}# c\r\nfoo/\r\n"), ["foo"]);
        assert_eq!(read_ignore_file("a\n\u{feff}b"), ["a", "\u{feff}b"]);
        assert_eq!(read_ignore_file("  # not a comment"), ["# not a comment"]);
        assert_eq!(
            read_ignore_file("/\n//x//y/..\n./a\n../b\n!/"),
            ["/", "x", "a", "../b", "!/"]
        );
        assert_eq!(read_ignore_file("docs/\n**/"), ["docs", "**"]);
        assert_eq!(read_ignore_file("last\r"), ["last"]);
    }
}
