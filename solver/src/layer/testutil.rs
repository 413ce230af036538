//! Test helpers shared by the layer and snapshot tests: unique temp dirs, a sample tree with
//! every kind of file, and a tree summary to compare extraction results.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{CWD, FileType, Mode};
use sha2::{Digest as _, Sha256};

use super::{meta, xattr};

/// A directory under the system temp dir, removed when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(label: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("kiln-test-{label}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    pub(crate) fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Writes a file with `content`, `mode` and `uid:gid`.
pub(crate) fn file(root: &Path, rel: &str, content: &[u8], mode: u32, owner: (u32, u32)) {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(&path, content).unwrap();
    meta::set_owner(&path, owner.0.into(), owner.1.into()).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Creates a directory with `mode` and `uid:gid`.
pub(crate) fn dir(root: &Path, rel: &str, mode: u32, owner: (u32, u32)) {
    let path = root.join(rel);
    fs::create_dir_all(&path).unwrap();
    meta::set_owner(&path, owner.0.into(), owner.1.into()).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
}

/// `len` random-looking bytes (xorshift), the same for the same seed: what
/// `/dev/urandom` or an already compressed file puts in a layer.
pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[5]
        })
        .collect()
}

/// Creates a device node or fifo.
pub(crate) fn node(root: &Path, rel: &str, kind: FileType, mode: u32, dev: (u32, u32)) {
    let path = root.join(rel);
    rustix::fs::mknodat(
        CWD,
        &path,
        kind,
        Mode::from_raw_mode(mode),
        rustix::fs::makedev(dev.0, dev.1),
    )
    .unwrap();
    meta::set_mode(&path, mode).unwrap();
}

/// An overlay whiteout (0:0 character device) at `rel`.
pub(crate) fn whiteout(root: &Path, rel: &str) {
    node(root, rel, FileType::CharacterDevice, 0, (0, 0));
}

/// Sets every mtime under `root` (root excluded) to `seconds`, without touching the order of
/// anything else.
pub(crate) fn set_all_mtimes(root: &Path, seconds: i64) {
    for entry in walkdir::WalkDir::new(root)
        .min_depth(1)
        .contents_first(true)
    {
        let entry = entry.unwrap();
        let t = meta::timespec(seconds, 0);
        meta::set_times(entry.path(), t, t).unwrap();
    }
}

/// The sample tree of the round-trip tests: every file kind, several modes and owners, a
/// hardlink, long paths and link targets, xattrs, a big uid.
pub(crate) fn sample_tree(root: &Path) {
    dir(root, "bin", 0o755, (0, 0));
    file(root, "bin/tool", b"#!/bin/sh\necho tool\n", 0o4755, (0, 0));
    dir(root, "etc", 0o755, (0, 0));
    file(
        root,
        "etc/passwd",
        b"root:x:0:0::/root:/bin/sh\n",
        0o644,
        (1000, 1000),
    );
    file(root, "etc/shadow", b"root:*:19000::::::\n", 0o640, (0, 42));
    fs::hard_link(root.join("etc/passwd"), root.join("etc/hard")).unwrap();
    symlink("passwd", root.join("etc/link")).unwrap();
    meta::set_owner(&root.join("etc/link"), 1000, 1000).unwrap();
    file(root, "etc/nobody", b"", 0o000, (3_000_000, 3_000_001));
    dir(root, "tmp", 0o1777, (0, 0));
    dir(root, "empty", 0o700, (5, 6));
    let long_dir = format!("long/{}/{}", "d".repeat(60), "e".repeat(60));
    fs::create_dir_all(root.join(&long_dir)).unwrap();
    file(
        root,
        &format!("{long_dir}/{}", "f".repeat(90)),
        b"split over prefix",
        0o600,
        (1, 2),
    );
    file(
        root,
        &format!("{long_dir}/{}", "g".repeat(200)),
        b"needs PAX",
        0o644,
        (0, 0),
    );
    symlink(
        format!("../{}", "t".repeat(150)),
        root.join("long/far-link"),
    )
    .unwrap();
    file(root, "xattr-file", b"with attributes", 0o644, (0, 0));
    xattr::set(
        &root.join("xattr-file"),
        OsStr::new("user.kiln"),
        b"hello\0world",
    )
    .unwrap();
    xattr::set(
        &root.join("xattr-file"),
        OsStr::new("trusted.kiln"),
        b"privileged",
    )
    .unwrap();
    dir(root, "dev", 0o755, (0, 0));
    node(root, "dev/null", FileType::CharacterDevice, 0o666, (1, 3));
    node(root, "dev/loop0", FileType::BlockDevice, 0o660, (7, 0));
    node(root, "fifo", FileType::Fifo, 0o644, (0, 0));
    let big: Vec<u8> = (0..(1 << 20) + 77)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    file(root, "big.bin", &big, 0o644, (0, 0));
    set_all_mtimes(root, 1_000_000_000);
}

/// What the tests compare about one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub(crate) kind: &'static str,
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) mtime: i64,
    pub(crate) rdev: u64,
    pub(crate) content: Option<String>,
    pub(crate) link: Option<PathBuf>,
    pub(crate) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// For a file with several links in the tree: the first of its paths in sorted order.
    pub(crate) hardlink_group: Option<PathBuf>,
}

/// Every path under `root` (root excluded) with what the tests compare about it.
pub(crate) fn summarize(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    // Hardlink groups within this tree only: a rootfs' files also link into layer dirs.
    let mut links: BTreeMap<(u64, u64), Vec<PathBuf>> = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let entry = entry.unwrap();
        let m = fs::symlink_metadata(entry.path()).unwrap();
        if !m.is_dir() {
            let rel = entry.path().strip_prefix(root).unwrap().to_path_buf();
            links.entry((m.dev(), m.ino())).or_default().push(rel);
        }
    }
    for entry in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(root).unwrap().to_path_buf();
        let m = fs::symlink_metadata(entry.path()).unwrap();
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_file() {
            "file"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_char_device() {
            "char"
        } else if ft.is_block_device() {
            "block"
        } else if ft.is_fifo() {
            "fifo"
        } else {
            "other"
        };
        let hardlink_group = links
            .get(&(m.dev(), m.ino()))
            .filter(|paths| !ft.is_dir() && paths.len() > 1)
            .map(|paths| paths[0].clone());
        out.insert(
            rel,
            Node {
                kind,
                mode: if ft.is_symlink() {
                    0
                } else {
                    m.mode() & 0o7777
                },
                uid: m.uid(),
                gid: m.gid(),
                mtime: m.mtime(),
                rdev: m.rdev(),
                content: ft
                    .is_file()
                    .then(|| hex::encode(Sha256::digest(fs::read(entry.path()).unwrap()))),
                link: ft
                    .is_symlink()
                    .then(|| fs::read_link(entry.path()).unwrap()),
                xattrs: xattr::read_all(entry.path()).unwrap(),
                hardlink_group,
            },
        );
    }
    out
}

/// Asserts two trees are equal, naming the first path that differs.
pub(crate) fn assert_same_tree(left: &Path, right: &Path) {
    let (a, b) = (summarize(left), summarize(right));
    let a_paths: Vec<_> = a.keys().collect();
    let b_paths: Vec<_> = b.keys().collect();
    assert_eq!(
        a_paths, b_paths,
        "paths differ between {left:?} and {right:?}"
    );
    for (path, node) in &a {
        assert_eq!(Some(node), b.get(path), "{path:?} differs");
    }
}

/// The names directly under `dir`, sorted.
pub(crate) fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| String::from_utf8_lossy(e.unwrap().file_name().as_bytes()).into_owned())
        .collect();
    names.sort();
    names
}
