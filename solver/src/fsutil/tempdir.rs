//! Temp directories under the store root (the same filesystem as what they become, so the
//! renames that publish them stay atomic), removed when dropped, also on errors and panics.

use std::path::{Path, PathBuf};

/// A directory removed with everything in it when dropped.
#[derive(Debug)]
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    /// Creates `<parent>/kiln-tmp-<owner>-<n>.<what>` (and `parent` if missing); named after
    /// its owner so that, should this process be killed, the next kiln removes it.
    pub(crate) fn new(parent: &Path, what: &str) -> std::io::Result<Self> {
        std::fs::create_dir_all(parent)?;
        let path = parent.join(super::owner::temp_name(what));
        std::fs::create_dir(&path)?;
        Ok(TempDir(path))
    }

    /// [`TempDir::new`], readable by its owner only (0700 whatever the umask).
    pub(crate) fn private(parent: &Path, what: &str) -> std::io::Result<Self> {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = Self::new(parent, what)?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
        Ok(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // std's remove_dir_all never follows symlinks, so what a step wrote cannot redirect it.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
