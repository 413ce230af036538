//! A RUN's upperdir made its diff: the stubs the executor created for mount points are
//! removed, and directories the step only passed through (unchanged from the lowers) pruned.

use std::fs;
use std::path::{Path, PathBuf};

use kiln_llb::ExecMount;

use crate::layer::xattr::{OPAQUE_TRUSTED, OPAQUE_USER};
use crate::solve::step_error::{StepError, io_err};

/// Mount points the executor had to create in the overlay (and parents made only for them)
/// are not part of the step's result: BuildKit drops them from the diff too.
pub(super) fn remove_mount_stubs(
    upper: &Path,
    lowers: &[PathBuf],
    mounts: &[ExecMount],
) -> Result<(), StepError> {
    let targets = mounts.iter().filter_map(|m| match m {
        ExecMount::Bind { target, .. }
        | ExecMount::Cache { target, .. }
        | ExecMount::Tmpfs { target, .. }
        | ExecMount::Ssh { target, .. }
        | ExecMount::Inline { target, .. } => Some(target.as_str()),
        ExecMount::Secret { target, .. } => target.as_deref(),
    });
    for target in targets {
        let mut rel = PathBuf::from(target.trim_start_matches('/'));
        loop {
            if rel.as_os_str().is_empty() || in_lowers(lowers, &rel) {
                break;
            }
            let p = upper.join(&rel);
            match fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => {
                    // Only an empty stub goes; a directory the step filled stays.
                    if fs::remove_dir(&p).is_err() {
                        break;
                    }
                }
                Ok(m) if m.len() == 0 => {
                    fs::remove_file(&p).map_err(io_err(p.display()))?;
                }
                _ => break,
            }
            if !rel.pop() {
                break;
            }
        }
    }
    Ok(())
}

fn in_lowers(lowers: &[PathBuf], rel: &Path) -> bool {
    lowers
        .iter()
        .any(|l| fs::symlink_metadata(l.join(rel)).is_ok())
}

/// Removes directories that overlay copied up (to hold a mount point, say) but that end the
/// step empty and identical to the lower directory they copy: they change nothing, and
/// keeping them would make the layer depend on how an executor placed its mount points.
/// Returns whether `dir` itself is now empty.
pub(super) fn prune_unchanged_dirs(
    upper: &Path,
    dir: &Path,
    lowers: &[PathBuf],
) -> Result<bool, StepError> {
    use std::os::unix::fs::MetadataExt as _;
    let entries = fs::read_dir(dir).map_err(io_err(dir.display()))?;
    let mut empty = true;
    for entry in entries {
        let entry = entry.map_err(io_err(dir.display()))?;
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).map_err(io_err(path.display()))?;
        if !meta.is_dir() || !prune_unchanged_dirs(upper, &path, lowers)? {
            empty = false;
            continue;
        }
        let Ok(rel) = path.strip_prefix(upper) else {
            empty = false;
            continue;
        };
        // Any value counts: a marker the kernel may write beyond `y` still means keep it.
        let opaque = [OPAQUE_TRUSTED, OPAQUE_USER]
            .iter()
            .any(|name| xattr_present(&path, name));
        let lower = lowers
            .iter()
            .find_map(|l| fs::symlink_metadata(l.join(rel)).ok());
        let same = lower.is_some_and(|l| {
            l.is_dir()
                && l.mode() == meta.mode()
                && l.uid() == meta.uid()
                && l.gid() == meta.gid()
                && l.mtime() == meta.mtime()
                && l.mtime_nsec() == meta.mtime_nsec()
        });
        if same && !opaque {
            fs::remove_dir(&path).map_err(io_err(path.display()))?;
        } else {
            empty = false;
        }
    }
    Ok(empty)
}

fn xattr_present(path: &Path, name: &str) -> bool {
    rustix::fs::lgetxattr(path, name, &mut [0u8; 4]).is_ok()
}
