//! What a step changed in a copied root, written out as an overlay upperdir: new and changed
//! entries copied, deleted ones as whiteouts, replaced directories opaque.
//!
//! Changes are found by identity, not content: userspace cannot set ctime, so an entry whose
//! inode (number and birth time) and ctime are as recorded before the step is untouched. The
//! step starts only once the clock has moved past every recorded ctime, so even a change in
//! the same timer tick as the copy shows.

use std::collections::{HashMap, HashSet};
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use walkdir::WalkDir;

use super::entry::{
    CopyResult, Links, apply_metadata, copy_dir, copy_node, fail, make_whiteout, set_opaque,
    set_times,
};

/// How far the coarse clock that stamps files may lag behind the real one (one tick at
/// HZ=100, the slowest common setting).
const TIMESTAMP_GRANULARITY: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    ino: u64,
    birth: Option<SystemTime>,
    ctime: (i64, i64),
    kind: u32,
}

impl Identity {
    fn of(meta: &Metadata) -> Self {
        Identity {
            ino: meta.ino(),
            birth: meta.created().ok(),
            ctime: (meta.ctime(), meta.ctime_nsec()),
            kind: meta.mode() & nix::libc::S_IFMT,
        }
    }

    fn same_inode(&self, other: &Identity) -> bool {
        self.ino == other.ino && self.birth == other.birth && self.kind == other.kind
    }

    fn is_dir(&self) -> bool {
        self.kind == nix::libc::S_IFDIR
    }
}

/// Every entry of the copied root before the step ran.
#[derive(Debug)]
pub(in crate::executor::sandbox) struct Baseline {
    entries: HashMap<PathBuf, Identity>,
}

/// Records `root` and waits until changes made from now on get a later ctime.
pub(in crate::executor::sandbox) fn record(root: &Path) -> CopyResult<Baseline> {
    let mut entries = HashMap::new();
    let mut latest = SystemTime::UNIX_EPOCH;
    for entry in WalkDir::new(root).follow_links(false) {
        let entry = entry.map_err(|e| fail("reading", root)(e.into()))?;
        let meta = entry
            .metadata()
            .map_err(|e| fail("reading", entry.path())(e.into()))?;
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap_or(Path::new(""))
            .to_path_buf();
        let id = Identity::of(&meta);
        let ctime = SystemTime::UNIX_EPOCH
            + Duration::new(
                u64::try_from(id.ctime.0).unwrap_or(0),
                u32::try_from(id.ctime.1).unwrap_or(0),
            );
        latest = latest.max(ctime);
        entries.insert(rel, id);
    }
    let ready = latest + TIMESTAMP_GRANULARITY;
    while let Ok(left) = ready.duration_since(SystemTime::now()) {
        std::thread::sleep(left.min(TIMESTAMP_GRANULARITY));
    }
    Ok(Baseline { entries })
}

/// Writes what changed in `root` since `baseline` into the empty `upper`.
pub(super) fn write(root: &Path, baseline: &Baseline, upper: &Path) -> CopyResult<()> {
    let mut out = Writer {
        root,
        upper,
        links: Links::default(),
        dir_times: Vec::new(),
    };
    let mut seen = HashSet::new();
    // Directories present before and after as the same inode: their deleted children need
    // whiteouts. Children of new or replaced directories need none (opaque or not there).
    let mut merged: HashSet<PathBuf> = HashSet::new();
    let mut walk = WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter();
    while let Some(entry) = walk.next() {
        let entry = entry.map_err(|e| fail("reading", root)(e.into()))?;
        let meta = entry
            .metadata()
            .map_err(|e| fail("reading", entry.path())(e.into()))?;
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap_or(Path::new(""))
            .to_path_buf();
        let now = Identity::of(&meta);
        seen.insert(rel.clone());
        match baseline.entries.get(&rel) {
            Some(before) if before.same_inode(&now) => {
                if before.ctime != now.ctime {
                    out.changed(&rel, &meta)?;
                }
                if meta.is_dir() {
                    merged.insert(rel);
                }
            }
            before => {
                out.parents(&rel)?;
                if meta.is_dir() {
                    let replaced_dir = before.is_some_and(Identity::is_dir);
                    out.tree(entry.path(), &rel, replaced_dir)?;
                    walk.skip_current_dir();
                } else {
                    out.node(entry.path(), &meta, &rel)?;
                }
            }
        }
    }
    let mut deleted: Vec<&PathBuf> = baseline
        .entries
        .keys()
        .filter(|p| !seen.contains(*p) && p.parent().is_some_and(|parent| merged.contains(parent)))
        .collect();
    deleted.sort();
    for path in deleted {
        out.parents(path)?;
        make_whiteout(&upper.join(path))?;
    }
    for (path, meta) in out.dir_times.iter().rev() {
        set_times(path, meta)?;
    }
    Ok(())
}

struct Writer<'a> {
    root: &'a Path,
    upper: &'a Path,
    links: Links,
    dir_times: Vec<(PathBuf, Metadata)>,
}

impl Writer<'_> {
    /// An entry modified in place: its new state (a directory only for its own metadata).
    fn changed(&mut self, rel: &Path, meta: &Metadata) -> CopyResult<()> {
        if rel.as_os_str().is_empty() {
            apply_metadata(self.root, meta, self.upper)?;
            self.dir_times
                .push((self.upper.to_path_buf(), meta.clone()));
            return Ok(());
        }
        self.parents(rel)?;
        let dst = self.upper.join(rel);
        if meta.is_dir() {
            if std::fs::symlink_metadata(&dst).is_err() {
                copy_dir(&self.root.join(rel), meta, &dst)?;
                self.dir_times.push((dst, meta.clone()));
            }
            Ok(())
        } else {
            copy_node(&self.root.join(rel), meta, &dst, &mut self.links)
        }
    }

    fn node(&mut self, src: &Path, meta: &Metadata, rel: &Path) -> CopyResult<()> {
        copy_node(src, meta, &self.upper.join(rel), &mut self.links)
    }

    /// A new directory, copied whole; `opaque` when it replaced a directory.
    fn tree(&mut self, src: &Path, rel: &Path, opaque: bool) -> CopyResult<()> {
        for entry in WalkDir::new(src).follow_links(false) {
            let entry = entry.map_err(|e| fail("reading", src)(e.into()))?;
            let meta = entry
                .metadata()
                .map_err(|e| fail("reading", entry.path())(e.into()))?;
            let sub = entry.path().strip_prefix(src).unwrap_or(Path::new(""));
            let dst = self.upper.join(rel).join(sub);
            if meta.is_dir() {
                copy_dir(entry.path(), &meta, &dst)?;
                if opaque && entry.depth() == 0 {
                    set_opaque(&dst)?;
                }
                self.dir_times.push((dst, meta));
            } else {
                copy_node(entry.path(), &meta, &dst, &mut self.links)?;
            }
        }
        Ok(())
    }

    /// Copies up the directories above `rel` that the upper lacks, with their metadata.
    fn parents(&mut self, rel: &Path) -> CopyResult<()> {
        let mut ancestors: Vec<&Path> = rel
            .ancestors()
            .skip(1)
            .filter(|a| !a.as_os_str().is_empty())
            .collect();
        ancestors.reverse();
        for dir in ancestors {
            let dst = self.upper.join(dir);
            if std::fs::symlink_metadata(&dst).is_ok() {
                continue;
            }
            let src = self.root.join(dir);
            let meta = std::fs::symlink_metadata(&src).map_err(|e| fail("reading", &src)(e))?;
            copy_dir(&src, &meta, &dst)?;
            self.dir_times.push((dst, meta));
        }
        Ok(())
    }
}
