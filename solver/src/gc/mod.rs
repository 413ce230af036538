//! Garbage collection and disk usage of a store: what `kiln prune` removes and `kiln du`
//! reports.
//!
//! Reachability starts from the tagged images and the GC roots (manifests, indexes, configs
//! and layers they reference) and from the cache entries that are kept (their layer blob and
//! its extracted snapshot). Everything else — blobs, layer snapshots, merged rootfs
//! snapshots of no tagged image's chain, stale temp files, and on request cache mounts — is
//! removed. Which cache entries are kept is the policy ([`PruneOptions`]): by default all
//! whose blob is still there; `all` keeps only those tagged images need; `keep_storage`
//! keeps the most recent up to a size; `until` spares anything changed more recently.
//!
//! Safety against other kiln processes: [`prune`] holds the store lock exclusively (see
//! [`crate::store::StoreLock`]), so it waits for running builds, which hold it shared, and
//! builds wait for it. It never touches `ingest/` temp files younger than an hour, nor the
//! temp directories of live processes.
//!
//! It knows nothing of Dockerfiles; it reads manifests, configs and cache records only to
//! follow references.

mod apply;
mod inventory;
mod plan;
mod reach;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

pub use inventory::{Inventory, Item, ItemInfo};
pub use plan::{Plan, plan};
pub use reach::Reach;

use crate::snapshot::SnapshotError;
use crate::store::{ContentError, ImageError, LockError, MetaError, Store, StoreLock};

/// Temp files and directories younger than this are someone's work in progress.
pub const DEFAULT_TEMP_AGE: Duration = Duration::from_secs(3600);

/// Why a prune or a usage report failed; each variant names what it failed on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GcError {
    /// Walking or removing a path failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The metadata database failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// The image tags could not be read.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The content store failed.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// The snapshot store failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The store lock could not be taken.
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// The rows of `kiln du`: together they add up to the whole store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// Manifests, indexes and configs of tagged images.
    Images,
    /// Every other blob: layers, and manifests and configs no tag reaches.
    Blobs,
    /// Extracted layers and merged root filesystems.
    Snapshots,
    /// `RUN --mount=type=cache` directories.
    CacheMounts,
    /// The metadata database (tags, cache index, context index).
    Metadata,
    /// Work in progress and leftovers: `ingest/`, `tmp/`, `snapshots/tmp/`.
    Tmp,
    /// The root directory itself, the lock file, anything kiln does not know.
    Other,
}

impl Category {
    /// Every category, in display order.
    pub const ALL: [Category; 7] = [
        Category::Images,
        Category::Blobs,
        Category::Snapshots,
        Category::CacheMounts,
        Category::Metadata,
        Category::Tmp,
        Category::Other,
    ];

    /// The machine name (`--format json`).
    pub fn name(self) -> &'static str {
        match self {
            Category::Images => "images",
            Category::Blobs => "blobs",
            Category::Snapshots => "snapshots",
            Category::CacheMounts => "cache-mounts",
            Category::Metadata => "metadata",
            Category::Tmp => "tmp",
            Category::Other => "other",
        }
    }

    /// The table label.
    pub fn label(self) -> &'static str {
        match self {
            Category::Images => "Images",
            Category::Blobs => "Layers/blobs",
            Category::Snapshots => "Snapshots",
            Category::CacheMounts => "Cache mounts",
            Category::Metadata => "Metadata db",
            Category::Tmp => "Tmp",
            Category::Other => "Other",
        }
    }
}

/// What to prune.
#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// Also drop every build cache entry tagged images do not need.
    pub all: bool,
    /// Keep the most recently stored build cache up to this many bytes (blob plus extracted
    /// layer), dropping older entries.
    pub keep_storage: Option<u64>,
    /// Only remove what last changed longer ago than this.
    pub until: Option<Duration>,
    /// Also empty the `RUN --mount=type=cache` directories.
    pub cache_mounts: bool,
    /// Temp files younger than this are left alone.
    pub temp_age: Duration,
    /// The time ages are measured from.
    pub now: SystemTime,
}

impl Default for PruneOptions {
    fn default() -> Self {
        Self {
            all: false,
            keep_storage: None,
            until: None,
            cache_mounts: false,
            temp_age: DEFAULT_TEMP_AGE,
            now: SystemTime::now(),
        }
    }
}

/// What a prune removed.
#[derive(Debug, Default)]
pub struct Report {
    /// Cache-index entries dropped.
    pub cache_entries: usize,
    /// Blobs removed.
    pub blobs: usize,
    /// Snapshots (extracted layers and merged rootfs) removed.
    pub snapshots: usize,
    /// Cache mounts removed.
    pub cache_mounts: usize,
    /// Temp files and directories removed.
    pub temps: usize,
    /// Bytes freed, as `du -sb` of the root counts them (the metadata database does not
    /// shrink: redb reuses its free pages).
    pub freed: u64,
    /// Cache entries left.
    pub kept_cache: usize,
    /// Removals that failed, each naming its path; the rest went ahead.
    pub errors: Vec<RemovalError>,
    /// Notes from planning (an image with a missing config, an unreadable cache record).
    pub warnings: Vec<String>,
}

/// Prunes `store`: takes the store lock exclusively (calling `on_wait` once if running
/// builds make it wait), walks the store, plans and removes.
/// One removal a prune could not make (the others went ahead).
#[derive(Debug, thiserror::Error)]
pub enum RemovalError {
    /// A snapshot could not be removed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// A blob could not be removed.
    #[error(transparent)]
    Blob(#[from] crate::store::ContentError),
    /// A step holds the cache mount's lock.
    #[error("{}: in use by a running step, kept", dir.display())]
    InUse {
        /// The cache mount.
        dir: PathBuf,
    },
    /// A file or directory could not be locked, renamed or removed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The error of an I/O operation on `path`.
pub(crate) fn removal_io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> RemovalError {
    let path = path.to_path_buf();
    move |source| RemovalError::Io { path, source }
}

pub fn prune(store: &Store, opts: &PruneOptions, on_wait: impl FnMut()) -> Result<Report, GcError> {
    let _lock = StoreLock::exclusive(store.root(), on_wait)?;
    let inv = Inventory::scan(store.root())?;
    let plan = plan(store, &inv, opts)?;
    let mut report = apply::apply(store, &inv, &plan)?;
    report.kept_cache = plan.kept_cache;
    report.warnings = plan.warnings;
    Ok(report)
}

/// One row of [`Usage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    /// The row.
    pub category: Category,
    /// How many: tagged images, blobs, snapshots, cache mounts, temp entries, files.
    pub count: usize,
    /// Bytes, apparent size, each inode once.
    pub size: u64,
    /// What `prune --all --cache-mounts` would free of it.
    pub reclaimable: u64,
}

/// The store's disk usage by category.
#[derive(Debug, Clone)]
pub struct Usage {
    /// One row per category, in [`Category::ALL`] order.
    pub rows: Vec<UsageRow>,
    /// The whole store: `du -sb <root>`.
    pub total: u64,
    /// What `prune --all --cache-mounts` would free.
    pub reclaimable: u64,
    /// Entries in the build cache index.
    pub cache_entries: usize,
    /// Notes (images with missing parts).
    pub warnings: Vec<String>,
}

/// Measures `store` without changing it (and without the store lock: a build running
/// meanwhile only makes the numbers a moment old).
pub fn usage(store: &Store) -> Result<Usage, GcError> {
    let inv = Inventory::scan(store.root())?;
    let opts = PruneOptions {
        all: true,
        cache_mounts: true,
        ..PruneOptions::default()
    };
    let plan = plan(store, &inv, &opts)?;
    let doomed: std::collections::HashSet<usize> = plan.doomed.iter().copied().collect();
    let freed = inv.freed(|i| doomed.contains(&i));
    let mut rows: Vec<UsageRow> = Category::ALL
        .iter()
        .map(|&category| UsageRow {
            category,
            count: 0,
            size: 0,
            reclaimable: 0,
        })
        .collect();
    for (i, info) in inv.items().iter().enumerate() {
        let category = match &info.item {
            Item::Blob(d) if plan.images.metadata.contains(d) => Category::Images,
            item => item.category(),
        };
        let Some(row) = rows.iter_mut().find(|r| r.category == category) else {
            continue;
        };
        row.size += info.size;
        row.reclaimable += freed.get(i).copied().unwrap_or(0);
        let counted = match &info.item {
            Item::Blob(_) => category == Category::Blobs,
            Item::Layout(_) => false,
            _ => true,
        };
        if counted {
            row.count += 1;
        }
    }
    if let Some(row) = rows.iter_mut().find(|r| r.category == Category::Images) {
        row.count = plan.tagged;
    }
    Ok(Usage {
        total: inv.total(),
        reclaimable: freed.iter().sum(),
        cache_entries: plan.kept_cache + plan.drop_cache.len(),
        warnings: plan.warnings,
        rows,
    })
}
