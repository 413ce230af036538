//! Temporary names and atomic publication: everything under a final name is complete, because
//! it is built under a temporary one and renamed into place.
//!
//! Temporary names carry their owner (see `fsutil::owner`), so the next kiln (`reclaim`) can
//! tell the leftovers of a crashed kiln from the work of a live one.

use std::io;
use std::path::{Path, PathBuf};

use super::SnapshotError;
use super::error::io_error;
use crate::fsutil::{owner, remove_path};

/// A temporary file or directory, removed when dropped unless published.
#[derive(Debug)]
pub(super) struct Temp {
    path: PathBuf,
    published: bool,
}

impl Temp {
    /// A fresh, unique name `<dir>/kiln-tmp-<owner>-<n>.<label>`, nothing created yet.
    pub(super) fn name(dir: &Path, label: &str) -> Self {
        Self {
            path: dir.join(owner::temp_name(label)),
            published: false,
        }
    }

    /// A fresh hidden name beside a user's destination in `dir`, nothing created yet; the
    /// temps an interrupted export left there go first.
    pub(super) fn beside(dir: &Path, label: &str) -> Self {
        crate::reclaim::beside(&dir.join(label));
        Self {
            path: dir.join(owner::hidden_temp_name(label)),
            published: false,
        }
    }

    /// A fresh, empty temporary directory.
    pub(super) fn dir(dir: &Path, label: &str) -> Result<Self, SnapshotError> {
        Self::name(dir, label).create_dir()
    }

    /// A fresh, empty hidden directory beside a user's destination in `dir`.
    pub(super) fn dir_beside(dir: &Path, label: &str) -> Result<Self, SnapshotError> {
        Self::beside(dir, label).create_dir()
    }

    fn create_dir(self) -> Result<Self, SnapshotError> {
        std::fs::create_dir(&self.path).map_err(io_error(&self.path))?;
        Ok(self)
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes the filesystem, then renames into `target`. A non-empty directory already at
    /// `target` means another process published the same content first: ours is dropped and
    /// `Ok(false)` returned.
    pub(super) fn publish(mut self, target: &Path) -> Result<bool, SnapshotError> {
        sync_filesystem(&self.path)?;
        match std::fs::rename(&self.path, target) {
            Ok(()) => {
                self.published = true;
                Ok(true)
            }
            Err(error) if already_there(&error) && target.is_dir() => Ok(false),
            Err(error) => Err(SnapshotError::Io {
                path: target.to_path_buf(),
                source: error,
            }),
        }
    }

    /// Renames into `target` without the "someone else won" leniency: an occupied target is
    /// the caller's error to report.
    pub(super) fn rename_into(mut self, target: &Path) -> io::Result<()> {
        std::fs::rename(&self.path, target)?;
        self.published = true;
        Ok(())
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.published {
            // Best effort: a leftover is found again by `reclaim` after we exit.
            let _ = remove_path(&self.path);
        }
    }
}

/// `rename(2)` onto a non-empty directory.
pub(super) fn already_there(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(code) if code == rustix::io::Errno::NOTEMPTY.raw_os_error()
            || code == rustix::io::Errno::EXIST.raw_os_error()
    )
}

/// One `syncfs` for the whole tree rather than an fsync per file: after a crash, a published
/// name must not hold files whose data never reached the disk.
pub(super) fn sync_filesystem(path: &Path) -> Result<(), SnapshotError> {
    let file = std::fs::File::open(path).map_err(io_error(path))?;
    rustix::fs::syncfs(&file).map_err(|errno| SnapshotError::Io {
        path: path.to_path_buf(),
        source: errno.into(),
    })
}
