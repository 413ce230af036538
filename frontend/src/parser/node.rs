//! The Dockerfile AST: one [`Node`] per instruction, shaped like BuildKit's `parser.Node`
//! but without its linked list (arguments are a `Vec`, ONBUILD's trigger a nested node).

use serde::Serialize;

use crate::span::Span;

/// One parsed instruction line (after continuations were joined), before any expansion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// The keyword exactly as written (`run`, `RUN`, `Run`…); compare with [`Node::keyword`].
    pub value: String,
    /// Leading `--name[=value]` words, verbatim and in order (the `--` terminator is dropped).
    pub flags: Vec<String>,
    /// The arguments as the instruction's line parser split them (quotes not yet processed).
    pub args: Vec<String>,
    /// ONBUILD's trigger instruction, parsed like a top-level line.
    pub sub: Option<Box<Node>>,
    /// True when the arguments came from a JSON array (exec form).
    pub json: bool,
    /// Heredoc bodies that followed this line, in the order they were named.
    pub heredocs: Vec<Heredoc>,
    /// The joined logical line this node was parsed from.
    pub original: String,
    /// 1-based first physical line of the instruction.
    pub start_line: usize,
    /// 1-based last physical line (including continuation and heredoc lines).
    pub end_line: usize,
    /// Byte range in the source from the keyword to the end of the last line.
    pub span: Span,
    /// Comment lines directly above the instruction (without `#`), used for stage descriptions.
    pub prev_comment: Vec<String>,
}

impl Node {
    /// The keyword lowercased, as every dispatch table compares it.
    pub fn keyword(&self) -> String {
        self.value.to_ascii_lowercase()
    }

    /// Whether the keyword is `kw` (lowercase), in any case.
    pub fn is(&self, kw: &str) -> bool {
        self.value.eq_ignore_ascii_case(kw)
    }
}

/// A heredoc attached to an instruction (`<<EOF`, `<<-EOF`, `<<'EOF'`, `3<<EOF`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// The terminator word with quotes removed.
    pub name: String,
    /// The body, every line with its newline, terminator excluded.
    pub content: String,
    /// False when any part of the delimiter was quoted: the body is then taken literally.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the body and the terminator line.
    pub chomp: bool,
    /// The `N` of `N<<EOF` (0 when absent).
    pub file_descriptor: u32,
}
