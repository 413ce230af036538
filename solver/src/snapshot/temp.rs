//! Temporary names and atomic publication: everything under a final name is complete, because
//! it is built under a temporary one and renamed into place.
//!
//! Temporary names start with the creating process's pid, so [`clean_stale`] can tell the
//! leftovers of a crashed kiln from the work of a live one.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::SnapshotError;
use super::error::io_error;

/// A temporary file or directory, removed when dropped unless published.
#[derive(Debug)]
pub(super) struct Temp {
    path: PathBuf,
    published: bool,
}

impl Temp {
    /// A fresh, unique name `<dir>/<prefix><pid>.<n>.<label>`, nothing created yet.
    pub(super) fn name(dir: &Path, prefix: &str, label: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        Self {
            path: dir.join(format!("{prefix}{pid}.{n}.{label}")),
            published: false,
        }
    }

    /// A fresh, empty temporary directory.
    pub(super) fn dir(dir: &Path, prefix: &str, label: &str) -> Result<Self, SnapshotError> {
        let temp = Self::name(dir, prefix, label);
        std::fs::create_dir(&temp.path).map_err(io_error(&temp.path))?;
        Ok(temp)
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
            // Best effort: a leftover is found again by `clean_stale` after we exit.
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

/// Removes a file or a whole directory; absence is fine.
pub(super) fn remove_path(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

/// Removes the temporaries in `dir` whose creating process is gone. A live pid (even a
/// recycled one) keeps its entries; they are only wasted space, never a wrong result.
pub(super) fn clean_stale(dir: &Path) -> Result<(), SnapshotError> {
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.split('.').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        remove_path(&entry.path()).map_err(io_error(entry.path()))?;
    }
    Ok(())
}
