//! The `kiln parse --format json` document: directives, warnings and every typed
//! instruction with its location.

use serde::Serialize;

use crate::diagnostics::Diagnostic;
use crate::instructions::{Instruction, parse_instruction};
use crate::parser::{Directive, Parsed};
use crate::span::{LineCol, Span, line_col};

/// The whole document.
#[derive(Debug, Serialize)]
pub struct JsonDocument {
    /// The escape token in force.
    pub escape: char,
    /// Parser directives at the top of the file.
    pub directives: Vec<Directive>,
    /// Warnings, each with its position.
    pub warnings: Vec<Located<String>>,
    /// The instructions in order.
    pub instructions: Vec<Located<Instruction>>,
}

/// A value with where it came from.
#[derive(Debug, Serialize)]
pub struct Located<T> {
    /// Where it starts (1-based line and column).
    pub start: LineCol,
    /// Where it ends (1-based line and column, exclusive).
    pub end: LineCol,
    /// Byte range in the source.
    pub span: Span,
    /// The located value.
    #[serde(flatten)]
    pub value: T,
}

fn locate<T>(src: &str, span: Span, value: T) -> Located<T> {
    Located {
        start: line_col(src, span.start),
        end: line_col(src, span.end),
        span,
        value,
    }
}

/// Types every instruction of `parsed`; the first instruction that does not type-check is
/// the error.
pub fn json_document(parsed: &Parsed, src: &str) -> Result<JsonDocument, Diagnostic> {
    let instructions = parsed
        .nodes
        .iter()
        .map(|n| parse_instruction(n, src).map(|i| locate(src, n.span, i)))
        .collect::<Result<Vec<_>, _>>()?;
    let warnings = parsed
        .warnings
        .iter()
        .map(|w| locate(src, w.span, w.message.clone()))
        .collect();
    Ok(JsonDocument {
        escape: parsed.escape,
        directives: parsed.directives.clone(),
        warnings,
        instructions,
    })
}
