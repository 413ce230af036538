//! Carrying a plan out: cache entries, then snapshots, blobs, cache mounts and leftovers.
//!
//! Cache entries go first, in one transaction, so that a prune interrupted halfway never
//! leaves a kept entry pointing at a removed blob (and the solver checks presence anyway).
//! Each removal that fails is reported and the rest still happens.

use std::io;
use std::path::Path;

use super::inventory::{Inventory, Item};
use super::plan::Plan;
use super::{GcError, RemovalError, Report, removal_io};
use crate::snapshot::{SnapshotId, Snapshots};
use crate::store::Store;

/// Removes what `plan` says; returns what was removed and what it freed.
pub(super) fn apply(store: &Store, inv: &Inventory, plan: &Plan) -> Result<Report, GcError> {
    let mut report = Report {
        cache_entries: store.meta().cache_remove_many(&plan.drop_cache)?,
        ..Report::default()
    };
    let snapshots = Snapshots::open(store.root())?;
    let mut removed = vec![false; inv.items().len()];
    // Merged rootfs before the layers they link to, then the blobs layers come from.
    let mut order: Vec<usize> = plan.doomed.clone();
    order.sort_by_key(|&i| match inv.items().get(i).map(|info| &info.item) {
        Some(Item::RootfsSnapshot(_)) => 0,
        Some(Item::LayerSnapshot(_)) => 1,
        Some(Item::Blob(_)) => 2,
        _ => 3,
    });
    for i in order {
        let Some(info) = inv.items().get(i) else {
            continue;
        };
        let result = match &info.item {
            Item::RootfsSnapshot(d) => snapshots
                .remove(&SnapshotId::Rootfs(d.clone()))
                .map(|()| true)
                .map_err(RemovalError::from),
            Item::LayerSnapshot(d) => snapshots
                .remove(&SnapshotId::Layer(d.clone()))
                .map(|()| true)
                .map_err(RemovalError::from),
            Item::Blob(d) => store.content().remove(d).map_err(RemovalError::from),
            Item::CacheMount(_) => remove_cache_mount(&info.path),
            Item::Temp(path) | Item::Download(path) => {
                crate::fsutil::leftovers::remove_leftover(path)
                    .map(|()| true)
                    .map_err(removal_io(path))
            }
            Item::MetaDb | Item::Layout(_) | Item::Foreign(_) => Ok(false),
        };
        match result {
            Ok(true) => {
                removed[i] = true;
                match &info.item {
                    Item::RootfsSnapshot(_) | Item::LayerSnapshot(_) => report.snapshots += 1,
                    Item::Blob(_) => report.blobs += 1,
                    Item::CacheMount(_) => report.cache_mounts += 1,
                    _ => report.temps += 1,
                }
            }
            Ok(false) => {}
            Err(e) => report.errors.push(e),
        }
    }
    report.freed = inv
        .freed(|i| removed.get(i).copied().unwrap_or(false))
        .iter()
        .sum();
    Ok(report)
}

/// Removes a cache mount unless a step (of a kiln that does not take the store lock) holds
/// its lock; renamed away first so no step ever sees it half-deleted.
fn remove_cache_mount(dir: &Path) -> Result<bool, RemovalError> {
    let lock = dir.join("lock");
    let held = match std::fs::OpenOptions::new().write(true).open(&lock) {
        Ok(file) => Some(file),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(removal_io(&lock)(e)),
    };
    if let Some(file) = &held {
        match rustix::fs::flock(file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(RemovalError::InUse {
                    dir: dir.to_path_buf(),
                });
            }
            Err(e) => return Err(removal_io(&lock)(e.into())),
        }
    }
    let Some(parent) = dir.parent() else {
        return Ok(false);
    };
    let name = dir
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let doomed = parent.join(format!(".rm-{}-{name}", std::process::id()));
    match std::fs::rename(dir, &doomed) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(removal_io(dir)(e)),
    }
    drop(held);
    std::fs::remove_dir_all(&doomed).map_err(removal_io(&doomed))?;
    Ok(true)
}
