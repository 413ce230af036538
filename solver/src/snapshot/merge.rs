//! Stacking directory trees: a layer directory (in overlay form) onto a rootfs being built, or
//! a finished rootfs into an export destination.
//!
//! Whiteouts follow overlayfs: a 0:0 character device deletes the path below it, an opaque
//! directory hides everything below it, and an upper non-directory replaces whatever was
//! there. Directories are created and take the metadata of the uppermost layer holding them;
//! their modes and times are applied at the very end, deepest first, since filling them
//! changes their mtime and a read-only one could not be filled by an unprivileged user.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, Timespec};
use walkdir::WalkDir;

use super::SnapshotError;
use super::error::io_error;
use crate::fsutil::remove_path;
use crate::layer::meta::{self, timespec};
use crate::layer::xattr;

/// Flattens overlay-form `layers` (top-most first, as overlay's lowerdir lists them) into the
/// existing empty `dest`, copying: the sandbox's fallback when overlayfs cannot be mounted.
pub(crate) fn flatten_copy(layers: &[PathBuf], dest: &Path) -> Result<(), SnapshotError> {
    let mut merger = Merger::new(dest, Placement::Copy);
    for layer in layers.iter().rev() {
        merger.apply(layer)?;
    }
    merger.finish()
}

/// How non-directories reach the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Placement {
    /// Hardlinked to the source (a rootfs in kiln's own store: cheap, and the files are
    /// read-only by convention), copied only where a link is refused.
    Link,
    /// Copied (an export leaves kiln's store: the user may edit it), hardlinks within the
    /// tree preserved.
    Copy,
}

/// A destination tree being built from one or more source trees, bottom first.
#[derive(Debug)]
pub(super) struct Merger {
    dest: PathBuf,
    placement: Placement,
    /// Mode and times of each directory, from the uppermost source holding it.
    dirs: BTreeMap<PathBuf, DirMeta>,
    /// In `Copy` placement: source (device, inode) → first destination path.
    copied: HashMap<(u64, u64), PathBuf>,
}

impl Merger {
    /// Starts merging into `dest`, an existing (normally empty) directory.
    pub(super) fn new(dest: &Path, placement: Placement) -> Self {
        Self {
            dest: dest.to_path_buf(),
            placement,
            dirs: BTreeMap::new(),
            copied: HashMap::new(),
        }
    }

    /// Stacks `src` on what is already in the destination.
    pub(super) fn apply(&mut self, src: &Path) -> Result<(), SnapshotError> {
        let root_meta = std::fs::symlink_metadata(src).map_err(io_error(src))?;
        if xattr::is_opaque(src).map_err(io_error(src))? {
            clear_dir(&self.dest)?;
        }
        let dest = self.dest.clone();
        self.directory_metadata(src, &dest, &root_meta, PathBuf::new())?;

        for entry in WalkDir::new(src)
            .follow_links(false)
            .sort_by_file_name()
            .min_depth(1)
        {
            let entry = entry.map_err(|error| SnapshotError::Io {
                path: error.path().unwrap_or(src).to_path_buf(),
                source: error.into(),
            })?;
            let from = entry.path();
            let rel = from.strip_prefix(src).map_err(|_| SnapshotError::Io {
                path: from.to_path_buf(),
                source: io::Error::other("walked outside the source tree"),
            })?;
            let to = self.dest.join(rel);
            let src_meta = std::fs::symlink_metadata(from).map_err(io_error(from))?;
            let file_type = src_meta.file_type();

            if file_type.is_char_device() && src_meta.rdev() == 0 {
                remove_path(&to).map_err(io_error(&to))?;
            } else if file_type.is_dir() {
                match std::fs::symlink_metadata(&to) {
                    Ok(existing) if existing.is_dir() => {
                        if xattr::is_opaque(from).map_err(io_error(from))? {
                            clear_dir(&to)?;
                        }
                    }
                    Ok(_) => {
                        remove_path(&to).map_err(io_error(&to))?;
                        make_dir(&to)?;
                    }
                    Err(error) if error.kind() == io::ErrorKind::NotFound => make_dir(&to)?,
                    Err(error) => return Err(io_error(&to)(error)),
                }
                self.directory_metadata(from, &to, &src_meta, rel.to_path_buf())?;
            } else if file_type.is_socket() {
                // Not content: a layer cannot even hold one.
            } else {
                remove_path(&to).map_err(io_error(&to))?;
                self.place(from, &to, &src_meta)?;
            }
        }
        Ok(())
    }

    /// Applies every directory's mode and times, children before parents (reverse path
    /// order); call once, after the last [`Merger::apply`].
    pub(super) fn finish(self) -> Result<(), SnapshotError> {
        for (rel, dir) in self.dirs.into_iter().rev() {
            let path = self.dest.join(&rel);
            // A directory a later source deleted or replaced has nothing to receive.
            if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            meta::set_mode(&path, dir.mode).map_err(io_error(&path))?;
            meta::set_times(&path, dir.atime, dir.mtime).map_err(io_error(&path))?;
        }
        Ok(())
    }

    /// Owner and xattrs of `from` onto the directory `to` now; mode and times at the end.
    fn directory_metadata(
        &mut self,
        from: &Path,
        to: &Path,
        src: &Metadata,
        rel: PathBuf,
    ) -> Result<(), SnapshotError> {
        copy_metadata(from, to, src, false)?;
        replace_xattrs(from, to)?;
        let (atime, mtime) = times(src);
        self.dirs.insert(
            rel,
            DirMeta {
                mode: src.mode(),
                atime,
                mtime,
            },
        );
        Ok(())
    }

    /// Puts the non-directory `from` at `to` (where nothing is).
    fn place(&mut self, from: &Path, to: &Path, src: &Metadata) -> Result<(), SnapshotError> {
        match self.placement {
            Placement::Link => match rustix::fs::linkat(CWD, from, CWD, to, AtFlags::empty()) {
                Ok(()) => Ok(()),
                // Another filesystem, too many links, or a kernel protecting hardlinks.
                Err(
                    rustix::io::Errno::XDEV | rustix::io::Errno::MLINK | rustix::io::Errno::PERM,
                ) => copy_node(from, to, src),
                Err(errno) => Err(io_error(to)(errno.into())),
            },
            Placement::Copy => {
                if src.nlink() > 1 {
                    let key = (src.dev(), src.ino());
                    if let Some(first) = self.copied.get(&key) {
                        return rustix::fs::linkat(CWD, first, CWD, to, AtFlags::empty())
                            .map_err(|errno| io_error(to)(errno.into()));
                    }
                    self.copied.insert(key, to.to_path_buf());
                }
                copy_node(from, to, src)
            }
        }
    }
}

/// What a directory receives once everything is in it.
#[derive(Debug, Clone, Copy)]
struct DirMeta {
    mode: u32,
    atime: Timespec,
    mtime: Timespec,
}

fn make_dir(path: &Path) -> Result<(), SnapshotError> {
    rustix::fs::mkdirat(CWD, path, Mode::from_raw_mode(0o700))
        .map_err(|errno| io_error(path)(errno.into()))
}

/// Empties a directory (an opaque one hides what lower sources put there).
fn clear_dir(dir: &Path) -> Result<(), SnapshotError> {
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let path = entry.map_err(io_error(dir))?.path();
        remove_path(&path).map_err(io_error(&path))?;
    }
    Ok(())
}

/// Access and modification time of a stat.
fn times(src: &Metadata) -> (Timespec, Timespec) {
    (
        timespec(src.atime(), src.atime_nsec()),
        timespec(src.mtime(), src.mtime_nsec()),
    )
}

/// A copy of a non-directory: content, or link target, or device numbers; then metadata.
fn copy_node(from: &Path, to: &Path, src: &Metadata) -> Result<(), SnapshotError> {
    let file_type = src.file_type();
    let fail = |errno: rustix::io::Errno| io_error(to)(errno.into());
    if file_type.is_file() {
        let input = rustix::fs::open(
            from,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| io_error(from)(errno.into()))?;
        let output = rustix::fs::open(
            to,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(fail)?;
        // std's File-to-File copy uses copy_file_range, so reflinking filesystems share extents.
        std::io::copy(&mut File::from(input), &mut File::from(output)).map_err(io_error(to))?;
    } else if file_type.is_symlink() {
        let target = std::fs::read_link(from).map_err(io_error(from))?;
        rustix::fs::symlinkat(&target, CWD, to).map_err(fail)?;
    } else {
        let kind = if file_type.is_char_device() {
            FileType::CharacterDevice
        } else if file_type.is_block_device() {
            FileType::BlockDevice
        } else {
            FileType::Fifo
        };
        rustix::fs::mknodat(CWD, to, kind, Mode::from_raw_mode(0o600), src.rdev()).map_err(fail)?;
    }
    copy_metadata(from, to, src, !file_type.is_symlink())?;
    let (atime, mtime) = times(src);
    meta::set_times(to, atime, mtime).map_err(io_error(to))
}

/// Owner, then mode (chown clears setuid), then xattrs (chown clears file capabilities).
fn copy_metadata(
    from: &Path,
    to: &Path,
    src: &Metadata,
    has_mode: bool,
) -> Result<(), SnapshotError> {
    // Only root may give files away; an unprivileged export keeps them the caller's.
    if crate::fsutil::userns::can_chown() {
        meta::set_owner(to, src.uid().into(), src.gid().into()).map_err(io_error(to))?;
    }
    if has_mode {
        meta::set_mode(to, src.mode()).map_err(io_error(to))?;
    }
    let attrs = xattr::read_all(from).map_err(io_error(from))?;
    meta::set_xattrs(to, &attrs).map_err(io_error(to))
}

/// Drops the xattrs `to` has but `from` lacks: an upper directory's attributes replace a lower
/// one's, as on an overlay mount.
fn replace_xattrs(from: &Path, to: &Path) -> Result<(), SnapshotError> {
    let wanted = xattr::read_all(from).map_err(io_error(from))?;
    for (name, _) in xattr::read_all(to).map_err(io_error(to))? {
        if !wanted.iter().any(|(n, _)| *n == name) {
            xattr::remove(to, OsStr::from_bytes(&name)).map_err(io_error(to))?;
        }
    }
    Ok(())
}
