//! kiln's one tar applier, for base layers, `ADD` archives and cache imports alike
//! (containerd's `archive.Apply` is the model): liberal in what it reads (see
//! [`super::read`]), strict about where it writes.
//!
//! * Names are cleaned in one place ([`names`]): a leading `/` or `./`, `//` and trailing `/`
//!   mean nothing; `..` may move within the root but never above it (such an entry is
//!   refused); an entry naming the root itself applies to the root.
//! * Parents are resolved with [`crate::fsutil::root_path`]: symlinks on the way are followed
//!   inside the root (Debian's `/var/run -> /run` is `<root>/run`); missing parents are made
//!   0755. The final component is replaced, never followed.
//! * An entry replaces what is in its way, except a directory meeting a directory (their
//!   contents merge); the same path twice means the last one wins.
//! * Owner, then mode (chown clears setuid bits), then xattrs (chown clears
//!   `security.capability`), then times; atime is the later of atime and mtime and times
//!   before the epoch become the epoch, as in containerd. Directory modes and times are
//!   applied last, deepest first: creating children would bump a directory's mtime, and a
//!   read-only directory could not receive them.
//! * Whiteouts are applied, kept as files (`ADD`), or stored in overlay form ([`whiteout`]).

mod create;
mod names;
mod whiteout;

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::{BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use oci_spec::image::Digest;
use rustix::fs::{FileType, Timespec};

use super::LayerError;
use super::decompress::decompress_reader;
use super::hash::{HashReader, sha256_digest};
use super::meta;
use super::read::{Entry, Kind, TarReader};
use crate::fsutil::root_path::{self, Missing, Resolved, RootPathError};

const IO_BUFFER: usize = 256 * 1024;

/// What extraction does with `.wh.` entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WhiteoutMode {
    /// Delete from the destination what lower layers put there.
    Apply,
    /// Extract them as ordinary files (`ADD` of a local archive).
    Keep,
    /// Store them as overlayfs does (0:0 character device, opaque xattr), so the destination
    /// can serve as an overlay lowerdir.
    Overlay,
}

/// Whose files the extracted ones are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owners {
    /// The uid and gid stored in the archive (needs root).
    Archive,
    /// These, whatever the archive says (`ADD --chown`).
    Fixed(u32, u32),
    /// Left to whoever runs kiln (an unprivileged extraction).
    Caller,
}

/// How [`apply`] extracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ApplyOptions {
    pub(crate) whiteouts: WhiteoutMode,
    pub(crate) owners: Owners,
}

/// Resolves entries' parent directories when the destination is not a plain directory: an
/// `ADD` over an image writes a layer whose lower image has its own directories and symlinks
/// (`var/run -> /run`), which parents must follow as go-archive's chrooted untar does.
pub(crate) trait ParentResolver {
    /// The directory `dirs` (relative to the destination, already clean) leads to, made when
    /// `missing` says so: its host path and its path relative to the destination's root.
    fn resolve_parent(
        &mut self,
        dirs: &[&OsStr],
        missing: Missing,
    ) -> Result<Option<Resolved>, RootPathError>;
}

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Applied {
    /// sha256 of the uncompressed stream: the layer's diff_id.
    pub(crate) diff_id: Digest,
    /// Entries read (whiteouts and a skipped root entry included).
    pub(crate) entries: u64,
}

/// Extracts the tar read from `reader` (gzip, bzip2, xz, zstd or plain, told by its magic
/// bytes) into `dest`, created if missing. On error `dest` may hold part of the archive, but
/// nothing was written outside it.
pub(crate) fn apply<R: Read>(
    reader: R,
    dest: &Path,
    opts: &ApplyOptions,
) -> Result<Applied, LayerError> {
    apply_with(reader, dest, opts, None)
}

/// [`apply`], with parents resolved by `resolver` instead of inside `dest` alone.
pub(crate) fn apply_with<R: Read>(
    reader: R,
    dest: &Path,
    opts: &ApplyOptions,
    resolver: Option<&mut dyn ParentResolver>,
) -> Result<Applied, LayerError> {
    create_dest(dest).map_err(|source| LayerError::Extract {
        entry: String::new(),
        path: dest.to_path_buf(),
        source,
    })?;
    let decompressed = decompress_reader(BufReader::with_capacity(IO_BUFFER, reader))?;
    let mut hashing = HashReader::new(decompressed);
    let mut applier = Applier {
        dest: dest.to_path_buf(),
        opts: *opts,
        created: HashSet::new(),
        dirs: Vec::new(),
        buf: vec![0u8; IO_BUFFER],
        entries: 0,
        resolver,
    };
    {
        let mut tar = TarReader::new(&mut hashing);
        while let Some(entry) = tar.next_entry()? {
            applier.entry(&entry, &mut tar)?;
            applier.entries += 1;
        }
    }
    applier.finish_dirs()?;
    let hasher = hashing
        .drain_and_finish()
        .map_err(|source| LayerError::Input { source })?;
    Ok(Applied {
        diff_id: sha256_digest(hasher)?,
        entries: applier.entries,
    })
}

/// Creates `dest` (and its parents) if missing, 0755 whatever the umask: it becomes the root
/// of a filesystem when the tar has no `./` entry.
fn create_dest(dest: &Path) -> std::io::Result<()> {
    if std::fs::symlink_metadata(dest).is_ok() {
        return Ok(());
    }
    std::fs::create_dir_all(dest)?;
    meta::set_mode(dest, 0o755)
}

/// A directory whose mode and times wait for the end.
struct DeferredDir {
    entry: String,
    path: PathBuf,
    mode: u32,
    atime: Timespec,
    mtime: Timespec,
}

struct Applier<'r> {
    /// Resolves parents instead of `root_path` inside `dest` (an ADD over an image).
    resolver: Option<&'r mut dyn ParentResolver>,
    dest: PathBuf,
    opts: ApplyOptions,
    /// Paths (relative to `dest`) this archive created, which an opaque marker must spare.
    created: HashSet<PathBuf>,
    dirs: Vec<DeferredDir>,
    buf: Vec<u8>,
    entries: u64,
}

impl Applier<'_> {
    fn entry<R: Read>(&mut self, entry: &Entry, tar: &mut TarReader<R>) -> Result<(), LayerError> {
        let name = entry.display_name();
        let parts = names::clean(&entry.name, &name)?;
        let Some((last, parents)) = parts.split_last() else {
            // `./`, `/` or an empty name: the destination itself, which containerd (layers)
            // and Docker's Untar (ADD) skip whatever its type, its metadata included.
            return Ok(());
        };
        if self.opts.whiteouts != WhiteoutMode::Keep && last.starts_with(whiteout::PREFIX) {
            return self.whiteout(parents, last, &name);
        }

        let parent = self
            .resolve(parents, Missing::Create, &name)?
            .ok_or_else(|| LayerError::UnsafePath {
                entry: name.clone(),
                reason: "parent directory vanished",
            })?;
        let last = OsStr::from_bytes(last);
        let path = parent.abs.join(last);
        let fail = |source| LayerError::Extract {
            entry: name.clone(),
            path: path.clone(),
            source,
        };
        let owner = self.owner(entry);
        let (atime, mtime) = times(entry);
        match entry.kind {
            Kind::Directory => {
                create::directory(&path, owner, &entry.xattrs).map_err(fail)?;
                self.dirs.push(DeferredDir {
                    entry: name.clone(),
                    path: path.clone(),
                    mode: entry.mode,
                    atime,
                    mtime,
                });
            }
            Kind::Regular => {
                create::regular(&path, entry, &mut tar.data(), &mut self.buf).map_err(fail)?;
                create::finish(&path, owner, Some(entry.mode), &entry.xattrs, atime, mtime)
                    .map_err(fail)?;
            }
            Kind::Symlink => {
                create::symlink(&path, &entry.link).map_err(fail)?;
                create::finish(&path, owner, None, &entry.xattrs, atime, mtime).map_err(fail)?;
            }
            Kind::Hardlink => {
                let target = self.hardlink_target(entry, &name)?;
                create::hardlink(&path, &target).map_err(fail)?;
            }
            Kind::CharDevice | Kind::BlockDevice | Kind::Fifo => {
                let kind = match entry.kind {
                    Kind::CharDevice => FileType::CharacterDevice,
                    Kind::BlockDevice => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                create::node(&path, kind, entry.device).map_err(fail)?;
                create::finish(&path, owner, Some(entry.mode), &entry.xattrs, atime, mtime)
                    .map_err(fail)?;
            }
        }
        if self.opts.whiteouts == WhiteoutMode::Apply {
            self.created.insert(parent.rel.join(last));
        }
        Ok(())
    }

    /// The owner to give an entry's file, if any.
    fn owner(&self, entry: &Entry) -> Option<(u64, u64)> {
        match self.opts.owners {
            Owners::Archive => Some((entry.uid, entry.gid)),
            Owners::Fixed(uid, gid) => Some((uid.into(), gid.into())),
            Owners::Caller => None,
        }
    }

    /// Resolves a directory under `dest`, remembering the directories it had to create.
    fn resolve(
        &mut self,
        dirs: &[&[u8]],
        missing: Missing,
        name: &str,
    ) -> Result<Option<Resolved>, LayerError> {
        let resolved = match self.resolver.as_mut() {
            Some(resolver) => {
                let dirs: Vec<&OsStr> = dirs.iter().map(|c| OsStr::from_bytes(c)).collect();
                resolver.resolve_parent(&dirs, missing)
            }
            None => root_path::resolve_dir(
                &self.dest,
                dirs.iter().map(|c| OsStr::from_bytes(c)),
                missing,
            ),
        }
        .map_err(|e| match e {
            RootPathError::NotADirectory { path } => LayerError::ParentNotADirectory {
                entry: name.to_owned(),
                path,
            },
            RootPathError::TooManyLinks { path } => LayerError::Extract {
                entry: name.to_owned(),
                path,
                source: rustix::io::Errno::LOOP.into(),
            },
            RootPathError::Io { path, source } => LayerError::Extract {
                entry: name.to_owned(),
                path,
                source,
            },
        })?;
        if let Some(resolved) = &resolved
            && self.opts.whiteouts == WhiteoutMode::Apply
        {
            self.created.extend(resolved.created.iter().cloned());
        }
        Ok(resolved)
    }

    /// Where a hardlink entry points: a file inside `dest` that already exists.
    fn hardlink_target(&mut self, entry: &Entry, name: &str) -> Result<PathBuf, LayerError> {
        let bad = |reason| LayerError::BadHardlink {
            entry: name.to_owned(),
            target: String::from_utf8_lossy(&entry.link).into_owned(),
            reason,
        };
        let parts = root_path::clean_components(&entry.link)
            .ok_or_else(|| bad("climbs out of the destination with `..`"))?;
        let Some((last, parents)) = parts.split_last() else {
            return Err(bad("names the destination itself"));
        };
        let parent = self
            .resolve(parents, Missing::Stop, name)?
            .ok_or_else(|| bad("target does not exist"))?;
        let target = parent.abs.join(OsStr::from_bytes(last));
        if std::fs::symlink_metadata(&target).is_err() {
            return Err(bad("target does not exist"));
        }
        Ok(target)
    }

    /// Applies the deferred directory modes and times, deepest (latest) first; a directory
    /// listed twice gets its last entry's metadata, one removed since is skipped.
    fn finish_dirs(&mut self) -> Result<(), LayerError> {
        let mut done = HashSet::new();
        for dir in self.dirs.iter().rev() {
            if !done.insert(dir.path.clone()) {
                continue;
            }
            if !std::fs::symlink_metadata(&dir.path).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            let fail = |source| LayerError::Extract {
                entry: dir.entry.clone(),
                path: dir.path.clone(),
                source,
            };
            meta::set_mode(&dir.path, dir.mode).map_err(fail)?;
            meta::set_times(&dir.path, dir.atime, dir.mtime).map_err(fail)?;
        }
        Ok(())
    }
}

/// An entry's (atime, mtime) as containerd sets them: atime no earlier than mtime, and
/// nothing before the epoch.
fn times(entry: &Entry) -> (Timespec, Timespec) {
    let bound = |t: Timespec| {
        if t.tv_sec < 0 {
            meta::timespec(0, 0)
        } else {
            t
        }
    };
    let mtime = bound(entry.mtime);
    let atime = match entry.atime.map(bound) {
        Some(a) if (a.tv_sec, a.tv_nsec) > (mtime.tv_sec, mtime.tv_nsec) => a,
        _ => mtime,
    };
    (atime, mtime)
}
