//! `.dockerignore` matching with Docker's own semantics (moby/patternmatcher), not gitignore's.
//!
//! What differs from gitignore, and why a gitignore crate will not do: a pattern is anchored at
//! the context root (`foo` does not match `a/foo`), a trailing `/` is cleaned away and means
//! nothing, a pattern that matches a directory matches everything under it, and the last
//! matching pattern wins, `!` exceptions included. Globs become regular expressions the way
//! Docker builds them, Go regexp quirks and all, so that kiln sends exactly the files Docker
//! would and a context hashes the same.
//!
//! Paths are slash-separated and relative to the context root; they are not cleaned.

mod file;
mod glob;
mod goregex;
mod path;
mod pattern;

pub use file::read_ignore_file;
pub use path::clean_path;
pub use pattern::{MatchStrategy, Pattern, Translation, translate};

use path::parent_dir;

/// Why a pattern list cannot be used; each variant names the pattern at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatternError {
    /// An exception with nothing to except: `!` alone.
    #[error("illegal exclusion pattern: {pattern:?}")]
    IllegalExclusion {
        /// The pattern as cleaned.
        pattern: String,
    },
    /// A pattern Go's glob syntax or Go's regexp refuses. Docker refuses the first kind when
    /// the matcher is built and the second on every match, and so does kiln.
    #[error("syntax error in pattern {pattern:?}: {reason}")]
    BadPattern {
        /// The pattern as cleaned, without its `!`.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A [`MatchInfo`] that came from a matcher with another number of patterns.
    #[error("match info holds {got} parent results but the matcher has {expected} patterns")]
    MatchInfoMismatch {
        /// How many patterns the matcher has.
        expected: usize,
        /// How many results the match info holds.
        got: usize,
    },
}

/// Which patterns matched a directory, so its entries can be decided without re-testing
/// the directories above them. `MatchInfo::default()` means "nothing known".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchInfo {
    parent_matched: Vec<bool>,
}

/// An ordered list of `.dockerignore` patterns, `!` exceptions included.
#[derive(Debug, Clone)]
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

impl PatternMatcher {
    /// Builds a matcher as Docker's `New()` does: each pattern is trimmed, dropped if empty,
    /// cleaned like `filepath.Clean` (so `docs/` is `docs`), split from a leading `!`, and
    /// checked against Go's glob syntax.
    pub fn new(patterns: &[impl AsRef<str>]) -> Result<Self, PatternError> {
        let mut matcher = Self {
            patterns: Vec::with_capacity(patterns.len()),
            exclusions: false,
        };
        for raw in patterns {
            let trimmed = raw.as_ref().trim();
            if trimmed.is_empty() {
                continue;
            }
            // Cleaned before the `!` comes off, as Docker does: `!a/../b` becomes `b`.
            let cleaned = clean_path(trimmed);
            let (text, exclusion) = match cleaned.strip_prefix('!') {
                Some("") => return Err(PatternError::IllegalExclusion { pattern: cleaned }),
                Some(rest) => (rest.to_owned(), true),
                None => (cleaned, false),
            };
            glob::check(&text).map_err(|reason| PatternError::BadPattern {
                pattern: text.clone(),
                reason: reason.to_owned(),
            })?;
            matcher.exclusions |= exclusion;
            matcher.patterns.push(Pattern::new(text, exclusion));
        }
        Ok(matcher)
    }

    /// Whether `path` is ignored: the last pattern that matches it, or one of its parent
    /// directories, decides (Docker's `MatchesOrParentMatches`).
    pub fn matches(&self, path: &str) -> Result<bool, PatternError> {
        let parent = parent_dir(path);
        let mut matched = false;
        for pattern in &self.patterns {
            // Only a pattern that could change the answer is tried.
            if pattern.is_exclusion() != matched {
                continue;
            }
            if pattern.matches(path)? || matches_a_parent(pattern, &parent) {
                matched = !pattern.is_exclusion();
            }
        }
        Ok(matched)
    }

    /// Like [`Self::matches`], but takes what the matcher found for `path`'s parent directory
    /// instead of re-testing every ancestor: the fast path for a walker. Pass
    /// `MatchInfo::default()` for an entry of the context root (or when nothing is known) and
    /// the returned info to the entries of `path` if it is a directory.
    pub fn matches_using_parent_results(
        &self,
        path: &str,
        parent: MatchInfo,
    ) -> Result<(bool, MatchInfo), PatternError> {
        let known = parent.parent_matched;
        if !known.is_empty() && known.len() != self.patterns.len() {
            return Err(PatternError::MatchInfoMismatch {
                expected: self.patterns.len(),
                got: known.len(),
            });
        }
        let mut info = MatchInfo {
            parent_matched: vec![false; self.patterns.len()],
        };
        let mut matched = false;
        for (index, pattern) in self.patterns.iter().enumerate() {
            // A pattern that matched the parent matches everything below it.
            let mut hit = known.get(index).copied().unwrap_or(false);
            if !hit {
                if pattern.is_exclusion() != matched {
                    continue;
                }
                hit = pattern.matches(path)?;
                if !hit && known.is_empty() {
                    hit = matches_a_parent(pattern, &parent_dir(path));
                }
            }
            if let Some(slot) = info.parent_matched.get_mut(index) {
                *slot = hit;
            }
            if hit {
                matched = !pattern.is_exclusion();
            }
        }
        Ok((matched, info))
    }

    /// Whether any pattern is a `!` exception. A walker must then look inside an ignored
    /// directory, since something below it may be re-included.
    pub fn exclusions(&self) -> bool {
        self.exclusions
    }

    /// The patterns, cleaned, in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }
}

/// Whether `pattern` matches one of the directories of `parent` (`a`, `a/b`, ... `parent`).
fn matches_a_parent(pattern: &Pattern, parent: &str) -> bool {
    if parent == "." {
        return false;
    }
    let prefixes = parent.match_indices('/').map(|(slash, _)| &parent[..slash]);
    // Docker ignores errors here: the path itself was already tried with the same pattern.
    prefixes
        .chain([parent])
        .any(|dir| pattern.matches(dir).unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::{MatchInfo, PatternError, PatternMatcher};

    fn ignored(patterns: &[&str], path: &str) -> bool {
        PatternMatcher::new(patterns)
            .unwrap()
            .matches(path)
            .unwrap()
    }

    #[test]
    fn docker_not_gitignore() {
        assert!(!ignored(&["foo"], "a/foo"));
        assert!(ignored(&["foo"], "foo/bar"));
        assert!(ignored(&["docs/"], "docs"));
        assert!(
            !ignored(&["/docs"], "docs/x"),
            "New() keeps the leading slash"
        );
        assert!(ignored(&["**/foo"], "a/b/foo/c"));
        assert!(!ignored(&["*.go"], "a/b.go"));
    }

    #[test]
    fn last_match_wins() {
        assert!(!ignored(&["docs", "!docs/README.md"], "docs/README.md"));
        assert!(ignored(&["!fileutils.go", "*.go"], "fileutils.go"));
        assert!(!ignored(&["**", "!util/docker/web"], "util/docker/web/foo"));
        assert!(ignored(
            &["**", "!util/docker/web", "util/docker/web/foo"],
            "util/docker/web/foo"
        ));
    }

    #[test]
    fn new_cleans_and_checks() {
        let matcher =
            PatternMatcher::new(&[" docs ", "", "!./docs/README.md/", "a//b/../c"]).unwrap();
        let texts: Vec<&str> = matcher.patterns().iter().map(|p| p.as_str()).collect();
        // `!./docs` keeps its `./`: the `!` hides it from Clean, as in Docker.
        assert_eq!(texts, ["docs", "./docs/README.md", "a/c"]);
        assert!(matcher.exclusions());
        assert_eq!(
            PatternMatcher::new(&["ok", " ! "]).unwrap_err(),
            PatternError::IllegalExclusion {
                pattern: "!".to_owned()
            }
        );
        let err = PatternMatcher::new(&["ok", "a["]).unwrap_err();
        assert!(err.to_string().contains("\"a[\""), "{err}");
    }

    #[test]
    fn regexp_errors_come_at_match_time() {
        let matcher = PatternMatcher::new(&["[Local-Only]/"]).unwrap();
        for _ in 0..2 {
            assert!(matcher.matches("x").is_err());
            assert!(
                matcher
                    .matches_using_parent_results("x", MatchInfo::default())
                    .is_err()
            );
        }
        // Never reached, so never reported.
        let matcher = PatternMatcher::new(&["!x[z-a]"]).unwrap();
        assert_eq!(matcher.matches("x"), Ok(false));
    }

    #[test]
    fn parent_results_agree_with_full_matching() {
        let patterns = ["**", "!util/docker/web", "a/*/c", "!a/b/c/keep*", "x/**"];
        let matcher = PatternMatcher::new(&patterns).unwrap();
        for path in [
            "util/docker/web/foo",
            "util/x",
            "a/b/c/d",
            "a/b/c/keep.txt",
            "x/y/z",
            "x",
        ] {
            let parts: Vec<&str> = path.split('/').collect();
            let mut info = MatchInfo::default();
            let mut walked = false;
            for depth in 1..=parts.len() {
                (walked, info) = matcher
                    .matches_using_parent_results(&parts[..depth].join("/"), info)
                    .unwrap();
            }
            assert_eq!(walked, matcher.matches(path).unwrap(), "{path}");
            let fresh = matcher
                .matches_using_parent_results(path, MatchInfo::default())
                .unwrap()
                .0;
            assert_eq!(fresh, walked, "{path}");
        }
        let wrong = MatchInfo {
            parent_matched: vec![true],
        };
        assert!(matches!(
            matcher.matches_using_parent_results("a", wrong),
            Err(PatternError::MatchInfoMismatch {
                expected: 5,
                got: 1
            })
        ));
    }

    #[test]
    fn never_panics() {
        let nasty = [
            "\u{feff}**",
            "\u{feff}",
            "**\u{feff}",
            "[",
            "\\",
            "[\\",
            "[a-",
            "ab\\",
            "\0",
            "[\u{10ffff}-\u{0}]",
            "\\x{D800}",
            "[\\x{D800}-\\x{DFFF}]",
            "*\\Q",
            "\\p{",
            "[[:",
            "[[:x",
            "..",
            "/",
            "!",
            "!!",
            "é*ü?",
        ];
        for a in nasty {
            for b in nasty {
                if let Ok(matcher) = PatternMatcher::new(&[a, b]) {
                    for path in nasty {
                        let _ = matcher.matches(path);
                        let _ = matcher.matches_using_parent_results(path, MatchInfo::default());
                    }
                }
            }
        }
    }
}
