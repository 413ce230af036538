//! Splits a logical line into keyword, leading `--flags` and the rest, as BuildKit does.

/// Characters that separate words on an instruction line (Go's `[\t\v\f\r ]+`).
pub(crate) fn is_separator(c: char) -> bool {
    matches!(c, '\t' | '\u{0b}' | '\u{0c}' | '\r' | ' ')
}

/// Splits `s` on runs of separators, at most `limit` pieces (like Go's `Regexp.Split`).
pub(crate) fn split_separators(s: &str, limit: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while out.len() + 1 < limit {
        let Some(i) = rest.find(is_separator) else {
            break;
        };
        out.push(&rest[..i]);
        rest = rest[i..].trim_start_matches(is_separator);
    }
    out.push(rest);
    out
}

/// The keyword, its flags and the trimmed argument text of one logical line.
pub(crate) struct Command<'a> {
    pub(crate) keyword: &'a str,
    pub(crate) flags: Vec<String>,
    pub(crate) args: &'a str,
}

pub(crate) fn split_command(line: &str) -> Command<'_> {
    let mut parts = split_separators(line.trim(), 2).into_iter();
    let keyword = parts.next().unwrap_or_default();
    let (args, flags) = match parts.next() {
        Some(rest) => extract_builder_flags(rest),
        None => ("", Vec::new()),
    };
    Command {
        keyword,
        flags,
        args: args.trim(),
    }
}

#[derive(PartialEq)]
enum Phase {
    Spaces,
    Word,
    Quote(char),
}

/// Takes the leading `--name[=value]` words off `line`; a bare `--` ends them and is dropped.
/// Quotes and backslashes inside a flag word are processed, as in BuildKit.
fn extract_builder_flags(line: &str) -> (&str, Vec<String>) {
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut blank_ok = false;
    let mut chars = line.char_indices().peekable();
    loop {
        let Some((pos, ch)) = chars.next() else {
            if phase != Phase::Spaces && word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            return ("", words);
        };
        if phase == Phase::Spaces {
            if ch.is_whitespace() {
                continue;
            }
            if ch != '-' || chars.peek().map(|&(_, c)| c) != Some('-') {
                return (&line[pos..], words);
            }
            phase = Phase::Word;
        }
        match phase {
            Phase::Word => {
                if ch.is_whitespace() {
                    phase = Phase::Spaces;
                    if word == "--" {
                        return (&line[pos..], words);
                    }
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    blank_ok = false;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    phase = Phase::Quote(ch);
                    blank_ok = true;
                    continue;
                }
                if ch == '\\' {
                    match chars.next() {
                        Some((_, next)) => word.push(next),
                        None => continue,
                    }
                    continue;
                }
                word.push(ch);
            }
            Phase::Quote(q) => {
                if ch == q {
                    phase = Phase::Word;
                    continue;
                }
                if ch == '\\' {
                    match chars.next() {
                        Some((_, next)) => word.push(next),
                        None => phase = Phase::Word,
                    }
                    continue;
                }
                word.push(ch);
            }
            Phase::Spaces => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str) -> (String, Vec<String>, String) {
        let c = split_command(line);
        (c.keyword.to_owned(), c.flags, c.args.to_owned())
    }

    #[test]
    fn flags_are_leading_double_dash_words() {
        let (k, f, a) = split("COPY --from=a --chown=1:2 x y");
        assert_eq!(k, "COPY");
        assert_eq!(f, ["--from=a", "--chown=1:2"]);
        assert_eq!(a, "x y");
    }

    #[test]
    fn double_dash_ends_flags() {
        let (_, f, a) = split("COPY --doit=true -- --foo /tmp/");
        assert_eq!(f, ["--doit=true"]);
        assert_eq!(a, "--foo /tmp/");
    }

    #[test]
    fn quoted_flag_values() {
        let (_, f, a) = split(r#"RUN --mount="type=bind,source=a b" --x='' echo"#);
        assert_eq!(f, ["--mount=type=bind,source=a b", "--x="]);
        assert_eq!(a, "echo");
    }

    #[test]
    fn separators_split_like_go() {
        assert_eq!(split_separators("a \t b  c", 2), ["a", "b  c"]);
        assert_eq!(split_separators("a b c", usize::MAX), ["a", "b", "c"]);
        assert_eq!(split_separators("", 2), [""]);
    }
}
