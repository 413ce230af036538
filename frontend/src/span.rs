//! Source positions: byte ranges into the Dockerfile text, turned into line:col for humans.

use serde::Serialize;

/// A byte range `[start, end)` into the Dockerfile source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Span {
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
}

impl Span {
    /// A span covering `[start, end)`.
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    /// True for a zero-length span (a point).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(s: Span) -> Self {
        miette::SourceSpan::new(s.start.into(), s.len())
    }
}

/// A 1-based line and column (columns count characters, as editors do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LineCol {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column in characters.
    pub col: usize,
}

/// Converts a byte offset into a 1-based line and column.
pub fn line_col(src: &str, offset: usize) -> LineCol {
    let offset = floor_char_boundary(src, offset.min(src.len()));
    let before = &src[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = src[line_start..offset].chars().count() + 1;
    LineCol { line, col }
}

/// Line starts of a source text, for many [`line_col`] look-ups without rescanning.
#[derive(Debug, Clone)]
pub struct LineIndex<'a> {
    src: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    /// Indexes `src` once.
    pub fn new(src: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            src.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { src, starts }
    }

    /// The 1-based line and column of a byte offset (same answer as [`line_col`]).
    pub fn line_col(&self, offset: usize) -> LineCol {
        let offset = floor_char_boundary(self.src, offset.min(self.src.len()));
        let line = self.starts.partition_point(|&s| s <= offset);
        let line_start = self.starts[line - 1];
        let col = self.src[line_start..offset].chars().count() + 1;
        LineCol { line, col }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let src = "FROM a\nRUN é x\n";
        assert_eq!(line_col(src, 0), LineCol { line: 1, col: 1 });
        assert_eq!(line_col(src, 7), LineCol { line: 2, col: 1 });
        // "RUN é " is 7 bytes but 6 chars: the column counts characters.
        assert_eq!(line_col(src, 14), LineCol { line: 2, col: 7 });
    }

    #[test]
    fn line_index_agrees_with_line_col() {
        let src = "FROM a\n\nRUN é x\nlast";
        let idx = LineIndex::new(src);
        for off in 0..=src.len() + 2 {
            assert_eq!(idx.line_col(off), line_col(src, off), "offset {off}");
        }
    }
}
