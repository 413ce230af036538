//! Filesystem primitives the rest of the solver shares: resolving paths inside a root the way
//! containerd does.

pub(crate) mod leftovers;
pub(crate) mod owner;
pub(crate) mod root_path;
pub(crate) mod tempdir;
pub(crate) mod userns;

/// Removes a file or a whole directory tree (never following symlinks); absence is fine.
pub(crate) fn remove_path(path: &std::path::Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
