//! Errors and warnings of the frontend: a message, the source span it is about and an
//! optional hint. Rendering (file:line:col, the source line, a caret) happens with miette.

use std::fmt;

use serde::Serialize;

use crate::span::Span;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The Dockerfile cannot be built.
    Error,
    /// The Dockerfile builds, but something is likely wrong.
    Warning,
}

/// An error or warning located in a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, in BuildKit's words where BuildKit has words for it.
    pub message: String,
    /// Where it is.
    pub span: Span,
    /// What to do about it, when there is something useful to say.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// An error at `span`.
    pub fn error(message: impl Into<String>, span: Span) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            span,
            hint: None,
        }
    }

    /// A warning at `span`.
    pub fn warning(message: impl Into<String>, span: Span) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            message: message.into(),
            span,
            hint: None,
        }
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Renders this diagnostic as a miette report over `source` named `file`.
    pub fn report(&self, file: &str, source: &str) -> miette::Report {
        let mut labels = vec![miette::LabeledSpan::at(self.span, self.label())];
        if self.span.is_empty() {
            labels = vec![miette::LabeledSpan::at_offset(
                self.span.start,
                self.label(),
            )];
        }
        let severity = match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        };
        let mut diag = miette::MietteDiagnostic::new(self.message.clone())
            .with_severity(severity)
            .with_labels(labels);
        if let Some(h) = &self.hint {
            diag = diag.with_help(h.clone());
        }
        miette::Report::new(diag)
            .with_source_code(miette::NamedSource::new(file, source.to_owned()))
    }

    fn label(&self) -> &'static str {
        match self.severity {
            Severity::Error => "here",
            Severity::Warning => "warning here",
        }
    }

    /// `file:line:col: message`, the one-line form used in plain logs.
    pub fn one_line(&self, file: &str, source: &str) -> String {
        let lc = crate::span::line_col(source, self.span.start);
        format!("{file}:{}:{}: {}", lc.line, lc.col, self.message)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

/// Finds `needle` inside the part of `src` covered by `within` and returns its span; falls back
/// to `within` itself when it is not there (for example after continuation lines were joined).
pub fn span_of(src: &str, within: Span, needle: &str) -> Span {
    let end = within.end.min(src.len());
    let start = within.start.min(end);
    if needle.is_empty() {
        return within;
    }
    match src.get(start..end).and_then(|s| s.find(needle)) {
        Some(i) => Span::new(start + i, start + i + needle.len()),
        None => within,
    }
}
