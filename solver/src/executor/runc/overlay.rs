//! The step's rootfs: an overlay mounted in a **private mount namespace** that only the
//! calling thread and the runc it spawns live in.
//!
//! `unshare(CLONE_NEWNS | CLONE_FS)` on a fresh thread moves that thread alone (threads keep
//! their own fs context once CLONE_FS is unshared) into a copy of kiln's mount table; runc,
//! forked from that thread, inherits it. So the overlay is never visible to the rest of kiln
//! or the host, the thread may `chdir` for the relative overlay options without disturbing
//! other threads, and the kernel unmounts the overlay when the last process in the namespace
//! exits — even if kiln is killed and never reaches its own cleanup.

use std::fs::{File, Permissions};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use rustix::fs::{Mode, OFlags, ResolveFlags};

use super::bundle::Bundle;
use super::paths;
use crate::executor::ExecError;

/// Moves the calling thread into its own mount namespace whose mounts do not propagate back
/// to the host. Call it only on a thread made for the purpose: there is no way back.
pub(super) fn enter_private_namespace() -> Result<(), ExecError> {
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_FS)
        .map_err(|e| ExecError::Setup(format!("unsharing the mount namespace: {e}")))?;
    // Mounts inherited from a shared peer group would otherwise carry the overlay back out.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(|e| ExecError::Setup(format!("making / a slave mount: {e}")))
}

/// Mounts the bundle's overlay on its rootfs. Changes the calling thread's cwd, so call it
/// after [`enter_private_namespace`] only.
pub(super) fn mount_rootfs(bundle: &Bundle) -> Result<(), ExecError> {
    let layers = bundle.layers();
    nix::unistd::chdir(&layers)
        .map_err(|e| ExecError::Setup(format!("entering {}: {e}", layers.display())))?;
    let rootfs = bundle.rootfs();
    let attempt = |options: &str| {
        // nodev: no device node the image carries or the step makes can be opened (runc's
        // device cgroup fences /dev, where runc makes the standard nodes itself).
        mount(
            Some("overlay"),
            &rootfs,
            Some("overlay"),
            MsFlags::MS_NODEV,
            Some(options),
        )
    };
    let mut options = bundle.overlay_options(true)?;
    let mut mounted = attempt(&options);
    if mounted == Err(Errno::EINVAL) {
        // A kernel older than 5.10 does not know `volatile`.
        options = bundle.overlay_options(false)?;
        mounted = attempt(&options);
    }
    mounted.map_err(|e| {
        ExecError::Setup(format!(
            "mounting overlay on {} ({options}, relative to {}): {e}",
            rootfs.display(),
            layers.display()
        ))
    })
}

/// Unmounts the rootfs. Best effort: the namespace's end unmounts it anyway.
pub(super) fn unmount_rootfs(rootfs: &Path) {
    if umount2(rootfs, MntFlags::empty()) == Err(Errno::EBUSY) {
        let _ = umount2(rootfs, MntFlags::MNT_DETACH);
    }
}

/// Removes the marker a `volatile` mount leaves in its workdir (`work/incompat/volatile`), which
/// would make the kernel refuse the next mount with the same workdir. Call it once the
/// overlay is unmounted.
pub(super) fn forget_volatile(workdir: &Path) -> io::Result<()> {
    let incompat = workdir.join("work").join("incompat");
    match std::fs::remove_dir_all(incompat.join("volatile")) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    // Kept if the kernel ever puts something else there.
    let _ = std::fs::remove_dir(incompat);
    Ok(())
}

/// Creates directory `cwd` (a container path) under `rootfs` if missing, root-owned, 0755 —
/// what runc would do, but before runc so it lands in the upperdir the same way for every
/// executor. Symlinks are resolved inside the rootfs, never out of it.
pub(super) fn ensure_dir(rootfs: &Path, cwd: &str) -> Result<(), ExecError> {
    let fail = |e: io::Error| ExecError::Setup(format!("creating working directory {cwd}: {e}"));
    let root = rustix::fs::open(
        rootfs,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| fail(e.into()))?;
    let open_in_root = |rel: &Path| {
        rustix::fs::openat2(
            &root,
            rel,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT,
        )
    };
    let mut rel = std::path::PathBuf::new();
    let mut parent: Option<OwnedFd> = None;
    for name in paths::components(cwd) {
        rel.push(name);
        let dir = match open_in_root(&rel) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => {
                let made = match &parent {
                    Some(p) => rustix::fs::mkdirat(p, name, Mode::from_raw_mode(0o755)),
                    None => rustix::fs::mkdirat(&root, name, Mode::from_raw_mode(0o755)),
                };
                let created = match made {
                    Ok(()) => true,
                    Err(rustix::io::Errno::EXIST) => false,
                    Err(e) => return Err(fail(e.into())),
                };
                let fd = open_in_root(&rel).map_err(|e| fail(e.into()))?;
                if created {
                    // mkdirat's mode went through kiln's umask.
                    File::from(fd.try_clone().map_err(fail)?)
                        .set_permissions(Permissions::from_mode(0o755))
                        .map_err(fail)?;
                }
                fd
            }
            Err(e) => return Err(fail(e.into())),
        };
        parent = Some(dir);
    }
    Ok(())
}
