//! Copying source entries into the upper: the recursive part of fsutil's `copier`.
//!
//! Entries are visited in name order. A directory entry is created when it is selected
//! (visible, included by `--parents`, not `--exclude`d); one that is not selected is still
//! entered when something below it may be, and is created, with its source attributes, only
//! once something inside it is written (fsutil's delayed `createParentDirs`). Symlinks are
//! copied as symlinks; regular files that share an inode within one source become hard
//! links; devices, FIFOs and sockets are recreated.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, Metadata};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::CopyStats;
use super::dest::{DestView, DirState, Kind};
use super::error::CopyError;
use super::glob;
use super::meta::{Attrs, Policy};
use super::path::rooted;
use super::source::{Found, SourceTree, is_absent};
use super::upper::{self, NewEntry};
use crate::context::dockerignore::{MatchInfo, PatternError, PatternMatcher};

/// `--parents` include patterns and `--exclude` patterns, matched on paths relative to the
/// source directory being copied (never on the source itself).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Filters<'p> {
    pub(super) include: Option<&'p PatternMatcher>,
    pub(super) exclude: Option<&'p PatternMatcher>,
}

impl Filters<'_> {
    fn included(&self, path: &str, parent: &MatchInfo) -> Result<(bool, MatchInfo), CopyError> {
        match self.include {
            None => Ok((true, MatchInfo::default())),
            Some(m) => m
                .matches_using_parent_results(path, parent.clone())
                .map_err(|e| bad_pattern(m, e)),
        }
    }

    fn excluded(&self, path: &str, parent: &MatchInfo) -> Result<(bool, MatchInfo), CopyError> {
        match self.exclude {
            None => Ok((false, MatchInfo::default())),
            Some(m) => m
                .matches_using_parent_results(path, parent.clone())
                .map_err(|e| bad_pattern(m, e)),
        }
    }

    /// Whether an include pattern could match something below the directory `dir`.
    fn may_include_below(&self, dir: &str) -> bool {
        let Some(include) = self.include else {
            return false;
        };
        let dir: Vec<&str> = dir.split('/').collect();
        include.patterns().iter().any(|pattern| {
            let text = pattern.as_str();
            let parts: Vec<&str> = text.split('/').collect();
            text.contains("**")
                || (parts.len() > dir.len()
                    && dir.iter().zip(&parts).all(|(d, p)| glob::matches(p, d)))
        })
    }

    /// Whether an excluded directory may hold entries a `!` pattern brings back.
    fn may_reinclude(&self) -> bool {
        self.exclude.is_some_and(PatternMatcher::exclusions)
    }
}

fn bad_pattern(matcher: &PatternMatcher, source: PatternError) -> CopyError {
    CopyError::BadPattern {
        patterns: matcher
            .patterns()
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect(),
        source,
    }
}

/// A directory being walked.
struct Level {
    src: PathBuf,
    /// Relative to the source root, for `.dockerignore`.
    rel: PathBuf,
    /// Relative to the copied source directory, for the patterns.
    pattern_path: String,
    target: PathBuf,
    state: DirState,
    include: MatchInfo,
    exclude: MatchInfo,
}

/// A directory entered but perhaps not created yet.
struct Pending {
    src: PathBuf,
    attrs: Attrs,
    target: PathBuf,
    existing: Option<(Kind, bool)>,
    created: bool,
}

/// Copies one source (after wildcard expansion) into the destination view.
pub(super) struct Copier<'c, 'v> {
    tree: &'c SourceTree<'c>,
    view: &'c mut DestView<'v>,
    policy: Policy<'c>,
    filters: Filters<'c>,
    stats: &'c mut CopyStats,
    /// (device, inode) of regular files already written → where in the layer; one map per
    /// source, as fsutil makes one copier per source.
    links: HashMap<(u64, u64), PathBuf>,
}

impl<'c, 'v> Copier<'c, 'v> {
    pub(super) fn new(
        tree: &'c SourceTree<'c>,
        view: &'c mut DestView<'v>,
        policy: Policy<'c>,
        filters: Filters<'c>,
        stats: &'c mut CopyStats,
    ) -> Self {
        Self {
            tree,
            view,
            policy,
            filters,
            stats,
            links: HashMap::new(),
        }
    }

    /// Copies what is inside the directory `src` into `target`, an existing directory.
    pub(super) fn copy_contents(
        &mut self,
        src: &Found,
        target: &Path,
        state: DirState,
    ) -> Result<(), CopyError> {
        let level = Level {
            src: src.abs.clone(),
            rel: src.rel.clone(),
            pattern_path: String::new(),
            target: target.to_owned(),
            state,
            include: MatchInfo::default(),
            exclude: MatchInfo::default(),
        };
        self.walk(&level, &mut Vec::new())
    }

    /// Copies a source that is not a directory to `parent/name`.
    pub(super) fn copy_single(
        &mut self,
        src: &Found,
        parent: &Path,
        state: DirState,
        name: &OsStr,
    ) -> Result<(), CopyError> {
        self.write(&src.abs, &src.meta, parent, state, name)
    }

    fn walk(&mut self, level: &Level, pending: &mut Vec<Pending>) -> Result<(), CopyError> {
        let mut names: Vec<OsString> = Vec::new();
        for entry in
            fs::read_dir(&level.src).map_err(CopyError::io("read directory", &level.src))?
        {
            let entry = entry.map_err(CopyError::io("read directory", &level.src))?;
            names.push(entry.file_name());
        }
        names.sort();
        for name in names {
            let src = level.src.join(&name);
            let meta = match fs::symlink_metadata(&src) {
                Ok(meta) => meta,
                Err(err) if is_absent(&err) => continue,
                Err(err) => return Err(CopyError::io("lstat", src)(err)),
            };
            let rel = level.rel.join(&name);
            let pattern_path = if level.pattern_path.is_empty() {
                name.to_string_lossy().into_owned()
            } else {
                format!("{}/{}", level.pattern_path, name.to_string_lossy())
            };
            let ignored = self.tree.ignored(&rel);
            let (included, include) = self.filters.included(&pattern_path, &level.include)?;
            let (excluded, exclude) = self.filters.excluded(&pattern_path, &level.exclude)?;
            let selected = !ignored && included && !excluded;
            if !meta.is_dir() {
                if selected {
                    self.create_pending(pending)?;
                    self.write(&src, &meta, &level.target, level.state, &name)?;
                }
                continue;
            }
            let worth_entering = selected
                || ((!ignored || self.tree.may_reinclude())
                    && (included || self.filters.may_include_below(&pattern_path))
                    && (!excluded || self.filters.may_reinclude()));
            if !worth_entering {
                continue;
            }
            let existing = if level.state.is_fresh() {
                None
            } else {
                self.view.child(&level.target, level.state, &name)?
            };
            let target = level.target.join(&name);
            pending.push(Pending {
                src: src.clone(),
                attrs: self.policy.attrs_for(&meta),
                target: target.clone(),
                existing: existing.as_ref().map(|e| (e.kind, e.in_upper)),
                created: false,
            });
            if selected {
                self.create_pending(pending)?;
            }
            let child = Level {
                src,
                rel,
                pattern_path,
                target,
                state: DirState::child(existing.as_ref()),
                include,
                exclude,
            };
            self.walk(&child, pending)?;
            pending.pop();
        }
        Ok(())
    }

    /// Creates the entered directories that are not created yet, outermost first.
    fn create_pending(&mut self, pending: &mut [Pending]) -> Result<(), CopyError> {
        for dir in pending.iter_mut().filter(|d| !d.created) {
            match dir.existing {
                Some((Kind::Dir, true)) => {}
                Some((Kind::Dir, false)) | None => {
                    self.view.upper().create_dir(&dir.target, None)?;
                }
                Some(_) => {
                    return Err(CopyError::CannotCopyToNonDirectory {
                        path: rooted(&dir.target),
                    });
                }
            }
            self.view.upper().dir_xattrs_from(&dir.target, &dir.src);
            self.view.finish_dir_later(&dir.target, dir.attrs);
            dir.created = true;
            self.stats.dirs += 1;
        }
        Ok(())
    }

    /// Writes the non-directory `src` as `parent/name`.
    fn write(
        &mut self,
        src: &Path,
        meta: &Metadata,
        parent: &Path,
        state: DirState,
        name: &OsStr,
    ) -> Result<(), CopyError> {
        let target = parent.join(name);
        prepare_target(self.view, parent, state, name)?;
        let kind = meta.file_type();
        let link;
        let entry = if kind.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = self.links.get(&key) {
                    self.view.upper().add_hardlink(&target, first)?;
                    self.stats.hardlinks += 1;
                    return Ok(());
                }
                self.links.insert(key, target.clone());
            }
            self.stats.files += 1;
            self.stats.bytes += meta.len();
            NewEntry::File {
                src,
                size: meta.len(),
            }
        } else if kind.is_symlink() {
            link = fs::read_link(src).map_err(CopyError::io("readlink", src))?;
            self.stats.symlinks += 1;
            NewEntry::Symlink(&link)
        } else if kind.is_char_device()
            || kind.is_block_device()
            || kind.is_fifo()
            || kind.is_socket()
        {
            self.stats.special += 1;
            upper::special(meta)
        } else {
            return Err(CopyError::UnsupportedFileType {
                path: src.to_owned(),
            });
        };
        let attrs = self.policy.attrs_for(meta);
        self.view.upper().add(&target, entry, &attrs, Some(src))
    }
}

/// Clears the way for a non-directory at `parent/name`: a directory there is an error
/// (fsutil's `ensureEmptyFileTarget`), anything else written earlier is replaced.
pub(super) fn prepare_target(
    view: &mut DestView<'_>,
    parent: &Path,
    state: DirState,
    name: &OsStr,
) -> Result<(), CopyError> {
    if state.is_fresh() {
        return Ok(());
    }
    match view.child(parent, state, name)? {
        Some(entry) if entry.kind == Kind::Dir => Err(CopyError::CannotReplaceDirectory {
            path: rooted(&parent.join(name)),
        }),
        Some(entry) if entry.in_upper => view.upper().remove(&parent.join(name)),
        // Something in the lower is simply covered by the new entry in the layer.
        _ => Ok(()),
    }
}
