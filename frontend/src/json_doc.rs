//! The `kiln parse --format json` document: directives, warnings and every typed
//! instruction with its location.

use serde::Serialize;

use crate::diagnostics::Diagnostic;
use crate::instructions::{Instruction, parse_instruction};
use crate::parser::{Directive, Parsed};
use crate::scope::BuildOptions;
use crate::span::{LineCol, LineIndex, Span};
use crate::stages::{Base, resolve_typed};

/// The whole document.
#[derive(Debug, Serialize)]
pub struct JsonDocument {
    /// The escape token in force.
    pub escape: char,
    /// Parser directives at the top of the file.
    pub directives: Vec<Directive>,
    /// Warnings, each with its position.
    pub warnings: Vec<Located<Warning>>,
    /// The instructions in order.
    pub instructions: Vec<Located<Instruction>>,
    /// The stage graph under default build options.
    pub stages: Vec<StageSummary>,
}

/// A warning's text and byte span.
#[derive(Debug, Serialize)]
pub struct Warning {
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
    /// Byte range in the source.
    pub span: Span,
}

/// One stage of the graph, without its instructions (they are listed above).
#[derive(Debug, Serialize)]
pub struct StageSummary {
    /// Position from 0.
    pub index: usize,
    /// The `AS` name.
    pub name: Option<String>,
    /// The comment above FROM.
    pub description: String,
    /// What it starts from.
    pub base: Base,
    /// The stages it needs.
    pub deps: Vec<usize>,
    /// The 1-based line of its FROM.
    pub line: usize,
}

/// A value with where it came from.
#[derive(Debug, Serialize)]
pub struct Located<T> {
    /// Where it starts (1-based line and column).
    pub start: LineCol,
    /// Where it ends (1-based line and column, exclusive).
    pub end: LineCol,
    /// The located value (which carries its byte `span`).
    #[serde(flatten)]
    pub value: T,
}

fn locate<T>(index: &LineIndex<'_>, span: Span, value: T) -> Located<T> {
    Located {
        start: index.line_col(span.start),
        end: index.line_col(span.end),
        value,
    }
}

/// Types every instruction of `parsed` and resolves the stage graph; the first instruction
/// that does not type-check, or a stage graph error, is the error.
pub fn json_document(parsed: &Parsed, src: &str) -> Result<JsonDocument, Diagnostic> {
    let index = LineIndex::new(src);
    let typed = parsed
        .nodes
        .iter()
        .map(|n| parse_instruction(n, src))
        .collect::<Result<Vec<_>, _>>()?;
    let graph = resolve_typed(typed.clone(), parsed, &BuildOptions::default())?;
    let instructions = typed
        .into_iter()
        .zip(&parsed.nodes)
        .map(|(i, n)| locate(&index, n.span, i))
        .collect();
    let warnings = parsed
        .warnings
        .iter()
        .map(|w| {
            let warning = Warning {
                message: w.message.clone(),
                hint: w.hint.clone(),
                span: w.span,
            };
            locate(&index, w.span, warning)
        })
        .collect();
    let stages = graph
        .stages
        .iter()
        .map(|s| StageSummary {
            index: s.index,
            name: s.name.clone(),
            description: s.description.clone(),
            base: s.base.clone(),
            deps: s.deps.iter().copied().collect(),
            line: index.line_col(s.from.span.start).line,
        })
        .collect();
    Ok(JsonDocument {
        escape: parsed.escape,
        stages,
        directives: parsed.directives.clone(),
        warnings,
        instructions,
    })
}
