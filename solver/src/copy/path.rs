//! Lexical path helpers: splitting COPY's slash paths into components the way Go's
//! `filepath.Join("/", p)` cleans them, and the small predicates BuildKit applies to them.
//!
//! Everything here is pure string work; nothing touches the filesystem.

use std::path::{Path, PathBuf};

/// The components of `path` after cleaning, or `None` when a `..` climbs above the root.
///
/// `path` is taken relative to the root whether or not it starts with `/`.
pub(super) fn source_components(path: &str) -> Option<Vec<String>> {
    let mut parts: Vec<String> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            _ => parts.push(part.to_owned()),
        }
    }
    Some(parts)
}

/// The components of an absolute destination; `..` stops at `/` as it does in Go's `Clean`.
pub(super) fn dest_components(path: &str) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(part.to_owned()),
        }
    }
    parts
}

/// Whether a destination names a directory by its spelling: a trailing `/` or `/.`
/// (BuildKit creates such a destination before copying into it).
pub(super) fn names_directory(dest: &str) -> bool {
    dest.is_empty() || dest.ends_with('/') || dest.ends_with("/.") || dest == "."
}

/// BuildKit's `containsWildcards`: `*`, `?` or `[` not escaped by a backslash.
pub(super) fn contains_wildcards(name: &str) -> bool {
    let mut bytes = name.bytes();
    while let Some(byte) = bytes.next() {
        match byte {
            b'\\' => {
                bytes.next();
            }
            b'*' | b'?' | b'[' => return true,
            _ => {}
        }
    }
    false
}

/// A relative path built from components.
pub(super) fn rel_path<S: AsRef<str>>(components: &[S]) -> PathBuf {
    components.iter().map(AsRef::as_ref).collect()
}

/// A relative path as the slash path `.dockerignore` and `--exclude` patterns are matched on.
pub(super) fn slash_path(rel: &Path) -> String {
    let parts: Vec<_> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect();
    parts.join("/")
}

/// A relative path shown as the absolute path it is inside its root.
pub(super) fn rooted(rel: &Path) -> String {
    format!("/{}", slash_path(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_cleaned_and_may_not_escape() {
        assert_eq!(source_components("./a//b/./c/").unwrap(), ["a", "b", "c"]);
        assert_eq!(source_components("/a/../b").unwrap(), ["b"]);
        assert!(source_components("/").unwrap().is_empty());
        assert!(source_components(".").unwrap().is_empty());
        assert_eq!(source_components("../x"), None);
        assert_eq!(source_components("/../x"), None);
        assert_eq!(source_components("a/../../x"), None);
    }

    #[test]
    fn destinations_stop_at_the_root() {
        assert_eq!(dest_components("/../app/./x/"), ["app", "x"]);
        assert!(dest_components("/").is_empty());
    }

    #[test]
    fn directory_spellings() {
        assert!(names_directory("/app/"));
        assert!(names_directory("/app/."));
        assert!(names_directory("/"));
        assert!(!names_directory("/app"));
    }

    #[test]
    fn wildcards_and_escapes() {
        assert!(contains_wildcards("*.txt"));
        assert!(contains_wildcards("a?"));
        assert!(contains_wildcards("[ab]"));
        assert!(!contains_wildcards(r"a\*b"));
        assert!(!contains_wildcards("plain"));
    }

    #[test]
    fn showing_paths() {
        assert_eq!(rooted(&rel_path(&["a", "b"])), "/a/b");
        assert_eq!(rooted(Path::new("")), "/");
    }
}
