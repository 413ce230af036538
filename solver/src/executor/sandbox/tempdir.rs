//! The per-step temp dir: the root's mount point, the generated /etc files, bind points for
//! long layer chains, and (in the copy fallback) the copied root filesystem.
//!
//! Named after its owner (`kiln-tmp-<pid>-<start>-<n>.sandbox`, see `fsutil::owner`) so a dir
//! left by a kiln that was SIGKILLed (the only way to skip the cleanup) is recognised and
//! removed by the next kiln (`reclaim`). Nothing is ever mounted on them from the host's point
//! of view (mounts live in the step's own mount namespace).

use std::path::{Path, PathBuf};

use crate::executor::ExecError;

/// A temp dir removed (recursively) on drop: the store's owner-named kind, with the files a
/// step needs.
#[derive(Debug)]
pub(super) struct TempDir {
    dir: crate::fsutil::tempdir::TempDir,
}

impl TempDir {
    /// Creates a fresh, private (0700) directory under `parent`.
    pub(super) fn create(parent: &Path) -> Result<Self, ExecError> {
        crate::fsutil::tempdir::TempDir::private(parent, "sandbox")
            .map(|dir| TempDir { dir })
            .map_err(|e| {
                ExecError::Setup(format!("creating a temp dir in {}: {e}", parent.display()))
            })
    }

    /// The directory.
    pub(super) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A subdirectory, created.
    pub(super) fn subdir(&self, name: &str) -> Result<PathBuf, ExecError> {
        let path = self.path().join(name);
        std::fs::create_dir_all(&path)
            .map_err(|e| ExecError::Setup(format!("creating {}: {e}", path.display())))?;
        Ok(path)
    }

    /// A file with `contents`, mode 0644 whatever the umask (it is bound into the container,
    /// where any user must read it).
    pub(super) fn file(&self, name: &str, contents: &str) -> Result<PathBuf, ExecError> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.path().join(name);
        std::fs::write(&path, contents)
            .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)))
            .map_err(|e| ExecError::Setup(format!("writing {}: {e}", path.display())))?;
        Ok(path)
    }
}
