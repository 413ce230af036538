//! Merged root filesystems: a single layer reproduces its tree; stacked layers apply
//! whiteouts and opaque directories the way overlayfs would.

use std::os::unix::fs::MetadataExt;

use oci_spec::image::Digest;

use super::Blobs;
use crate::layer::testutil::{TempDir, assert_same_tree, dir, file, names, sample_tree, whiteout};
use crate::layer::xattr;
use crate::snapshot::Snapshots;

#[test]
fn one_layer_rootfs_is_the_layer_tree() {
    let root = TempDir::new("rootfs-one");
    let diff = TempDir::new("rootfs-one-diff");
    sample_tree(diff.path());
    let mut blobs = Blobs::default();
    let id = blobs.add(diff.path());
    let snapshots = Snapshots::open(root.path()).unwrap();
    let open = |d: &Digest| blobs.open(d);
    let rootfs = snapshots.rootfs(std::slice::from_ref(&id), &open).unwrap();
    assert_same_tree(diff.path(), &rootfs);
    assert_eq!(snapshots.rootfs(&[id], &open).unwrap(), rootfs);
    assert_eq!(blobs.opened.get(), 1);
}

#[test]
fn whiteouts_and_opaque_dirs_round_trip_through_two_layers() {
    let lower = TempDir::new("rootfs-lower");
    dir(lower.path(), "a", 0o755, (0, 0));
    file(lower.path(), "a/f", b"lower f", 0o644, (0, 0));
    dir(lower.path(), "a/sub", 0o755, (0, 0));
    file(lower.path(), "a/sub/deep", b"deep", 0o644, (0, 0));
    file(lower.path(), "b", b"lower b", 0o644, (0, 0));
    dir(lower.path(), "c", 0o755, (0, 0));
    file(lower.path(), "c/keep", b"keep", 0o644, (0, 0));
    file(lower.path(), "c/x", b"x", 0o644, (0, 0));
    std::fs::hard_link(lower.join("c/keep"), lower.join("c/keep-link")).unwrap();
    file(lower.path(), "d", b"file that becomes a dir", 0o644, (0, 0));
    dir(lower.path(), "e", 0o755, (0, 0));
    file(
        lower.path(),
        "e/inside",
        b"dir that becomes a file",
        0o644,
        (0, 0),
    );
    xattr::set(&lower.join("c"), std::ffi::OsStr::new("user.lower"), b"1").unwrap();

    let upper = TempDir::new("rootfs-upper");
    dir(upper.path(), "a", 0o700, (7, 7));
    xattr::set_opaque(&upper.join("a")).unwrap();
    file(upper.path(), "a/new", b"upper new", 0o600, (0, 0));
    whiteout(upper.path(), "b");
    dir(upper.path(), "c", 0o755, (0, 0));
    whiteout(upper.path(), "c/x");
    dir(upper.path(), "d", 0o755, (0, 0));
    file(upper.path(), "d/child", b"child", 0o644, (0, 0));
    file(upper.path(), "e", b"now a file", 0o644, (0, 0));

    let mut blobs = Blobs::default();
    let chain = [blobs.add(lower.path()), blobs.add(upper.path())];
    let root = TempDir::new("rootfs-two");
    let snapshots = Snapshots::open(root.path()).unwrap();
    let open = |d: &Digest| blobs.open(d);
    let rootfs = snapshots.rootfs(&chain, &open).unwrap();
    assert_eq!(
        rootfs
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap(),
        crate::snapshot::chain_id(&chain).unwrap().digest()
    );

    assert_eq!(names(&rootfs), ["a", "c", "d", "e"]);
    assert_eq!(names(&rootfs.join("a")), ["new"]);
    let a = std::fs::metadata(rootfs.join("a")).unwrap();
    assert_eq!((a.mode() & 0o7777, a.uid(), a.gid()), (0o700, 7, 7));
    assert!(
        !xattr::is_opaque(&rootfs.join("a")).unwrap(),
        "merged dirs carry no overlay xattrs"
    );
    assert_eq!(names(&rootfs.join("c")), ["keep", "keep-link"]);
    let (keep, link) = (
        std::fs::metadata(rootfs.join("c/keep")).unwrap(),
        std::fs::metadata(rootfs.join("c/keep-link")).unwrap(),
    );
    assert_eq!(keep.ino(), link.ino());
    assert!(
        xattr::read_all(&rootfs.join("c")).unwrap().is_empty(),
        "upper dir's xattrs replace the lower's"
    );
    assert_eq!(names(&rootfs.join("d")), ["child"]);
    assert_eq!(std::fs::read(rootfs.join("e")).unwrap(), b"now a file");

    // Each layer directory stays in overlay form, usable as a lowerdir.
    let upper_dir = snapshots
        .layer_dir(&chain[1], || blobs.open(&chain[1]))
        .unwrap();
    assert_eq!(names(&upper_dir), ["a", "b", "c", "d", "e"]);
    assert!(xattr::is_opaque(&upper_dir.join("a")).unwrap());
}

#[test]
fn scratch_is_an_empty_directory() {
    let root = TempDir::new("rootfs-scratch");
    let snapshots = Snapshots::open(root.path()).unwrap();
    let blobs = Blobs::default();
    let open = |d: &Digest| blobs.open(d);
    let rootfs = snapshots.rootfs(&[], &open).unwrap();
    assert!(names(&rootfs).is_empty());
    assert!(rootfs.ends_with("rootfs/scratch/fs"));
}
