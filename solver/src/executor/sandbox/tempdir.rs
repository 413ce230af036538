//! The per-step temp dir: the root's mount point, the generated /etc files, bind points for
//! long layer chains, and (in the copy fallback) the copied root filesystem.
//!
//! Named `kiln-sandbox-<pid>-<n>` so a dir left by a kiln that was SIGKILLed (the only way
//! to skip the cleanup) can be recognised: [`sweep_stale`] removes those whose process is
//! gone. Nothing is ever mounted on them from the host's point of view (mounts live in the
//! step's own mount namespace), so plain removal is safe.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::executor::ExecError;

const PREFIX: &str = "kiln-sandbox-";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temp dir removed (recursively) on drop.
#[derive(Debug)]
pub(super) struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates a fresh, private (0700) directory under `parent`.
    pub(super) fn create(parent: &Path) -> Result<Self, ExecError> {
        use std::os::unix::fs::DirBuilderExt;
        let pid = std::process::id();
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = parent.join(format!("{PREFIX}{pid}-{n}"));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(TempDir { path }),
                // Left by an earlier process with our pid: take the next number.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(ExecError::Setup(format!(
                        "creating temp dir {}: {e}",
                        path.display()
                    )));
                }
            }
        }
    }

    /// The directory.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// A subdirectory, created.
    pub(super) fn subdir(&self, name: &str) -> Result<PathBuf, ExecError> {
        let path = self.path.join(name);
        std::fs::create_dir_all(&path)
            .map_err(|e| ExecError::Setup(format!("creating {}: {e}", path.display())))?;
        Ok(path)
    }

    /// A file with `contents`, mode 0644 whatever the umask (it is bound into the container,
    /// where any user must read it).
    pub(super) fn file(&self, name: &str, contents: &str) -> Result<PathBuf, ExecError> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.path.join(name);
        std::fs::write(&path, contents)
            .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)))
            .map_err(|e| ExecError::Setup(format!("writing {}: {e}", path.display())))?;
        Ok(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // std's remove_dir_all never follows symlinks, so a hostile layer cannot redirect it.
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Removes temp dirs of kiln processes that no longer exist.
pub(super) fn sweep_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    let me = std::process::id();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != me && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
