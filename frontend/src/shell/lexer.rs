//! The expansion engine: quote removal, escapes and `$` substitutions over one word, following
//! BuildKit's `shellWord` step for step (its `processStopOn`, `processSingleQuote`,
//! `processDoubleQuote`, `processDollar`, `processName` and `processPossibleHeredoc`).

use std::collections::BTreeSet;

use super::chars::{is_digit, is_letter};
use super::env::Env;
use super::error::ShellError;
use super::pattern;
use super::scanner::Scanner;
use super::words::Words;
use super::{Expansion, Lexer};

/// How deeply `${…}` words may nest. Go grows its stack; we recurse on a fixed one, so we stop
/// long before any thread's stack could run out (a level costs about 6 KiB unoptimised, 1 KiB
/// optimised). Real Dockerfiles nest two or three levels.
const MAX_DEPTH: usize = 64;

/// Expands `word` with the lexer's options.
pub(super) fn expand(lexer: &Lexer, word: &str, env: &dyn Env) -> Result<Expansion, ShellError> {
    let mut engine = Engine {
        lexer,
        env,
        scanner: Scanner::new(word),
        raw_escapes: lexer.raw_escapes,
        depth: 0,
        matched: BTreeSet::new(),
        unmatched: BTreeSet::new(),
    };
    let (result, words) = engine.stop_on(None, lexer.raw_escapes)?;
    Ok(Expansion {
        result,
        words,
        matched: engine.matched,
        unmatched: engine.unmatched,
    })
}

/// The state of one expansion.
struct Engine<'a> {
    lexer: &'a Lexer,
    env: &'a dyn Env,
    scanner: Scanner<'a>,
    /// Whether escape characters are kept; BuildKit switches it on for patterns and
    /// replacements and off for `-`/`+`/`?` words, whatever the lexer's option says.
    raw_escapes: bool,
    depth: usize,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

impl Engine<'_> {
    /// Processes text up to `stop` (consumed) or, with `None`, to the end of the word.
    /// Returns the text and its field-split words.
    fn stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), ShellError> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let out = self.stop_on_inner(stop);
        self.raw_escapes = saved;
        out
    }

    fn stop_on_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), ShellError> {
        let mut result = String::new();
        // Each level has its own word buffer. (BuildKit now shares one buffer between levels,
        // so a nested `${V:-w}` wipes the words before it; we keep the older, intended split.)
        let mut words = Words::default();
        let quotes = !self.lexer.skip_process_quotes;
        while let Some(ch) = self.scanner.peek() {
            if Some(ch) == stop {
                self.scanner.next_char();
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let text = self.dollar()?;
                    result.push_str(&text);
                    words.add_str(&text);
                }
                '<' => {
                    let text = self.possible_heredoc();
                    result.push_str(&text);
                    words.add_raw_str(&text);
                }
                '\'' | '"' if quotes => {
                    let text = if ch == '\'' {
                        self.single_quote()?
                    } else {
                        self.double_quote()?
                    };
                    result.push_str(&text);
                    words.add_raw_str(&text);
                }
                _ => {
                    self.scanner.next_char();
                    if ch == self.lexer.escape {
                        if self.raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        // A trailing escape is dropped.
                        let Some(escaped) = self.scanner.next_char() else {
                            break;
                        };
                        words.add_raw_char(escaped);
                        result.push(escaped);
                    } else {
                        words.add_char(ch);
                        result.push(ch);
                    }
                }
            }
        }
        match stop {
            Some(expected) => Err(ShellError::Unterminated {
                expected,
                offset: self.scanner.pos(),
            }),
            None => Ok((result, words.finish())),
        }
    }

    /// `'…'`: everything literal up to the next `'`; nothing escapes inside.
    fn single_quote(&mut self) -> Result<String, ShellError> {
        let offset = self.scanner.pos();
        let mut result = String::new();
        let open = self.scanner.next_char();
        if self.lexer.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.scanner.next_char() {
                None => return Err(ShellError::UnterminatedSingleQuote { offset }),
                Some('\'') => {
                    if self.lexer.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(ch) => result.push(ch),
            }
        }
    }

    /// `"…"`: `$` expands; the escape character escapes only `"`, `$` and itself.
    fn double_quote(&mut self) -> Result<String, ShellError> {
        let offset = self.scanner.pos();
        let mut result = String::new();
        let open = self.scanner.next_char();
        if self.lexer.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.scanner.peek() {
                None => return Err(ShellError::UnterminatedDoubleQuote { offset }),
                Some('"') => {
                    self.scanner.next_char();
                    if self.lexer.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let text = self.dollar()?;
                    result.push_str(&text);
                }
                Some(_) => {
                    let Some(mut ch) = self.scanner.next_char() else {
                        continue;
                    };
                    if ch == self.lexer.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.scanner.peek() {
                            // An escape just before the end is dropped; the missing quote
                            // is reported on the next turn.
                            None => continue,
                            Some(next)
                                if next == '"' || next == '$' || next == self.lexer.escape =>
                            {
                                self.scanner.next_char();
                                ch = next;
                            }
                            // Any other escape stays literal. With raw escapes BuildKit then
                            // writes it twice (`"\t"` → `\\t`); so do we.
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    /// `<`, or `<<` with the blanks after it: BuildKit keeps those blanks in the word so that
    /// `<<  EOF` stays one word for the parser's heredoc search. The text itself is unchanged.
    fn possible_heredoc(&mut self) -> String {
        self.scanner.next_char();
        if self.scanner.peek() != Some('<') {
            return "<".to_owned();
        }
        self.scanner.next_char();
        let mut text = "<<".to_owned();
        // Unlike BuildKit's lexer, the `-` of `<<-` joins the word before the blanks are
        // taken, so `<<- EOF` is a heredoc as in sh (and in BuildKit's heredocs_from_line
        // table); BuildKit splits it into `<<-` and `EOF` and finds no heredoc.
        if self.scanner.peek() == Some('-') {
            self.scanner.next_char();
            text.push('-');
        }
        while let Some(blank) = self
            .scanner
            .peek()
            .filter(|c| matches!(c, ' ' | '\t' | '\r'))
        {
            self.scanner.next_char();
            text.push(blank);
        }
        text
    }

    /// `$name`, `${name}` and `${name<op>word}`; the scanner is on the `$`.
    fn dollar(&mut self) -> Result<String, ShellError> {
        let start = self.scanner.pos();
        self.scanner.next_char();
        if self.scanner.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_owned());
            }
            return Ok(match self.lookup(&name) {
                Some(value) => value,
                None if self.lexer.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.scanner.next_char();
        match self.scanner.peek() {
            None => return Err(ShellError::MissingBrace { offset: start }),
            Some('{' | '}' | ':') => {
                return Err(ShellError::BadSubstitution {
                    offset: self.scanner.pos(),
                });
            }
            Some(_) => {}
        }
        let name = self.name();
        let op_offset = self.scanner.pos();
        let op = self.scanner.next_char();
        let mut shown = go_char(op);
        match op {
            Some('}') => Ok(match self.lookup(&name) {
                Some(value) => value,
                None if self.lexer.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':') => {
                let op = self.scanner.next_char();
                shown.push_str(&go_char(op));
                self.modifier(&name, op, &shown, true, start, op_offset)
            }
            Some('+' | '-' | '?' | '#' | '%') => {
                self.modifier(&name, op, &shown, false, start, op_offset)
            }
            Some('/') => self.replace(&name, start),
            _ => Err(ShellError::UnsupportedModifier {
                modifier: shown,
                offset: op_offset,
            }),
        }
    }

    /// `${name<op>word}` for the operators `-`, `+`, `?`, `#`, `%` (after `:` or not).
    /// `shown` is the operator as BuildKit prints it in messages and skipped expansions.
    fn modifier(
        &mut self,
        name: &str,
        op: Option<char>,
        shown: &str,
        null_is_unset: bool,
        start: usize,
        op_offset: usize,
    ) -> Result<String, ShellError> {
        let is_pattern = matches!(op, Some('#' | '%'));
        if null_is_unset && is_pattern {
            return Err(ShellError::UnsupportedModifier {
                modifier: shown.to_owned(),
                offset: op_offset,
            });
        }
        // Patterns keep their escapes so that `\*` still means a literal star.
        let word = self.nested('}', is_pattern, start, |offset| ShellError::MissingBrace {
            offset,
        })?;
        let value = self.lookup(name);
        if self.lexer.skip_unset_env && value.is_none() {
            return Ok(format!("${{{name}{shown}{word}}}"));
        }
        let empty = value.as_deref().is_none_or(str::is_empty);
        let use_default = value.is_none() || (null_is_unset && empty);
        match op {
            Some('-') => Ok(if use_default {
                word
            } else {
                value.unwrap_or_default()
            }),
            Some('+') => Ok(if use_default { String::new() } else { word }),
            Some('?') => match value {
                None => Err(ShellError::Unset {
                    name: name.to_owned(),
                    message: message_or(word, "is not allowed to be unset"),
                    offset: start,
                }),
                Some(value) if null_is_unset && value.is_empty() => Err(ShellError::Empty {
                    name: name.to_owned(),
                    message: message_or(word, "is not allowed to be empty"),
                    offset: start,
                }),
                Some(value) => Ok(value),
            },
            Some(op @ ('#' | '%')) => {
                let value = value.unwrap_or_default();
                // A doubled operator (`##`, `%%`) asks for the longest match. BuildKit looks
                // at the expanded word, so `${V#$P}` with P=`#x` is greedy too.
                let (pat, greedy) = match word.strip_prefix(op) {
                    Some(rest) => (rest, true),
                    None => (word.as_str(), false),
                };
                let invalid = |pattern: String, reason: String| ShellError::InvalidPattern {
                    pattern,
                    reason,
                    offset: start,
                };
                if op == '%' {
                    pattern::trim_suffix(pat, &value, greedy)
                        .map_err(|(pattern, reason)| invalid(pattern, reason))
                } else {
                    pattern::trim_prefix(pat, &value, greedy)
                        .map_err(|reason| invalid(pat.to_owned(), reason))
                }
            }
            _ => Err(ShellError::UnsupportedModifier {
                modifier: shown.to_owned(),
                offset: op_offset,
            }),
        }
    }

    /// `${name/pattern/replacement}` and `${name//pattern/replacement}`; the scanner is just
    /// past the first `/`.
    fn replace(&mut self, name: &str, start: usize) -> Result<String, ShellError> {
        let all = self.scanner.peek() == Some('/');
        if all {
            self.scanner.next_char();
        }
        let pat = self.nested('/', true, start, |offset| ShellError::MissingSlash {
            offset,
        })?;
        let replacement = self.nested('}', true, start, |offset| ShellError::MissingBrace {
            offset,
        })?;
        let value = self.lookup(name);
        if self.lexer.skip_unset_env && value.is_none() {
            // BuildKit writes a single `/` here even for `//`.
            return Ok(format!("${{{name}/{pat}/{replacement}}}"));
        }
        pattern::replace(&pat, &value.unwrap_or_default(), &replacement, all).map_err(|reason| {
            ShellError::InvalidPattern {
                pattern: pat,
                reason,
                offset: start,
            }
        })
    }

    /// A word nested in `${…}`, up to `stop`. Any failure that leaves the scanner at the end
    /// of the input becomes `at_end` (BuildKit reports the missing delimiter rather than what
    /// went wrong inside).
    fn nested(
        &mut self,
        stop: char,
        raw_escapes: bool,
        start: usize,
        at_end: impl FnOnce(usize) -> ShellError,
    ) -> Result<String, ShellError> {
        if self.depth >= MAX_DEPTH {
            return Err(ShellError::TooDeep {
                limit: MAX_DEPTH,
                offset: start,
            });
        }
        self.depth += 1;
        let out = self.stop_on(Some(stop), raw_escapes);
        self.depth -= 1;
        match out {
            Ok((text, _)) => Ok(text),
            Err(err @ ShellError::TooDeep { .. }) => Err(err),
            Err(_) if self.scanner.peek().is_none() => Err(at_end(start)),
            Err(err) => Err(err),
        }
    }

    /// A variable name: a run of digits (positional), one special-parameter character, or
    /// letters, digits and `_`. Empty when none of those follows.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.scanner.peek() {
            if name.is_empty() && is_digit(ch) {
                while let Some(digit) = self.scanner.peek().filter(|&c| is_digit(c)) {
                    self.scanner.next_char();
                    name.push(digit);
                }
                return name;
            }
            if name.is_empty() && is_special_param(ch) {
                self.scanner.next_char();
                return ch.to_string();
            }
            if !is_letter(ch) && !is_digit(ch) && ch != '_' {
                break;
            }
            self.scanner.next_char();
            name.push(ch);
        }
        name
    }

    /// Looks `name` up and records whether it was set.
    fn lookup(&mut self, name: &str) -> Option<String> {
        let value = self.env.get(name);
        let seen = if value.is_some() {
            &mut self.matched
        } else {
            &mut self.unmatched
        };
        if !seen.contains(name) {
            seen.insert(name.to_owned());
        }
        value
    }
}

/// POSIX special parameters; never set in a Dockerfile, so they expand to nothing.
fn is_special_param(ch: char) -> bool {
    matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

/// A character as Go's `string(rune)` shows it: the end of input (-1) becomes U+FFFD.
fn go_char(ch: Option<char>) -> String {
    ch.unwrap_or('\u{fffd}').to_string()
}

/// The `${V?msg}` message: the expanded word, or BuildKit's default when it is empty.
fn message_or(word: String, default: &str) -> String {
    if word.is_empty() {
        default.to_owned()
    } else {
        word
    }
}
