//! Finding COPY sources in a source root: cleaning, following symlinks without leaving the
//! root, `.dockerignore` visibility, and wildcard expansion.
//!
//! BuildKit resolves a source with `fs.RootPath`, which treats the root as `/`: an absolute
//! symlink target starts again at the root and `..` stops there. kiln does the same for a
//! stage or image filesystem. In the build context, which is a host directory, a symlink
//! that would climb out of it or that points at an absolute host path is refused instead,
//! naming the link (BuildKit would resolve it inside the context and most often report
//! "not found").
//!
//! `.dockerignore`d paths do not exist here, as they do not exist in the context BuildKit is
//! sent: a path is visible unless the ignore closure says so, and an ignored directory is
//! still there when something below it is re-included by a `!` pattern.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::fs::{self, Metadata};
use std::io;
use std::path::{Component, Path, PathBuf};

use super::error::CopyError;
use super::glob;
use super::path::{contains_wildcards, rel_path, rooted, slash_path, source_components};

/// Symlinks followed while resolving one path before giving up: the one limit of
/// [`crate::fsutil::root_path`] (containerd's).
pub(super) const MAX_LINKS: usize = crate::fsutil::root_path::MAX_SYMLINK_HOPS;

/// Where COPY reads from: the build context, or the filesystem of a stage or image.
pub struct SourceTree<'a> {
    /// The directory that is `/` for the sources.
    pub root: &'a Path,
    /// Whether a relative slash path is excluded by `.dockerignore`; the matcher answers for
    /// parents too, so the closure is simply called for each path.
    pub ignore: Option<&'a dyn Fn(&str) -> bool>,
    /// Whether the ignore rules hold `!` exceptions, so an ignored directory may still hold
    /// visible entries; when false an ignored directory is skipped without looking inside.
    pub ignore_has_exceptions: bool,
    /// The build context: ownership becomes 0:0 and symlinks may not lead out of it.
    pub is_context: bool,
}

impl fmt::Debug for SourceTree<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceTree")
            .field("root", &self.root)
            .field("ignore", &self.ignore.map(|_| "Fn(&str) -> bool"))
            .field("ignore_has_exceptions", &self.ignore_has_exceptions)
            .field("is_context", &self.is_context)
            .finish()
    }
}

impl SourceTree<'_> {
    fn root_kind(&self) -> &'static str {
        if self.is_context {
            "build context"
        } else {
            "source filesystem"
        }
    }

    /// Whether the ignore closure excludes `rel` itself (parents included, by the matcher).
    pub(super) fn ignored(&self, rel: &Path) -> bool {
        // The root itself is never ignored.
        !rel.as_os_str().is_empty() && self.ignore.is_some_and(|ignore| ignore(&slash_path(rel)))
    }

    /// Whether an ignored directory may hold visible entries and so must be looked into.
    pub(super) fn may_reinclude(&self) -> bool {
        self.ignore_has_exceptions
    }

    /// Whether `rel` is absent from the context as BuildKit would receive it.
    fn hidden(&self, rel: &Path, is_dir: bool) -> Result<bool, CopyError> {
        if !self.ignored(rel) {
            return Ok(false);
        }
        if is_dir && self.ignore_has_exceptions {
            return Ok(!self.has_visible_descendant(rel)?);
        }
        Ok(true)
    }

    fn has_visible_descendant(&self, rel: &Path) -> Result<bool, CopyError> {
        let abs = self.root.join(rel);
        let entries = fs::read_dir(&abs).map_err(CopyError::io("read directory", &abs))?;
        for entry in entries {
            let entry = entry.map_err(CopyError::io("read directory", &abs))?;
            let child = rel.join(entry.file_name());
            if !self.ignored(&child) {
                return Ok(true);
            }
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if is_dir && self.has_visible_descendant(&child)? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// A source entry found in the tree.
#[derive(Debug)]
pub(super) struct Found {
    /// Its path relative to the root, symlinks resolved.
    pub(super) rel: PathBuf,
    /// Its path on the host.
    pub(super) abs: PathBuf,
    /// Its own metadata (a symlink's, when the last component was not followed).
    pub(super) meta: Metadata,
}

/// One source after wildcard expansion.
#[derive(Debug)]
pub(super) struct Match {
    /// The last component of the path as matched, before symlinks were followed: the name
    /// a file takes inside a destination directory.
    pub(super) name: OsString,
    /// The entry it resolved to.
    pub(super) found: Found,
}

/// Expands one source as written after the flags: cleaned, wildcards matched per component
/// in lexical order, each match followed if it is a symlink and `follow`. A wildcard that matches
/// nothing gives no matches (BuildKit's Dockerfile frontend allows empty wildcards); a
/// missing plain path, or a missing directory before the first wildcard, is an error.
pub(super) fn expand(
    tree: &SourceTree<'_>,
    written: &str,
    follow: bool,
) -> Result<Vec<Match>, CopyError> {
    let components = source_components(written).ok_or_else(|| CopyError::SourceOutsideRoot {
        path: written.to_owned(),
        root_kind: tree.root_kind(),
    })?;
    let Some(split) = components.iter().position(|c| contains_wildcards(c)) else {
        let found = resolve(tree, written, &rel_path(&components), follow)?.ok_or_else(|| {
            CopyError::NotFound {
                path: rooted(&rel_path(&components)),
            }
        })?;
        let name = components.last().map(OsString::from).unwrap_or_default();
        return Ok(vec![Match { name, found }]);
    };
    let (base, pattern) = components.split_at(split);
    let base_path = rel_path(base);
    let base = resolve(tree, written, &base_path, true)?.ok_or_else(|| {
        CopyError::WildcardBaseMissing {
            path: rooted(&base_path),
        }
    })?;
    if !base.meta.is_dir() {
        return Ok(Vec::new());
    }
    let mut matched = Vec::new();
    match_components(tree, &base.rel, pattern, &mut matched)?;
    matched
        .into_iter()
        .map(|rel| {
            // A dangling symlink matched by a wildcard: BuildKit's lstat of its target fails.
            let found = resolve(tree, written, &rel, follow)?
                .ok_or_else(|| CopyError::WildcardBaseMissing { path: rooted(&rel) })?;
            let name = rel.file_name().map(OsString::from).unwrap_or_default();
            Ok(Match { name, found })
        })
        .collect()
}

/// Looks a path up with every symlink followed; `None` when it is missing or hidden.
pub(super) fn lookup(tree: &SourceTree<'_>, path: &str) -> Result<Option<Found>, CopyError> {
    let components = source_components(path).ok_or_else(|| CopyError::SourceOutsideRoot {
        path: path.to_owned(),
        root_kind: tree.root_kind(),
    })?;
    resolve(tree, path, &rel_path(&components), true)
}

/// Collects, depth first in lexical order like Go's `filepath.Walk`, the visible paths below
/// `dir` whose components match `pattern` one for one. Symlinked directories are not
/// entered, as `Walk` does not enter them.
fn match_components(
    tree: &SourceTree<'_>,
    dir: &Path,
    pattern: &[String],
    out: &mut Vec<PathBuf>,
) -> Result<(), CopyError> {
    let Some((first, rest)) = pattern.split_first() else {
        return Ok(());
    };
    let abs = tree.root.join(dir);
    let mut entries = Vec::new();
    for entry in fs::read_dir(&abs).map_err(CopyError::io("read directory", &abs))? {
        let entry = entry.map_err(CopyError::io("read directory", &abs))?;
        let is_dir = entry
            .file_type()
            .map_err(CopyError::io("lstat", entry.path()))?
            .is_dir();
        entries.push((entry.file_name(), is_dir));
    }
    entries.sort();
    for (name, is_dir) in entries {
        if !glob::matches(first, &name.to_string_lossy()) {
            continue;
        }
        let rel = dir.join(&name);
        if tree.hidden(&rel, is_dir)? {
            continue;
        }
        if rest.is_empty() {
            out.push(rel);
        } else if is_dir {
            match_components(tree, &rel, rest, out)?;
        }
    }
    Ok(())
}

/// Resolves `rel` (already clean) inside the tree, following symlinks in every component,
/// and the last one too when `follow_last`. `None` when it does not exist or is hidden.
pub(super) fn resolve(
    tree: &SourceTree<'_>,
    written: &str,
    rel: &Path,
    follow_last: bool,
) -> Result<Option<Found>, CopyError> {
    let mut pending: VecDeque<OsString> =
        rel.components().map(|c| c.as_os_str().to_owned()).collect();
    let mut current = PathBuf::new();
    let mut links = 0;
    while let Some(component) = pending.pop_front() {
        let candidate = current.join(&component);
        let abs = tree.root.join(&candidate);
        // `current` holds only real directories, so the host never follows a link here.
        let meta = match fs::symlink_metadata(&abs) {
            Ok(meta) => meta,
            Err(err) if is_absent(&err) => return Ok(None),
            Err(err) => return Err(CopyError::io("lstat", abs)(err)),
        };
        let last = pending.is_empty();
        if meta.file_type().is_symlink() && (follow_last || !last) {
            links += 1;
            if links > MAX_LINKS {
                return Err(CopyError::TooManySymlinks {
                    path: written.to_owned(),
                });
            }
            if tree.hidden(&candidate, false)? {
                return Ok(None);
            }
            let target = fs::read_link(&abs).map_err(CopyError::io("readlink", &abs))?;
            let escape = || CopyError::SymlinkEscapes {
                path: written.to_owned(),
                link: slash_path(&candidate),
                target: target.to_string_lossy().into_owned(),
            };
            let mut base = if target.is_absolute() {
                if tree.is_context {
                    return Err(escape());
                }
                PathBuf::new()
            } else {
                current.clone()
            };
            let mut spliced = VecDeque::new();
            for part in target.components() {
                match part {
                    Component::Normal(name) => spliced.push_back(name.to_owned()),
                    Component::ParentDir => {
                        // `..` from a link is applied to where the link lives; in the
                        // context it may not climb above the root.
                        if spliced.pop_back().is_none() && !base.pop() && tree.is_context {
                            return Err(escape());
                        }
                    }
                    Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
                }
            }
            spliced.extend(pending.drain(..));
            pending = spliced;
            current = base;
            continue;
        }
        if !last && !meta.is_dir() {
            return Ok(None);
        }
        current = candidate;
        if last {
            return finish(tree, current, abs, meta);
        }
    }
    // Nothing left: `current` is the root, or where the last symlink led. The root is
    // followed if it is itself a link: it is the caller's directory, not the tree's.
    let abs = tree.root.join(&current);
    let meta = if current.as_os_str().is_empty() {
        fs::metadata(&abs)
    } else {
        fs::symlink_metadata(&abs)
    };
    match meta {
        Ok(meta) => finish(tree, current, abs, meta),
        Err(err) if is_absent(&err) => Ok(None),
        Err(err) => Err(CopyError::io("lstat", abs)(err)),
    }
}

fn finish(
    tree: &SourceTree<'_>,
    rel: PathBuf,
    abs: PathBuf,
    meta: Metadata,
) -> Result<Option<Found>, CopyError> {
    if tree.hidden(&rel, meta.is_dir())? {
        return Ok(None);
    }
    Ok(Some(Found { rel, abs, meta }))
}

/// Errors that mean "no such path" rather than a failure to look.
pub(super) fn is_absent(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copy::test_support::Scratch;

    fn tree(root: &Path) -> SourceTree<'_> {
        SourceTree {
            root,
            ignore: None,
            ignore_has_exceptions: false,
            is_context: true,
        }
    }

    fn names(matches: &[Match]) -> Vec<String> {
        matches.iter().map(|m| slash_path(&m.found.rel)).collect()
    }

    #[test]
    fn wildcards_match_per_component_in_lexical_order() {
        let s = Scratch::new("src-wild");
        for f in ["b.txt", "a.txt", "c.md", "d/x.txt", "e/x.txt", "e/y.md"] {
            s.file(f, "");
        }
        let t = tree(s.path());
        assert_eq!(
            names(&expand(&t, "*.txt", true).unwrap()),
            ["a.txt", "b.txt"]
        );
        assert_eq!(
            names(&expand(&t, "*/x.txt", true).unwrap()),
            ["d/x.txt", "e/x.txt"]
        );
        assert_eq!(
            names(&expand(&t, "/e/*", true).unwrap()),
            ["e/x.txt", "e/y.md"]
        );
        assert!(expand(&t, "*.none", true).unwrap().is_empty());
        let err = expand(&t, "nodir/*.txt", true).unwrap_err();
        assert_eq!(err.to_string(), "lstat /nodir: no such file or directory");
    }

    #[test]
    fn symlinks_resolve_inside_a_rootfs() {
        let s = Scratch::new("src-rootfs");
        s.file("usr/lib/libx.so", "x");
        s.dir("lib");
        s.symlink("lib/libx.so", "/usr/lib/libx.so");
        s.symlink("up", "../../../usr");
        let rootfs = SourceTree {
            is_context: false,
            ..tree(s.path())
        };
        let found = lookup(&rootfs, "/lib/libx.so").unwrap().unwrap();
        assert_eq!(found.rel, Path::new("usr/lib/libx.so"));
        let found = lookup(&rootfs, "up/lib").unwrap().unwrap();
        assert_eq!(found.rel, Path::new("usr/lib"));
        // In the context both links lead out of it.
        let context = tree(s.path());
        assert!(matches!(
            lookup(&context, "lib/libx.so").unwrap_err(),
            CopyError::SymlinkEscapes { .. }
        ));
        assert!(matches!(
            lookup(&context, "up/lib").unwrap_err(),
            CopyError::SymlinkEscapes { .. }
        ));
    }

    #[test]
    fn ignored_paths_are_invisible_unless_reincluded() {
        let s = Scratch::new("src-ignore");
        s.file("secret/key", "");
        s.file("secret/public.pem", "");
        s.file("keep.txt", "");
        let ignore =
            |p: &str| p == "secret" || (p.starts_with("secret/") && p != "secret/public.pem");
        let t = SourceTree {
            ignore: Some(&ignore),
            ignore_has_exceptions: true,
            ..tree(s.path())
        };
        assert!(lookup(&t, "secret/key").unwrap().is_none());
        assert!(lookup(&t, "secret/public.pem").unwrap().is_some());
        assert!(
            lookup(&t, "secret").unwrap().is_some(),
            "kept for its exception"
        );
        assert_eq!(
            names(&expand(&t, "*", true).unwrap()),
            ["keep.txt", "secret"]
        );
        let strict = SourceTree {
            ignore_has_exceptions: false,
            ..t
        };
        assert!(lookup(&strict, "secret").unwrap().is_none());
    }
}
