//! The mount-point skeleton: an extra, bottom-most lower layer holding an empty directory or
//! file at every path the container mounts over (/proc, /dev, /sys, /etc/hosts,
//! /etc/resolv.conf, the spec's mount targets).
//!
//! Any real layer that has the path hides the skeleton's entry; a root that lacks it (a
//! `scratch` step, a minimal image, a new RUN --mount target) still finds a mount point,
//! without one being created in the upperdir. So mount points never become part of the
//! layer and creating /etc/hosts does not copy /etc up into it. (The child still creates a
//! stub where a layer shadows the skeleton with something unusable, e.g. a dangling
//! symlink; `stubs` removes those.) For a step on `scratch` it is the only lower.

use std::path::Path;

use super::plan::container_components;
use crate::executor::{ExecError, ExecSpec, MountSpec};

/// Writes the skeleton for `spec` into the new directory `dir`.
pub(super) fn create(dir: &Path, spec: &ExecSpec) -> Result<(), ExecError> {
    let mut targets: Vec<(&str, bool)> = vec![
        ("/proc", false),
        ("/dev", false),
        ("/sys", false),
        ("/etc/hosts", true),
        ("/etc/resolv.conf", true),
    ];
    for m in &spec.mounts {
        match m {
            MountSpec::Bind { source, target, .. } => targets.push((target, !source.is_dir())),
            MountSpec::Tmpfs { target, .. } => targets.push((target, false)),
        }
    }
    mkdir(dir)?;
    for (target, file) in targets {
        let parts = container_components(target);
        let Some((last, parents)) = parts.split_last() else {
            continue;
        };
        let mut path = dir.to_path_buf();
        for part in parents {
            path.push(part);
            mkdir(&path)?;
        }
        path.push(last);
        if file {
            if !path.exists() {
                std::fs::write(&path, "").map_err(|e| fail(&path, e))?;
                chmod(&path, 0o644)?;
            }
        } else {
            mkdir(&path)?;
        }
    }
    Ok(())
}

fn mkdir(path: &Path) -> Result<(), ExecError> {
    match std::fs::create_dir(path) {
        Ok(()) => chmod(path, 0o755),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        Err(e) => Err(fail(path, e)),
    }
}

/// Exact modes whatever kiln's umask: these show in the container as /etc, /proc….
fn chmod(path: &Path, mode: u32) -> Result<(), ExecError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| fail(path, e))
}

fn fail(path: &Path, e: std::io::Error) -> ExecError {
    ExecError::Setup(format!("creating mount point {}: {e}", path.display()))
}
