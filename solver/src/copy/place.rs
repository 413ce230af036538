//! Where a source lands: fsutil's `Copy` and `prepareTargetDir` over the destination view.
//!
//! BuildKit first creates the destination when its spelling names a directory (a trailing
//! `/`), else the destination's parent, then resolves the destination through symlinks.
//! A directory source has its contents copied into the destination, which is created if
//! missing. A file source goes inside the destination when that is a directory, else it
//! becomes the destination. An ADD archive is extracted into the destination directory.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use super::CopyStats;
use super::dest::{DestView, DirState, Kind};
use super::error::CopyError;
use super::meta::{NewDir, Policy};
use super::path::{dest_components, names_directory, rel_path, rooted};
use super::source::{Match, SourceTree};
use super::tree::{Copier, Filters};
use crate::fsutil::root_path::{Missing, Resolved, RootPathError};
use crate::layer::{ApplyOptions, Owners, ParentResolver, WhiteoutMode};

/// The destination of a COPY/ADD.
#[derive(Debug)]
pub(super) struct Dest {
    /// Relative to the image root, cleaned.
    pub(super) rel: PathBuf,
    /// Spelt as a directory (trailing `/`).
    pub(super) names_dir: bool,
}

impl Dest {
    pub(super) fn parse(dest: &str) -> Self {
        Self {
            rel: rel_path(&dest_components(dest)),
            names_dir: names_directory(dest),
        }
    }
}

/// Creates the destination directory, or the destination's parent (BuildKit's
/// `ensureDstPath`), new directories made as `new` says.
pub(super) fn prepare(view: &mut DestView<'_>, dest: &Dest, new: NewDir) -> Result<(), CopyError> {
    if dest.names_dir {
        view.mkdir_all(&dest.rel, new)?;
    } else if let Some(parent) = dest.rel.parent() {
        view.mkdir_all(parent, new)?;
    }
    Ok(())
}

/// Copies one matched source.
pub(super) fn copy_match(
    view: &mut DestView<'_>,
    dest: &Dest,
    tree: &SourceTree<'_>,
    found: &Match,
    policy: Policy<'_>,
    filters: Filters<'_>,
    stats: &mut CopyStats,
) -> Result<(), CopyError> {
    let new = policy.new_dir();
    prepare(view, dest, new)?;
    let (resolved, kind) = view.resolve(&dest.rel)?;
    if found.found.meta.is_dir() {
        if kind.is_some_and(|k| k != Kind::Dir) {
            return Err(CopyError::CannotCopyToNonDirectory {
                path: rooted(&resolved),
            });
        }
        let (dir, state) = view.mkdir_all(&resolved, new)?;
        return Copier::new(tree, view, policy, filters, stats).copy_contents(
            &found.found,
            &dir,
            state,
        );
    }
    let name = if found.name.is_empty() {
        found
            .found
            .rel
            .file_name()
            .map(OsString::from)
            .unwrap_or_default()
    } else {
        found.name.clone()
    };
    let (parent, state, name) = file_slot(view, &resolved, kind, &name, new)?;
    Copier::new(tree, view, policy, filters, stats).copy_single(&found.found, &parent, state, &name)
}

/// Where a file named `name` goes when the destination resolved to `resolved` (holding
/// `kind`): the directory it goes into, that directory's state, and its name there.
pub(super) fn file_slot(
    view: &mut DestView<'_>,
    resolved: &Path,
    kind: Option<Kind>,
    name: &OsStr,
    new: NewDir,
) -> Result<(PathBuf, DirState, OsString), CopyError> {
    if kind == Some(Kind::Dir) {
        let (dir, state) = view.mkdir_all(resolved, new)?;
        return Ok((dir, state, name.to_owned()));
    }
    let parent = resolved.parent().unwrap_or(Path::new(""));
    let file_name = resolved
        .file_name()
        .map_or_else(|| name.to_owned(), OsStr::to_owned);
    let (dir, state) = view.mkdir_all(parent, new)?;
    Ok((dir, state, file_name))
}

/// ADD of a local archive: extracted into the destination, which is always a directory.
/// Over an image, entries' parents are resolved through the image below the layer (its
/// `var/run -> /run` followed inside the rootfs, its directories brought up with their own
/// metadata), as go-archive's chrooted untar sees them (moby/moby#53258); an entry itself
/// still replaces what is in its way.
pub(super) fn unpack(
    view: &mut DestView<'_>,
    dest: &Dest,
    found: &Match,
    policy: Policy<'_>,
    stats: &mut CopyStats,
) -> Result<(), CopyError> {
    // BuildKit's unpack makes the destination with MkdirAll(dest, 0755, chown): an ADD
    // --chmod does not apply to an archive, nor to the directories made for it.
    let (dir, _) = view.mkdir_all(&dest.rel, NewDir::new(policy.chown, None))?;
    let archive = &found.found.abs;
    let file = std::fs::File::open(archive).map_err(CopyError::io("open", archive))?;
    // Owners from the archive unless --chown says otherwise; whiteout names are plain files.
    let owners = match policy.chown {
        Some((uid, gid)) => Owners::Fixed(uid, gid),
        None if crate::fsutil::userns::can_chown() => Owners::Archive,
        None => Owners::Caller,
    };
    let opts = ApplyOptions {
        whiteouts: WhiteoutMode::Keep,
        owners,
    };
    // An archive is extracted by the layer applier, which writes to disk: the file op gives
    // ADD a diff directory (`DiskUpper`).
    let Some(host_root) = view.upper_ref().host_dir().map(Path::to_owned) else {
        return Err(CopyError::io("extract", archive)(std::io::Error::other(
            "an archive is extracted only into a layer on disk",
        )));
    };
    let into = host_root.join(&dir);
    let applied = if view.has_lower() {
        let mut resolver = ThroughImage {
            view,
            host_root,
            dir: dir.clone(),
            // go-archive makes an entry's missing parents 0755 and root's.
            new_dir: NewDir::new(None, None),
        };
        crate::layer::apply_with(file, &into, &opts, Some(&mut resolver))
    } else {
        crate::layer::apply(file, &into, &opts)
    };
    let entries = applied
        .map_err(|source| CopyError::Archive {
            archive: archive.clone(),
            source,
        })?
        .entries;
    stats.archives += 1;
    stats.archive_entries += entries;
    Ok(())
}

/// Resolves an archive's parent directories through the destination image.
struct ThroughImage<'v, 'a> {
    view: &'v mut DestView<'a>,
    /// The diff directory the archive is extracted into.
    host_root: PathBuf,
    /// The extraction directory, relative to the root.
    dir: PathBuf,
    new_dir: NewDir,
}

impl ParentResolver for ThroughImage<'_, '_> {
    fn resolve_parent(
        &mut self,
        dirs: &[&OsStr],
        missing: Missing,
    ) -> Result<Option<Resolved>, RootPathError> {
        let mut wanted = self.dir.clone();
        wanted.extend(dirs);
        let found = match missing {
            Missing::Create => self
                .view
                .mkdir_all(&wanted, self.new_dir)
                .map(|(p, _)| Some(p)),
            Missing::Stop => self.view.resolve(&wanted).map(|(p, kind)| match kind {
                Some(Kind::Dir) => Some(p),
                _ => None,
            }),
        };
        let rel = found.map_err(|e| match e {
            CopyError::NotADirectory { path } => RootPathError::NotADirectory { path: path.into() },
            other => RootPathError::Io {
                path: self.host_root.join(&wanted),
                source: std::io::Error::other(other.to_string()),
            },
        })?;
        Ok(rel.map(|rel| Resolved {
            abs: self.host_root.join(&rel),
            rel,
            created: Vec::new(),
        }))
    }
}
