//! From a source as written to what to copy: wildcard expansion, and `--parents`.
//!
//! With `--parents` BuildKit copies a directory's contents through an include pattern: the
//! source is split at its first `/./` (the pivot) into that directory and the pattern (the
//! context root and the whole source when there is no pivot), so every matched path keeps
//! the part of its path after the pivot. A path without wildcards must exist.

use super::error::CopyError;
use super::path::{contains_wildcards, dest_components, rel_path, rooted, source_components};
use super::source::{self, Match, SourceTree};
use crate::context::dockerignore::PatternMatcher;

/// One source, ready to copy.
#[derive(Debug)]
pub(super) struct Plan {
    pub(super) matches: Vec<Match>,
    /// `--parents`: only paths matching this (relative to each match) are copied.
    pub(super) include: Option<PatternMatcher>,
}

/// Plans the source `written`.
pub(super) fn plan(
    tree: &SourceTree<'_>,
    written: &str,
    parents: bool,
    follow: bool,
) -> Result<Plan, CopyError> {
    if !parents {
        return Ok(Plan {
            matches: source::expand(tree, written, follow)?,
            include: None,
        });
    }
    let (parent, pattern) = written.split_once("/./").unwrap_or(("/", written));
    // `system.NormalizePath("/", pattern)` without its leading slash: `..` stops at the top.
    let pattern = dest_components(pattern).join("/");
    if !contains_wildcards(parent) && !contains_wildcards(&pattern) {
        let required = format!("{parent}/{pattern}");
        if source::lookup(tree, &required)?.is_none() {
            let shown = source_components(&required).unwrap_or_default();
            return Err(CopyError::NotFound {
                path: rooted(&rel_path(&shown)),
            });
        }
    }
    let include = if pattern.is_empty() {
        None
    } else {
        let patterns = [pattern];
        Some(
            PatternMatcher::new(&patterns).map_err(|source| CopyError::BadPattern {
                patterns: patterns.to_vec(),
                source,
            })?,
        )
    };
    Ok(Plan {
        matches: source::expand(tree, parent, follow)?,
        include,
    })
}
