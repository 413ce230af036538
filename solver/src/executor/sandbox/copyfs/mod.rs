//! The fallback when overlayfs cannot be mounted (no overlay module, an upper filesystem
//! overlay refuses, nested in another overlay without support…): the layers are copied into
//! a plain directory the step runs in, and afterwards its changes are written into the
//! upperdir in overlay form, so callers see the same result as with overlay. Slow (a full
//! copy per step) but exact: ownership, modes, xattrs, hard links, symlinks, devices and
//! times are kept.

mod diff;
mod entry;

use std::path::{Path, PathBuf};

use crate::executor::ExecError;

pub(super) use diff::Baseline;

/// Copies `lowers` (top-most first) into the new directory `rootfs` and records its state.
pub(super) fn prepare(lowers: &[PathBuf], rootfs: &Path) -> Result<Baseline, ExecError> {
    std::fs::create_dir(rootfs)
        .map_err(|e| ExecError::Setup(format!("creating {}: {e}", rootfs.display())))?;
    crate::snapshot::flatten_copy(lowers, rootfs)
        .map_err(|e| ExecError::Setup(format!("copying the layers (overlay unavailable): {e}")))?;
    diff::record(rootfs).map_err(|e| ExecError::Setup(format!("recording the copied root: {e}")))
}

/// Writes what the step changed in `rootfs` into `upperdir`, in overlay form.
pub(super) fn commit(rootfs: &Path, baseline: &Baseline, upperdir: &Path) -> Result<(), ExecError> {
    diff::write(rootfs, baseline, upperdir).map_err(|e| {
        ExecError::Setup(format!(
            "writing the step's changes to {}: {e}",
            upperdir.display()
        ))
    })
}
