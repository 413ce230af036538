//! Reclaiming what killed kiln processes left behind: temp files and directories in the store,
//! the executors' bundles and temp dirs, step cgroups, and hidden temps beside an export's
//! destination.
//!
//! Each of them is named after its owner (see [`crate::fsutil::owner`]); only those whose
//! owner is dead are removed, so a sweep never touches a concurrent build's work. Every kiln
//! command that opens a store starts [`in_background`]: the sweep runs beside the command and
//! is given a bounded time to finish after it ([`wait_for_background`]); what it has not
//! finished by then the next kiln finds again. `kiln prune`
//! removes the store's in its garbage collection and the rest with [`outside_store`],
//! synchronously. Exports sweep the directory they write into ([`beside`]).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use crate::fsutil::owner;

/// The store's temp areas under `root`: where kiln puts work in progress.
pub fn store_areas(root: &Path) -> Vec<PathBuf> {
    [
        "tmp",
        "ingest",
        "snapshots/tmp",
        "snapshots/views",
        "http-cache/urls",
    ]
    .iter()
    .map(|sub| root.join(sub))
    .collect()
}

/// Starts removing, on a thread of its own, the leftovers of dead kiln processes in the store
/// at `root` and in the executors' areas.
pub fn in_background(root: &Path) {
    let root = root.to_path_buf();
    *BACKGROUND.0.lock().unwrap_or_else(PoisonError::into_inner) += 1;
    let spawned = std::thread::Builder::new()
        .name("kiln-reclaim".into())
        .spawn(move || {
            outside_store();
            for dir in store_areas(&root) {
                sweep_dir(&dir);
            }
            background_done();
        });
    if spawned.is_err() {
        background_done();
    }
}

/// Background sweeps still running, and their signal when one ends.
static BACKGROUND: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

fn background_done() {
    let (running, ended) = &BACKGROUND;
    *running.lock().unwrap_or_else(PoisonError::into_inner) -= 1;
    ended.notify_all();
}

/// Waits up to `limit` for the background sweeps to finish; whether they did.
pub fn wait_for_background(limit: Duration) -> bool {
    let (running, ended) = &BACKGROUND;
    let guard = running.lock().unwrap_or_else(PoisonError::into_inner);
    let (guard, _) = ended
        .wait_timeout_while(guard, limit, |n| *n > 0)
        .unwrap_or_else(PoisonError::into_inner);
    *guard == 0
}

/// Removes the leftovers of dead kiln processes outside any store: step cgroups, runc bundles
/// and the sandbox's default temp dirs. Returns how many went.
pub fn outside_store() -> usize {
    crate::executor::sweep_stale()
}

/// Removes the dead owners' temps directly in `dir`; returns how many went.
pub fn sweep_dir(dir: &Path) -> usize {
    owner::dead_temps_in(dir)
        .iter()
        .filter(|path| remove_leftover(path).is_ok())
        .count()
}

/// Sweeps the directory `dest` is written into, once per process and directory: the hidden
/// temps an interrupted export left there go with the next export there.
pub(crate) fn beside(dest: &Path) {
    static SWEPT: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut swept = SWEPT.lock().unwrap_or_else(PoisonError::into_inner);
    if swept
        .get_or_insert_with(HashSet::new)
        .insert(dir.to_path_buf())
    {
        sweep_dir(dir);
    }
}

/// Removes a leftover file or directory tree. Anything still mounted below it (a leftover of a
/// kiln that mounted in the host's namespace) is detached first, so the removal never reaches
/// into a mounted layer or a user's bind mount.
pub(crate) fn remove_leftover(path: &Path) -> std::io::Result<()> {
    for mount in mounts_under(path) {
        let _ = nix::mount::umount2(&mount, nix::mount::MntFlags::MNT_DETACH);
    }
    crate::fsutil::remove_path(path)
}

/// Mount points at or below `path` in this process's namespace, deepest first.
fn mounts_under(path: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mountinfo(field)))
        .filter(|point| point.starts_with(path))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found
}

/// mountinfo writes space, tab, newline and backslash as three octal digits after `\`.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(code) = bytes
                .get(i + 1..i + 4)
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        {
            out.push(code);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_dir::TestDir;

    #[test]
    fn only_dead_owners_temps_go() {
        let dir = TestDir::new("reclaim-sweep");
        let dead_dir = dir.path().join(format!("kiln-tmp-{}-1-0.layer", u32::MAX));
        std::fs::create_dir_all(dead_dir.join("a/b")).unwrap();
        std::fs::write(dead_dir.join("a/b/file"), "x").unwrap();
        let dead_file = dir
            .path()
            .join(format!(".kiln-tmp-{}-1-1.app.tar", u32::MAX));
        std::fs::write(&dead_file, "half").unwrap();
        let mine = dir.path().join(owner::temp_name("mine"));
        std::fs::create_dir(&mine).unwrap();
        let foreign = dir.path().join("blob-1.tmp");
        std::fs::write(&foreign, "?").unwrap();

        assert_eq!(sweep_dir(dir.path()), 2);
        assert!(!dead_dir.exists() && !dead_file.exists());
        assert!(mine.is_dir() && foreign.is_file());
        assert_eq!(sweep_dir(&dir.path().join("missing")), 0);
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo(r"/a\040b\134c"), "/a b\\c");
        assert_eq!(unescape_mountinfo(r"/plain\04"), r"/plain\04");
    }
}
