//! The Dockerfile parser: directives, comments, escapes, line continuations and heredocs,
//! producing one [`Node`] per instruction with its line numbers and byte span. It follows
//! BuildKit's `frontend/dockerfile/parser` rule for rule, so `dump` equals BuildKit's
//! `Node.Dump()` byte for byte.

mod directives;
mod dump;
mod heredoc;
mod json;
mod line_parsers;
mod node;
mod split_command;

pub use directives::{
    Directive, DirectiveValue, detect_syntax, parse_all_directives, parse_directive,
};
pub use dump::{dump, dump_node, go_quote};
pub use heredoc::{chomp_heredoc_content, heredocs_from_line, parse_heredoc};
pub use json::{JsonArray, parse_json_array};
pub use line_parsers::{NOT_STRING_ARRAY, parse_words};
pub use node::{Heredoc, Node};

use directives::DirectiveParser;
use serde::Serialize;

use crate::diagnostics::Diagnostic;
use crate::span::Span;

/// BuildKit reads lines with a 64 KiB scanner buffer: a longer line is an error.
pub const MAX_LINE_LEN: usize = 65535;

/// The escape token used when no `# escape=` directive says otherwise.
pub const DEFAULT_ESCAPE: char = '\\';

/// A parsed Dockerfile.
#[derive(Debug, Clone, Serialize)]
pub struct Parsed {
    /// The instructions, in order.
    pub nodes: Vec<Node>,
    /// Non-fatal findings (empty continuation lines).
    pub warnings: Vec<Diagnostic>,
    /// The escape token in force (`\` or `` ` ``).
    pub escape: char,
    /// The parser directives at the top of the file.
    pub directives: Vec<Directive>,
}

/// Parses a whole Dockerfile.
pub fn parse(src: &str) -> Result<Parsed, Diagnostic> {
    Parser::new(src).run()
}

/// One physical line: its byte offset in the source and its text including the newline.
struct PhysicalLines<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Iterator for PhysicalLines<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.src.len() {
            return None;
        }
        let start = self.pos;
        let end = self.src[start..]
            .find('\n')
            .map_or(self.src.len(), |i| start + i + 1);
        self.pos = end;
        Some((start, &self.src[start..end]))
    }
}

struct Parser<'a> {
    src: &'a str,
    lines: PhysicalLines<'a>,
    directive_parser: DirectiveParser,
    directives: Vec<Directive>,
    escape: char,
    current_line: usize,
    /// End offset (newline excluded) of the last physical line read.
    last_end: usize,
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_comment(line: &str) -> bool {
    trim_newline(line).trim_start().starts_with('#')
}

fn is_empty_continuation_line(line: &str) -> bool {
    trim_newline(line).trim_start().is_empty()
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Self {
        Parser {
            src,
            lines: PhysicalLines { src, pos: 0 },
            directive_parser: DirectiveParser::new(0, "#"),
            directives: Vec::new(),
            escape: DEFAULT_ESCAPE,
            current_line: 0,
            last_end: 0,
        }
    }

    fn line_span(&self, offset: usize, line: &str) -> Span {
        Span::new(offset, offset + trim_newline(line).len())
    }

    /// The next physical line, refusing lines longer than BuildKit's scanner accepts.
    fn next_line(&mut self) -> Result<Option<(usize, &'a str)>, Diagnostic> {
        let Some((off, line)) = self.lines.next() else {
            return Ok(None);
        };
        let content = line.strip_suffix('\n').unwrap_or(line);
        if content.len() > MAX_LINE_LEN {
            return Err(Diagnostic::error(
                format!("dockerfile line greater than max allowed size of {MAX_LINE_LEN}"),
                Span::new(off, off),
            )
            .with_hint("split the line with a line continuation or move the data into a file"));
        }
        self.last_end = off + trim_newline(line).len();
        Ok(Some((off, line)))
    }

    /// Strips the newline (and, for the first line of an instruction, leading whitespace),
    /// feeds the directive parser and blanks out comment lines. Returns the text and how
    /// many leading bytes were stripped.
    fn process_line(
        &mut self,
        offset: usize,
        token: &'a str,
        strip_left: bool,
    ) -> Result<(&'a str, usize), Diagnostic> {
        let mut t = trim_newline(token);
        let mut lead = 0;
        if strip_left {
            let trimmed = t.trim_start();
            lead = t.len() - trimmed.len();
            t = trimmed;
        }
        let span = self.line_span(offset, token);
        let found = self
            .directive_parser
            .parse_line(t)
            .map_err(|msg| Diagnostic::error(msg, span))?;
        match found {
            Some(d) if d.name == "escape" => {
                self.escape = match d.value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        return Err(Diagnostic::error(
                            format!("invalid escape token '{other}' does not match ` or \\"),
                            span,
                        )
                        .with_hint("use `# escape=\\` or `# escape=``"));
                    }
                };
                self.directives.push(d);
            }
            Some(d) => self.directives.push(d),
            None => {}
        }
        if is_comment(t) {
            return Ok(("", lead));
        }
        Ok((t, lead))
    }

    /// Removes a trailing escape token (plus trailing blanks) that is not itself escaped.
    /// Returns the text and whether the logical line ends here.
    fn trim_continuation(&self, line: &'a str) -> (&'a str, bool) {
        let body = line.trim_end_matches([' ', '\t']);
        let Some(before) = body.strip_suffix(self.escape) else {
            return (line, true);
        };
        if before.ends_with(self.escape) {
            return (line, true);
        }
        (before, false)
    }

    fn run(mut self) -> Result<Parsed, Diagnostic> {
        // Real Dockerfiles average well over 40 bytes per instruction; reserving up front
        // saves re-copying the node vector as it grows (measurable on large files).
        let mut nodes: Vec<Node> = Vec::with_capacity(self.src.len() / 40 + 1);
        let mut warnings = Vec::new();
        let mut comments: Vec<String> = Vec::new();
        while let Some((mut offset, mut raw)) = self.next_line()? {
            if self.current_line == 0
                && let Some(rest) = raw.strip_prefix('\u{feff}')
            {
                raw = rest;
                offset += '\u{feff}'.len_utf8();
            }
            if is_comment(raw) {
                let text = trim_newline(raw).trim_start();
                let text = text.strip_prefix('#').unwrap_or(text).trim();
                if text.is_empty() {
                    comments.clear();
                } else {
                    comments.push(text.to_owned());
                }
            }
            let (processed, lead) = self.process_line(offset, raw, true)?;
            self.current_line += 1;
            let start_line = self.current_line;
            let start = offset + lead;
            let (first, mut end_of_line) = self.trim_continuation(processed);
            if end_of_line && first.is_empty() {
                continue;
            }
            let mut line = first.to_owned();
            let mut has_empty_continuation = false;
            while !end_of_line {
                let Some((off, raw)) = self.next_line()? else {
                    break;
                };
                let (processed, _) = self.process_line(off, raw, false)?;
                self.current_line += 1;
                if is_comment(raw) {
                    continue;
                }
                if is_empty_continuation_line(processed) {
                    has_empty_continuation = true;
                    continue;
                }
                let (cont, eol) = self.trim_continuation(processed);
                line.push_str(cont);
                end_of_line = eol;
            }
            let span = Span::new(start, self.last_end.max(start));
            if has_empty_continuation {
                warnings.push(
                    Diagnostic::warning(format!("Empty continuation line found in: {line}"), span)
                        .with_hint(
                            "Empty continuation lines will become errors in a future release",
                        ),
                );
            }
            let mut node = new_node_from_line(line, self.escape, std::mem::take(&mut comments))
                .map_err(|msg| Diagnostic::error(msg, span))?;
            if can_contain_heredoc(&node) && node.original.contains("<<") {
                let heredocs = heredocs_from_line(&node.original)
                    .map_err(|msg| Diagnostic::error(msg, span))?;
                for mut doc in heredocs {
                    self.read_heredoc_body(&mut doc, start)?;
                    node.heredocs.push(doc);
                }
            }
            node.start_line = start_line;
            node.end_line = self.current_line;
            node.span = Span::new(start, self.last_end.max(start));
            nodes.push(node);
        }
        if nodes.is_empty() {
            let end = self.src.len();
            return Err(
                Diagnostic::error("file with no instructions", Span::new(end, end))
                    .with_hint("a Dockerfile needs at least a FROM instruction"),
            );
        }
        Ok(Parsed {
            nodes,
            warnings,
            escape: self.escape,
            directives: self.directives,
        })
    }

    fn read_heredoc_body(&mut self, doc: &mut Heredoc, start: usize) -> Result<(), Diagnostic> {
        while let Some((_, raw)) = self.next_line()? {
            self.current_line += 1;
            let mut candidate = trim_newline(raw);
            if doc.chomp {
                candidate = candidate.trim_start_matches('\t');
            }
            if candidate == doc.name {
                return Ok(());
            }
            doc.content.push_str(raw);
        }
        Err(Diagnostic::error(
            "unterminated heredoc",
            Span::new(start, self.last_end.max(start)),
        )
        .with_hint(format!(
            "end the heredoc with a line holding only `{}`",
            doc.name
        )))
    }
}

/// Splits a logical line and runs the keyword's line parser.
fn new_node_from_line(line: String, escape: char, comments: Vec<String>) -> Result<Node, String> {
    let cmd = split_command::split_command(&line);
    // Keywords are ASCII; anything else is unknown whatever its case.
    let keyword = cmd.keyword.to_ascii_lowercase();
    let mut node = Node {
        value: cmd.keyword.to_owned(),
        flags: cmd.flags,
        args: Vec::new(),
        sub: None,
        json: false,
        heredocs: Vec::new(),
        original: String::new(),
        start_line: 0,
        end_line: 0,
        span: Span::default(),
        prev_comment: comments,
    };
    if keyword == "onbuild" {
        if !cmd.args.is_empty() {
            let trigger = new_node_from_line(cmd.args.to_owned(), escape, Vec::new())?;
            node.sub = Some(Box::new(trigger));
        }
    } else {
        let parsed = line_parsers::dispatch(&keyword, cmd.args, escape)?;
        node.args = parsed.args;
        node.json = parsed.json;
    }
    node.original = line;
    Ok(node)
}

/// RUN, COPY and ADD in shell form (also as an ONBUILD trigger) may carry heredocs.
fn can_contain_heredoc(node: &Node) -> bool {
    let target = match (&node.sub, node.is("onbuild")) {
        (Some(sub), true) => sub,
        _ => node,
    };
    (target.is("add") || target.is("copy") || target.is("run")) && !target.json
}

/// Whether `keyword` (any case) is an instruction BuildKit's parser knows.
pub fn is_known_instruction(keyword: &str) -> bool {
    line_parsers::is_known(&keyword.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump_of(src: &str) -> String {
        dump(&parse(src).unwrap().nodes)
    }

    #[test]
    fn continuation_keeps_leading_whitespace() {
        assert_eq!(dump_of("RUN foo \\\n  bar\n"), "(run \"foo   bar\")\n");
    }

    #[test]
    fn escaped_escape_is_not_a_continuation() {
        assert_eq!(
            dump_of("ENV C a\\\\\nENV D b\n"),
            "(env \"C\" \"a\\\\\\\\\" \"\")\n(env \"D\" \"b\" \"\")\n"
        );
    }

    #[test]
    fn spans_cover_the_instruction() {
        let src = "FROM a\n  RUN x \\\n y\n";
        let p = parse(src).unwrap();
        let run = &p.nodes[1];
        assert_eq!(&src[run.span.start..run.span.end], "RUN x \\\n y");
        assert_eq!((run.start_line, run.end_line), (2, 3));
    }

    #[test]
    fn too_long_line_is_an_error() {
        let src = format!("FROM a\nLABEL x={}\n", "a".repeat(MAX_LINE_LEN));
        let err = parse(&src).unwrap_err();
        assert!(err.message.contains("max allowed size of 65535"));
    }

    #[test]
    fn empty_file_is_an_error() {
        assert_eq!(parse("").unwrap_err().message, "file with no instructions");
        assert!(parse("# only\n\n").is_err());
    }

    #[test]
    fn bom_and_directives() {
        let p = parse("\u{feff}# escape=`\nFROM a\nRUN x `\n y\n").unwrap();
        assert_eq!(p.escape, '`');
        assert_eq!(p.directives[0].name, "escape");
        assert_eq!(p.nodes[1].args, ["x  y"]);
    }
}
