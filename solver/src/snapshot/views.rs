//! Read-only views of layer chains: an overlay mount of the chain's layer directories, made
//! once per process in kiln's own mount namespace, instead of a merged copy.
//!
//! A merged rootfs hardlinks the layer directories' files, and every hardlink shows: a RUN
//! whose lowerdirs are those layer directories would see `stat -c %h` of base files grow with
//! each chain ever merged (4 to 14 where the image has 1). An overlay view shares the files
//! without linking them, costs one `mount` instead of a walk of the tree, and vanishes with
//! the process: the mounts live in a private mount namespace ([`use_private_mounts`]) that the
//! kernel tears down when kiln exits, killed or not, so nothing is ever left mounted.
//!
//! Where kiln cannot have its own namespace (unprivileged) or the kernel refuses the mount, the
//! merged copy serves as before.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};

/// Whether this process has a private mount namespace for its views.
static PRIVATE: AtomicBool = AtomicBool::new(false);
/// Views this process has mounted (mount points).
static MOUNTED: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// The kernel copies at most a page of mount options, NUL included.
const OPTION_LIMIT: usize = 4095;

/// Moves this process into a mount namespace of its own, whose mounts do not reach the host
/// (mounts made on the host still reach it). Call it before any thread is started: the kernel
/// refuses `unshare(CLONE_NEWNS)` to a process whose threads share their filesystem context.
/// Returns whether views are available.
pub fn use_private_mounts() -> bool {
    if !rustix::process::geteuid().is_root() {
        return false;
    }
    if unshare(CloneFlags::CLONE_NEWNS).is_err() {
        return false;
    }
    let slave = mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    );
    let ok = slave.is_ok();
    PRIVATE.store(ok, Ordering::SeqCst);
    ok
}

/// This process's own directory of view mount points under `views_root`, named after it (see
/// `fsutil::owner`): another kiln removing a view's mount point would detach the view in
/// this process's namespace too, so only a dead owner's directory is ever removed.
pub(super) fn process_dir(views_root: &Path) -> PathBuf {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dir = views_root.join(NAME.get_or_init(|| crate::fsutil::owner::temp_name("views")));
    let mut dirs = DIRS.lock().unwrap_or_else(PoisonError::into_inner);
    if !dirs.contains(&dir) {
        dirs.push(dir.clone());
    }
    dir
}

/// This process's view directories (one per store it used).
static DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Unmounts this process's views and removes their directories: call it when the work that
/// used them is over. (Had the process been killed first, its namespace would take the
/// mounts with it and the next kiln the directories.)
pub fn release_views() {
    let mut mounted = MOUNTED.lock().unwrap_or_else(PoisonError::into_inner);
    for target in mounted.take().unwrap_or_default() {
        let _ = nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH);
    }
    for dir in DIRS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .drain(..)
    {
        let _ = crate::fsutil::remove_path(&dir);
    }
}

/// Whether this process may mount views.
pub(super) fn available() -> bool {
    PRIVATE.load(Ordering::SeqCst)
}

/// Mounts (once per process) a read-only overlay of `layers` (base first) at `target`;
/// `empty` is an empty directory, the lowest layer of a single-layer view (overlay wants two
/// lowers when it has no upper). `None` when views are unavailable or the mount fails.
pub(super) fn mount_view(target: &Path, layers: &[PathBuf], empty: &Path) -> Option<PathBuf> {
    if !PRIVATE.load(Ordering::SeqCst) {
        return None;
    }
    let mut mounted = MOUNTED.lock().unwrap_or_else(PoisonError::into_inner);
    let set = mounted.get_or_insert_with(HashSet::new);
    if set.contains(target) {
        return Some(target.to_path_buf());
    }
    // Top-most first, as overlay wants them; duplicates (identical layers) kept once, at
    // their top-most place, or overlay refuses the mount.
    let mut lowers: Vec<&Path> = Vec::new();
    for dir in layers.iter().rev() {
        if !lowers.contains(&dir.as_path()) {
            lowers.push(dir);
        }
    }
    if lowers.len() < 2 {
        lowers.push(empty);
    }
    let mut options = String::from("lowerdir=");
    for (i, dir) in lowers.iter().enumerate() {
        let text = dir.to_str()?;
        if text.contains([':', ',', '\\']) {
            return None;
        }
        if i > 0 {
            options.push(':');
        }
        options.push_str(text);
    }
    options.push(',');
    options.push_str(crate::fsutil::userns::overlay_diff_options());
    if options.len() > OPTION_LIMIT {
        return None;
    }
    std::fs::create_dir_all(target).ok()?;
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::MS_RDONLY | MsFlags::MS_NODEV,
        Some(options.as_str()),
    )
    .ok()?;
    set.insert(target.to_path_buf());
    Some(target.to_path_buf())
}
