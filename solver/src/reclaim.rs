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

use crate::fsutil::leftovers::sweep_dir;

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
