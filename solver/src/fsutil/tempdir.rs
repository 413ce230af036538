//! Temp directories under the store root (the same filesystem as what they become, so the
//! renames that publish them stay atomic), removed when dropped, also on errors and panics.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A directory removed with everything in it when dropped.
#[derive(Debug)]
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    /// Creates `<parent>/<what>-<pid>-<n>` (and `parent` if missing).
    pub(crate) fn new(parent: &Path, what: &str) -> std::io::Result<Self> {
        static N: AtomicU64 = AtomicU64::new(0);
        std::fs::create_dir_all(parent)?;
        let path = parent.join(format!(
            "{what}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir(&path)?;
        Ok(TempDir(path))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
