//! Deciding what goes: cache entries first (which to keep decides which layers stay
//! reachable), then blobs, snapshots, cache mounts and leftovers.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use oci_spec::image::Digest;

use super::inventory::{Inventory, Item};
use super::reach::Reach;
use super::{GcError, PruneOptions};
use crate::cache::CacheEntry;
use crate::fsutil::owner;
use crate::store::Store;

/// What a prune will remove, as indexes into the [`Inventory`] it was planned on.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Cache-index keys to drop.
    pub drop_cache: Vec<String>,
    /// How many cache entries stay.
    pub kept_cache: usize,
    /// Inventory items to remove.
    pub doomed: Vec<usize>,
    /// What the tagged images and GC roots keep alive.
    pub images: Reach,
    /// Distinct image digests that are tagged.
    pub tagged: usize,
    /// Things worth telling the user (an image missing its config, a corrupt cache record).
    pub warnings: Vec<String>,
}

/// What a prune needs of one cache entry: its key, blob and diff id.
struct IndexedEntry {
    key: String,
    blob: Digest,
    diff_id: Option<Digest>,
}

/// Plans a prune of `store` as walked into `inv`.
pub fn plan(store: &Store, inv: &Inventory, opts: &PruneOptions) -> Result<Plan, GcError> {
    let content = store.content();
    let young = |modified: Option<SystemTime>| is_young(modified, opts.until, opts.now);

    // 1. Roots: tags and GC roots.
    let mut images = Reach::default();
    let mut tagged = HashSet::new();
    for record in store.images().list()? {
        images.mark_root(
            content,
            &record.digest,
            &format!("image {}", record.reference),
        );
        tagged.insert(record.digest);
        // The manifests the name keeps for other platforms are images too, and the index
        // it was pulled from.
        if let Some(index) = &record.index {
            images.mark_root(
                content,
                index,
                &format!("image {} (index)", record.reference),
            );
        }
        for (platform, digest) in &record.platforms {
            images.mark_root(
                content,
                digest,
                &format!("image {} ({platform})", record.reference),
            );
            tagged.insert(digest.clone());
        }
    }
    for (name, digest) in store.meta().gc_roots()? {
        images.mark_root(content, &digest, &format!("gc root {name}"));
    }
    let mut warnings = std::mem::take(&mut images.warnings);

    // 2. Cache entries.
    let blob_info = |d: &Digest| {
        inv.find(&Item::Blob(d.clone()))
            .and_then(|i| inv.items().get(i))
    };
    let mut drop_cache = Vec::new();
    let mut kept: Vec<IndexedEntry> = Vec::new();
    let mut candidates: Vec<(IndexedEntry, Option<SystemTime>)> = Vec::new();
    for (key, bytes) in store.meta().cache_entries()? {
        let Some(entry) = decode(&key, &bytes) else {
            warnings.push(format!("cache entry {key}: unreadable record, dropped"));
            drop_cache.push(key);
            continue;
        };
        let Some(blob) = blob_info(&entry.blob) else {
            // Its blob is gone: the entry can never be a hit again.
            drop_cache.push(key);
            continue;
        };
        if images.blobs.contains(&entry.blob) || young(blob.modified) {
            kept.push(entry);
        } else {
            candidates.push((entry, blob.modified));
        }
    }
    match (opts.keep_storage, opts.all) {
        (Some(limit), _) => {
            // Most recently stored first; the oldest go once the limit is reached.
            candidates.sort_by(|(a, ta), (b, tb)| tb.cmp(ta).then_with(|| a.key.cmp(&b.key)));
            let mut counted_blobs = HashSet::new();
            let mut counted_layers = HashSet::new();
            let mut used = 0u64;
            let mut full = false;
            for (entry, _) in candidates {
                let mut cost = 0;
                if !counted_blobs.contains(&entry.blob) {
                    cost += blob_info(&entry.blob).map_or(0, |b| b.size);
                }
                if let Some(d) = entry
                    .diff_id
                    .as_ref()
                    .filter(|d| !counted_layers.contains(*d))
                {
                    let snap = inv.find(&Item::LayerSnapshot(d.clone()));
                    cost += snap.and_then(|i| inv.items().get(i)).map_or(0, |s| s.size);
                }
                if !full && used + cost <= limit {
                    used += cost;
                    counted_blobs.insert(entry.blob.clone());
                    if let Some(d) = &entry.diff_id {
                        counted_layers.insert(d.clone());
                    }
                    kept.push(entry);
                } else {
                    full = true;
                    drop_cache.push(entry.key);
                }
            }
        }
        (None, true) => drop_cache.extend(candidates.into_iter().map(|(e, _)| e.key)),
        (None, false) => kept.extend(candidates.into_iter().map(|(e, _)| e)),
    }

    // 3. What stays: the images' blobs, the kept entries' layers, and anything too young to
    // go (with what it references, so a young image stays whole).
    let mut live = images.clone();
    for entry in &kept {
        live.keep_leaf(entry.blob.clone());
        if let Some(d) = &entry.diff_id {
            live.diff_ids.insert(d.clone());
        }
    }
    for info in inv.items() {
        if let Item::Blob(d) = &info.item
            && !live.blobs.contains(d)
            && young(info.modified)
        {
            live.mark_root(content, d, "recent blob");
        }
    }
    live.warnings.clear();

    // 4. The rest goes.
    let temp_age = opts.until.map_or(opts.temp_age, |u| u.max(opts.temp_age));
    let doomed = inv
        .items()
        .iter()
        .enumerate()
        .filter(|(_, info)| match &info.item {
            Item::Blob(d) => !live.blobs.contains(d) && !young(info.modified),
            Item::LayerSnapshot(d) => !live.diff_ids.contains(d) && !young(info.modified),
            Item::RootfsSnapshot(c) => !live.chains.contains(c) && !young(info.modified),
            Item::CacheMount(_) => opts.cache_mounts && !young(info.modified),
            // A temp that names its owner goes exactly when the owner is dead; others when old.
            Item::Temp(path) | Item::Download(path) if owned(path) => dead_owner(path),
            Item::Download(_) => opts.all && !young(info.modified),
            Item::Temp(_) => !is_young(info.modified, Some(temp_age), opts.now),
            Item::MetaDb | Item::Layout(_) | Item::Foreign(_) => false,
        })
        .map(|(i, _)| i)
        .collect();

    Ok(Plan {
        kept_cache: kept.len(),
        drop_cache,
        doomed,
        images,
        tagged: tagged.len(),
        warnings,
    })
}

fn decode(key: &str, bytes: &[u8]) -> Option<IndexedEntry> {
    let entry = CacheEntry::decode(bytes)?;
    Some(IndexedEntry {
        key: key.to_owned(),
        blob: entry.layer.digest,
        diff_id: Some(entry.layer.diff_id),
    })
}

/// Whether something changed at `modified` is newer than `until` ago. With no filter nothing
/// is; an unknown time counts as young (kept), the safe side.
fn is_young(modified: Option<SystemTime>, until: Option<Duration>, now: SystemTime) -> bool {
    let Some(until) = until else {
        return false;
    };
    match modified {
        Some(t) => now.duration_since(t).map_or(true, |age| age < until),
        None => true,
    }
}

/// Whether `path`'s name carries its owner (see `fsutil::owner`).
fn owned(path: &std::path::Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| owner::Owner::of_name(n).is_some())
}

/// Whether `path`'s name carries an owner that is gone.
fn dead_owner(path: &std::path::Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(owner::is_dead_temp)
}
