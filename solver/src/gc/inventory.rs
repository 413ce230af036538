//! Everything under a store root, as the things prune can remove and what each costs on disk.
//!
//! Sizes are **apparent sizes** (`st_size`), counted the way `du -sb` counts them: every
//! file, directory and symlink under the root, each inode once however many hard links it
//! has. A merged rootfs snapshot hardlinks its layer snapshots' files, so a shared inode is
//! counted once (attributed to the first item walked, layers before rootfs) and only freed
//! when every item holding a link to it goes.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fs::Metadata;
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use oci_spec::image::Digest;

use super::{Category, GcError};
use crate::store::LOCK_FILE;

/// One removable (or at least countable) thing in the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Item {
    /// `blobs/sha256/<hex>`.
    Blob(Digest),
    /// `snapshots/layers/<hex>`: one extracted layer, by diff_id.
    LayerSnapshot(Digest),
    /// `snapshots/rootfs/<hex>`: a merged chain, by chain ID.
    RootfsSnapshot(Digest),
    /// `cache-mounts/<name>`: one `RUN --mount=type=cache` directory.
    CacheMount(String),
    /// An entry of `ingest/`, `tmp/` or `snapshots/tmp/`: work in progress or a leftover.
    Temp(PathBuf),
    /// An entry of `http-cache/files` or `http-cache/urls`: an `ADD <url>` download or its
    /// ETag record; either can go at any time (a missing one is downloaded again).
    Download(PathBuf),
    /// `meta.redb`.
    MetaDb,
    /// Something at the top of the root that kiln did not put there.
    Foreign(PathBuf),
    /// The directories of the layout itself and anything kiln does not collect, by the
    /// category they count in.
    Layout(Category),
}

impl Item {
    /// The `kiln du` row this item counts in (blobs of tagged images are moved to Images by
    /// the caller, which knows the tags).
    pub fn category(&self) -> Category {
        match self {
            Item::Blob(_) => Category::Blobs,
            Item::LayerSnapshot(_) | Item::RootfsSnapshot(_) => Category::Snapshots,
            Item::CacheMount(_) => Category::CacheMounts,
            Item::Temp(_) => Category::Tmp,
            Item::MetaDb => Category::Metadata,
            Item::Foreign(_) | Item::Download(_) => Category::Other,
            Item::Layout(category) => *category,
        }
    }
}

/// An item with its place and cost.
#[derive(Debug, Clone)]
pub struct ItemInfo {
    /// What it is.
    pub item: Item,
    /// Its top path.
    pub path: PathBuf,
    /// Bytes counted for it (a shared inode counts for the first item seen holding it).
    pub size: u64,
    /// Bytes only it holds.
    exclusive: u64,
    /// When it last changed (for a cache mount, its directory or its data, the newer).
    pub modified: Option<SystemTime>,
}

#[derive(Debug)]
struct Shared {
    size: u64,
    owners: Vec<usize>,
}

/// The whole store root, walked once.
#[derive(Debug, Default)]
pub struct Inventory {
    items: Vec<ItemInfo>,
    index: HashMap<Item, usize>,
    shared: HashMap<(u64, u64), Shared>,
}

impl Inventory {
    /// Walks `root`. Entries that vanish meanwhile (another kiln process at work) are
    /// skipped; any other error names its path.
    pub fn scan(root: &Path) -> Result<Self, GcError> {
        let mut inv = Self::default();
        let Some(meta) = lstat(root)? else {
            return Err(GcError::Io {
                path: root.to_path_buf(),
                source: io::Error::from(io::ErrorKind::NotFound),
            });
        };
        let top = inv.item(Item::Layout(Category::Other), root, &meta);
        inv.account(top, &meta);
        for (name, path) in children(root)? {
            match name.as_str() {
                "blobs" => inv.blobs(&path)?,
                "snapshots" => inv.snapshots(&path)?,
                "cache-mounts" => inv.container(&path, Category::CacheMounts, |n, _| {
                    Item::CacheMount(n.to_owned())
                })?,
                "ingest" | "tmp" => {
                    inv.container(&path, Category::Tmp, |_, p| Item::Temp(p.to_path_buf()))?;
                }
                "http-cache" => {
                    inv.single(&path, Item::Layout(Category::Other))?;
                    for (_, sub) in children(&path)? {
                        inv.container(&sub, Category::Other, |_, p| {
                            Item::Download(p.to_path_buf())
                        })?;
                    }
                }
                "meta.redb" => inv.tree(&path, Item::MetaDb)?,
                LOCK_FILE => inv.tree(&path, Item::Layout(Category::Other))?,
                _ => inv.tree(&path, Item::Foreign(path.clone()))?,
            }
        }
        Ok(inv)
    }

    /// Every item found, in walk order.
    pub fn items(&self) -> &[ItemInfo] {
        &self.items
    }

    /// The index of `item`, if it was found.
    pub fn find(&self, item: &Item) -> Option<usize> {
        self.index.get(item).copied()
    }

    /// The store's size: what `du -sb <root>` says.
    pub fn total(&self) -> u64 {
        self.items.iter().map(|i| i.size).sum()
    }

    /// What removing the items for which `doomed` says yes frees, per item: its own bytes
    /// plus the shared inodes all of whose holders go (counted for the first holder).
    pub fn freed(&self, doomed: impl Fn(usize) -> bool) -> Vec<u64> {
        let mut freed: Vec<u64> = self
            .items
            .iter()
            .enumerate()
            .map(|(i, info)| if doomed(i) { info.exclusive } else { 0 })
            .collect();
        for shared in self.shared.values() {
            if shared.owners.iter().all(|&o| doomed(o))
                && let Some(first) = shared.owners.first()
                && let Some(slot) = freed.get_mut(*first)
            {
                *slot += shared.size;
            }
        }
        freed
    }

    fn blobs(&mut self, dir: &Path) -> Result<(), GcError> {
        let layout = Item::Layout(Category::Blobs);
        self.single(dir, layout.clone())?;
        for (name, path) in children(dir)? {
            if name != "sha256" {
                self.tree(&path, layout.clone())?;
                continue;
            }
            self.single(&path, layout.clone())?;
            for (hex, blob) in children(&path)? {
                let item = Digest::try_from(format!("sha256:{hex}"))
                    .map_or_else(|_| layout.clone(), Item::Blob);
                self.tree(&blob, item)?;
            }
        }
        Ok(())
    }

    fn snapshots(&mut self, dir: &Path) -> Result<(), GcError> {
        let layout = Item::Layout(Category::Snapshots);
        self.single(dir, layout.clone())?;
        // Sorted: `layers` before `rootfs`, so the inodes they share count for the layers.
        for (name, path) in children(dir)? {
            match name.as_str() {
                "layers" => self.container(&path, Category::Snapshots, |hex, _| {
                    by_hex(hex).map_or(Item::Layout(Category::Snapshots), Item::LayerSnapshot)
                })?,
                // `scratch` (the empty chain) is not a digest and stays.
                "rootfs" => self.container(&path, Category::Snapshots, |hex, _| {
                    by_hex(hex).map_or(Item::Layout(Category::Snapshots), Item::RootfsSnapshot)
                })?,
                // Work in progress, and each process's directory of view mount points.
                "tmp" | "views" => {
                    self.container(&path, Category::Tmp, |_, p| Item::Temp(p.to_path_buf()))?;
                }
                _ => self.tree(&path, layout.clone())?,
            }
        }
        Ok(())
    }

    /// A directory of the layout whose entries are items of their own.
    fn container(
        &mut self,
        dir: &Path,
        category: Category,
        item_of: impl Fn(&str, &Path) -> Item,
    ) -> Result<(), GcError> {
        self.single(dir, Item::Layout(category))?;
        for (name, path) in children(dir)? {
            self.tree(&path, item_of(&name, &path))?;
        }
        Ok(())
    }

    /// Counts just `path` itself (a directory of the layout, not its entries).
    fn single(&mut self, path: &Path, item: Item) -> Result<(), GcError> {
        if let Some(meta) = lstat(path)? {
            let idx = self.item(item, path, &meta);
            self.account(idx, &meta);
        }
        Ok(())
    }

    /// Counts `path` and everything under it as `item`.
    fn tree(&mut self, path: &Path, item: Item) -> Result<(), GcError> {
        let Some(meta) = lstat(path)? else {
            return Ok(());
        };
        let idx = self.item(item, path, &meta);
        let mut stack = vec![(path.to_path_buf(), meta)];
        while let Some((path, meta)) = stack.pop() {
            self.account(idx, &meta);
            if !meta.is_dir() {
                continue;
            }
            for (_, child) in children(&path)? {
                if let Some(meta) = lstat(&child)? {
                    stack.push((child, meta));
                }
            }
        }
        Ok(())
    }

    fn item(&mut self, item: Item, path: &Path, meta: &Metadata) -> usize {
        if let Some(&idx) = self.index.get(&item) {
            return idx;
        }
        let mut modified = meta.modified().ok();
        if let Item::CacheMount(_) = item {
            // What a step writes lands in `data/`, not in the directory itself.
            let data = lstat(&path.join("data")).ok().flatten();
            modified = modified.max(data.and_then(|m| m.modified().ok()));
        }
        let idx = self.items.len();
        self.items.push(ItemInfo {
            item: item.clone(),
            path: path.to_path_buf(),
            size: 0,
            exclusive: 0,
            modified,
        });
        self.index.insert(item, idx);
        idx
    }

    fn account(&mut self, idx: usize, meta: &Metadata) {
        let size = meta.len();
        let Some(info) = self.items.get_mut(idx) else {
            return;
        };
        // Directories cannot be hard links; their nlink counts subdirectories.
        if meta.is_dir() || meta.nlink() <= 1 {
            info.size += size;
            info.exclusive += size;
            return;
        }
        match self.shared.entry((meta.dev(), meta.ino())) {
            Entry::Occupied(mut e) => {
                if !e.get().owners.contains(&idx) {
                    e.get_mut().owners.push(idx);
                }
            }
            Entry::Vacant(e) => {
                e.insert(Shared {
                    size,
                    owners: vec![idx],
                });
                info.size += size;
            }
        }
    }
}

fn by_hex(hex: &str) -> Option<Digest> {
    Digest::try_from(format!("sha256:{hex}")).ok()
}

/// `lstat`, with a vanished path as `None`.
fn lstat(path: &Path) -> Result<Option<Metadata>, GcError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(meta)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(GcError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// A directory's entries (name, path), sorted by name; a vanished directory has none.
fn children(dir: &Path) -> Result<Vec<(String, PathBuf)>, GcError> {
    let io_err = |source| GcError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(e)),
        };
        out.push((
            entry.file_name().to_string_lossy().into_owned(),
            entry.path(),
        ));
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_dir::TestDir;
    use std::fs;

    fn hex(byte: char) -> String {
        std::iter::repeat_n(byte, 64).collect()
    }

    /// The apparent size of a tree the way `du -sb` adds it up.
    fn du(root: &Path) -> u64 {
        let out = std::process::Command::new("du")
            .arg("-sb")
            .arg(root)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    #[test]
    fn classifies_and_matches_du() {
        let dir = TestDir::new("gc-inventory");
        let root = dir.path();
        let write = |rel: &str, bytes: &[u8]| {
            let p = root.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, bytes).unwrap();
        };
        write(&format!("blobs/sha256/{}", hex('a')), &[1; 1000]);
        write("blobs/sha256/not-a-digest", b"x");
        write(
            &format!("snapshots/layers/{}/fs/etc/file", hex('b')),
            &[2; 5000],
        );
        write(&format!("snapshots/layers/{}/fs/solo", hex('b')), &[2; 77]);
        fs::create_dir_all(root.join(format!("snapshots/rootfs/{}/fs/etc", hex('c')))).unwrap();
        fs::hard_link(
            root.join(format!("snapshots/layers/{}/fs/etc/file", hex('b'))),
            root.join(format!("snapshots/rootfs/{}/fs/etc/file", hex('c'))),
        )
        .unwrap();
        fs::create_dir_all(root.join("snapshots/rootfs/scratch/fs")).unwrap();
        write("cache-mounts/cafe/data/pkg", &[3; 300]);
        write("cache-mounts/cafe/lock", b"");
        write("ingest/blob-1.tmp", &[4; 10]);
        write("tmp/empty-context/x", b"");
        write("meta.redb", &[5; 4096]);
        write("gc.lock", b"");
        std::os::unix::fs::symlink("nowhere/at/all", root.join("link")).unwrap();

        let inv = Inventory::scan(root).unwrap();
        assert_eq!(inv.total(), du(root), "total differs from du -sb");

        let size = |item: &Item| inv.items()[inv.find(item).unwrap()].size;
        let blob = Item::Blob(by_hex(&hex('a')).unwrap());
        assert_eq!(size(&blob), 1000);
        let layer = Item::LayerSnapshot(by_hex(&hex('b')).unwrap());
        let rootfs = Item::RootfsSnapshot(by_hex(&hex('c')).unwrap());
        assert!(size(&layer) >= 5077);
        // The hardlinked file counts for the layer only: the rootfs is just its directories.
        let rootfs_dirs: u64 = ["", "/fs", "/fs/etc"]
            .iter()
            .map(|d| {
                let p = root.join(format!("snapshots/rootfs/{}{d}", hex('c')));
                fs::symlink_metadata(p).unwrap().len()
            })
            .sum();
        assert_eq!(size(&rootfs), rootfs_dirs);
        assert!(inv.find(&Item::CacheMount("cafe".into())).is_some());
        assert!(
            inv.find(&Item::Temp(root.join("ingest/blob-1.tmp")))
                .is_some()
        );
        assert!(
            inv.find(&Item::Temp(root.join("tmp/empty-context")))
                .is_some()
        );
        assert_eq!(size(&Item::MetaDb), 4096);

        // Freeing the rootfs alone frees only its directories; with its layer, the file too.
        let li = inv.find(&layer).unwrap();
        let ri = inv.find(&rootfs).unwrap();
        let only_rootfs: u64 = inv.freed(|i| i == ri).iter().sum();
        let both: u64 = inv.freed(|i| i == ri || i == li).iter().sum();
        assert_eq!(only_rootfs, size(&rootfs));
        assert_eq!(both, size(&rootfs) + size(&layer));
        let everything: u64 = inv.freed(|_| true).iter().sum();
        assert_eq!(everything, inv.total());
    }

    #[test]
    fn missing_root_is_an_error_naming_it() {
        let dir = TestDir::new("gc-inventory-missing");
        let err = Inventory::scan(&dir.path().join("nope")).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
