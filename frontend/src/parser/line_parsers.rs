//! The per-instruction argument splitters of BuildKit's parser dispatch table. They decide
//! how the text after the keyword and flags becomes the node's argument list; nothing here
//! removes quotes or expands variables (that happens in the instruction layer).

use super::json::{JsonArray, parse_json_array};
use super::split_command::split_separators;

/// The arguments a line parser produced.
#[derive(Debug, Default)]
pub(crate) struct ParsedArgs {
    pub(crate) args: Vec<String>,
    pub(crate) json: bool,
}

impl ParsedArgs {
    fn plain(args: Vec<String>) -> Self {
        ParsedArgs { args, json: false }
    }
}

/// The line parser BuildKit dispatches to for a lowercased keyword; `None` for unknown ones.
pub(crate) fn dispatch(keyword: &str, rest: &str, escape: char) -> Result<ParsedArgs, String> {
    match keyword {
        "add" | "copy" | "volume" => maybe_json_to_list(rest),
        "arg" => Ok(ParsedArgs::plain(parse_words(rest, escape))),
        "cmd" | "entrypoint" | "run" | "shell" => maybe_json(rest),
        "env" => name_val(rest, "ENV", escape),
        // BuildKit passes the lowercase command name for LABEL, so its error says "label".
        "label" => name_val(rest, "label", escape),
        "expose" | "from" => Ok(ParsedArgs::plain(whitespace_delimited(rest))),
        "healthcheck" => health_config(rest),
        "maintainer" | "stopsignal" | "user" | "workdir" => Ok(ParsedArgs::plain(string(rest))),
        // Unknown keywords parse to one empty argument; the instruction layer rejects them.
        _ => Ok(ParsedArgs::plain(vec![String::new()])),
    }
}

/// Whether `keyword` (lowercased) has a line parser at all.
pub(crate) fn is_known(keyword: &str) -> bool {
    matches!(
        keyword,
        "add"
            | "arg"
            | "cmd"
            | "copy"
            | "entrypoint"
            | "env"
            | "expose"
            | "from"
            | "healthcheck"
            | "label"
            | "maintainer"
            | "onbuild"
            | "run"
            | "shell"
            | "stopsignal"
            | "user"
            | "volume"
            | "workdir"
    )
}

fn string(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        Vec::new()
    } else {
        vec![rest.to_owned()]
    }
}

fn whitespace_delimited(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        return Vec::new();
    }
    split_separators(rest, usize::MAX)
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// The message BuildKit gives for `["a", 1]` and other non-string JSON arrays.
pub const NOT_STRING_ARRAY: &str =
    "when using JSON array syntax, arrays must be comprised of strings only";

/// RUN, CMD, ENTRYPOINT, SHELL: a JSON array of strings, or else the whole text as one arg.
fn maybe_json(rest: &str) -> Result<ParsedArgs, String> {
    if rest.is_empty() {
        return Ok(ParsedArgs::default());
    }
    match parse_json_array(rest) {
        JsonArray::Strings(args) => Ok(ParsedArgs { args, json: true }),
        JsonArray::NotStrings => Err(NOT_STRING_ARRAY.to_owned()),
        JsonArray::Invalid => Ok(ParsedArgs::plain(vec![rest.to_owned()])),
    }
}

/// ADD, COPY, VOLUME: a JSON array of strings, or else the text split on whitespace.
fn maybe_json_to_list(rest: &str) -> Result<ParsedArgs, String> {
    match parse_json_array(rest) {
        JsonArray::Strings(args) => Ok(ParsedArgs { args, json: true }),
        JsonArray::NotStrings => Err(NOT_STRING_ARRAY.to_owned()),
        JsonArray::Invalid => Ok(ParsedArgs::plain(whitespace_delimited(rest))),
    }
}

/// HEALTHCHECK: the first word is the type, the rest is parsed like CMD.
fn health_config(rest: &str) -> Result<ParsedArgs, String> {
    let sep = rest.find(char::is_whitespace).unwrap_or(rest.len());
    if sep == 0 {
        return Ok(ParsedArgs::default());
    }
    let cmd = maybe_json(rest[sep..].trim_start())?;
    let mut args = vec![rest[..sep].to_owned()];
    args.extend(cmd.args);
    Ok(ParsedArgs {
        args,
        json: cmd.json,
    })
}

/// ENV and LABEL: triplets of name, value and separator (`=`, or empty for `KEY value`).
fn name_val(rest: &str, key: &str, escape: char) -> Result<ParsedArgs, String> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(ParsedArgs::default());
    };
    if !first.contains('=') {
        // The legacy form: the value is the whole rest of the line, unprocessed.
        let parts = split_separators(rest, 2);
        if parts.len() < 2 {
            return Err(format!("{key} must have two arguments"));
        }
        return Ok(ParsedArgs::plain(vec![
            parts[0].to_owned(),
            parts[1].to_owned(),
            String::new(),
        ]));
    }
    let mut args = Vec::with_capacity(words.len() * 3);
    for word in &words {
        let Some((name, value)) = word.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {}. Must be of the form: name=value",
                super::dump::go_quote(word)
            ));
        };
        args.extend([name.to_owned(), value.to_owned(), "=".to_owned()]);
    }
    Ok(ParsedArgs::plain(args))
}

#[derive(PartialEq)]
enum Phase {
    Spaces,
    Word,
    Quote(char),
}

/// Splits on whitespace into words, keeping quotes and escapes in the words (they are removed
/// later by the shell lexer); a quoted or escaped space does not split.
pub fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut blank_ok = false;
    let mut chars = rest.chars().peekable();
    while let Some(ch) = chars.next() {
        if phase == Phase::Spaces {
            if ch.is_whitespace() {
                continue;
            }
            phase = Phase::Word;
        }
        match phase {
            Phase::Word => {
                if ch.is_whitespace() {
                    phase = Phase::Spaces;
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    blank_ok = false;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    phase = Phase::Quote(ch);
                    blank_ok = true;
                }
                if ch == escape {
                    // An escape keeps itself and the next character, even a quote; a trailing
                    // escape is dropped.
                    let Some(next) = chars.next() else {
                        continue;
                    };
                    word.push(ch);
                    word.push(next);
                    continue;
                }
                word.push(ch);
            }
            Phase::Quote(q) => {
                if ch == q {
                    phase = Phase::Word;
                }
                // Nothing can be escaped inside single quotes.
                if ch == escape && q != '\'' {
                    let Some(next) = chars.next() else {
                        phase = Phase::Word;
                        continue;
                    };
                    word.push(ch);
                    word.push(next);
                    continue;
                }
                word.push(ch);
            }
            Phase::Spaces => {}
        }
    }
    if phase != Phase::Spaces && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_quotes() {
        assert_eq!(
            parse_words(r#"abc="123 456" def"#, '\\'),
            [r#"abc="123 456""#, "def"]
        );
        assert_eq!(parse_words(r"foo\ bar", '\\'), [r"foo\ bar"]);
        assert_eq!(parse_words("a\\", '\\'), ["a"]);
    }

    #[test]
    fn name_val_forms() {
        let p = name_val("foo bar baz", "ENV", '\\').unwrap();
        assert_eq!(p.args, ["foo", "bar baz", ""]);
        let p = name_val("a=b c=d", "ENV", '\\').unwrap();
        assert_eq!(p.args, ["a", "b", "=", "c", "d", "="]);
        assert_eq!(
            name_val("a=b c", "ENV", '\\').unwrap_err(),
            r#"Syntax error - can't find = in "c". Must be of the form: name=value"#
        );
        assert_eq!(
            name_val("foo", "ENV", '\\').unwrap_err(),
            "ENV must have two arguments"
        );
    }

    #[test]
    fn healthcheck_type_then_command() {
        let p = health_config("CMD [\"a\"]").unwrap();
        assert_eq!(p.args, ["CMD", "a"]);
        assert!(p.json);
        assert!(health_config("").unwrap().args.is_empty());
    }
}
