//! Heredoc delimiters on RUN, COPY and ADD lines: which words start a heredoc, what the
//! terminator is, and whether the body is expanded (not when any part of it was quoted).

use std::sync::LazyLock;

use regex::Regex;

use super::node::Heredoc;
use crate::shell::{EmptyEnv, Lexer};

// `\s` spelled as Go's ASCII class; `[^<]*` keeps `<<<EOF` from being a heredoc.
#[allow(clippy::expect_used)] // a literal pattern: it compiles or the tests fail
static HEREDOC_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([0-9]*)<<(-?)[\t\n\f\r ]*([^<]*)$").expect("heredoc regex"));

/// Parses one word such as `<<EOF`, `<<-'EOF'` or `3<<EOF`. `Ok(None)` when the word is not a
/// heredoc; `Err` when it looks like one but its quoting is broken (`<<'EOF`).
pub fn parse_heredoc(word: &str) -> Result<Option<Heredoc>, String> {
    let Some(caps) = HEREDOC_RE.captures(word) else {
        return Ok(None);
    };
    // Go ignores a parse failure here (an fd too large for uint), leaving 0.
    let file_descriptor = caps[1].parse::<u32>().unwrap_or(0);
    let chomp = &caps[2] == "-";
    let rest = &caps[3];
    if rest.is_empty() {
        return Ok(None);
    }
    let mut lex = Lexer::new('\\');
    lex.skip_unset_env = true;
    let words = lex
        .process_words(rest, &EmptyEnv)
        .map_err(|e| e.to_string())?;
    let [name] = words.as_slice() else {
        return Ok(None);
    };
    // Lex again keeping quotes: if the quote counts differ, some part of the delimiter was
    // quoted, and a quoted delimiter turns expansion of the body off.
    lex.raw_quotes = true;
    let raw = lex
        .process_words(rest, &EmptyEnv)
        .map_err(|e| e.to_string())?;
    let [raw_name] = raw.as_slice() else {
        return Err(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        ));
    };
    let quotes = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    Ok(Some(Heredoc {
        name: name.clone(),
        content: String::new(),
        expand: quotes(name) == quotes(raw_name),
        chomp,
        file_descriptor,
    }))
}

/// Every heredoc named on an instruction line, in order.
pub fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, String> {
    let mut lex = Lexer::new('\\');
    lex.raw_quotes = true;
    lex.raw_escapes = true;
    lex.skip_unset_env = true;
    // A line the lexer cannot split (an unbalanced quote) has no heredocs, as in BuildKit.
    let words = lex.process_words(line, &EmptyEnv).unwrap_or_default();
    let mut docs = Vec::new();
    for w in &words {
        if let Some(h) = parse_heredoc(w)? {
            docs.push(h);
        }
    }
    Ok(docs)
}

/// Removes leading tabs from every line of a `<<-` body.
pub fn chomp_heredoc_content(src: &str) -> String {
    src.split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chomp_strips_leading_tabs_per_line() {
        assert_eq!(
            chomp_heredoc_content("\thello\n\t\tworld\n"),
            "hello\nworld\n"
        );
    }
}
