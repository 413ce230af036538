//! `-o type=local` and `-o type=tar`.

use std::os::unix::fs::MetadataExt;

use oci_spec::image::Digest;

use super::Blobs;
use crate::layer::testutil::{TempDir, assert_same_tree, file, names, sample_tree};
use crate::layer::{ExtractOptions, extract_layer};
use crate::snapshot::{SnapshotError, Snapshots};

fn two_layer_store() -> (TempDir, Blobs, Vec<Digest>) {
    let base = TempDir::new("export-base");
    sample_tree(base.path());
    let top = TempDir::new("export-top");
    file(top.path(), "added", b"by the second layer", 0o644, (0, 0));
    crate::layer::testutil::whiteout(top.path(), "fifo");
    let mut blobs = Blobs::default();
    let chain = vec![blobs.add(base.path()), blobs.add(top.path())];
    (TempDir::new("export-root"), blobs, chain)
}

#[test]
fn local_export_is_a_copy_of_the_rootfs() {
    let (root, blobs, chain) = two_layer_store();
    let snapshots = Snapshots::open(root.path()).unwrap();
    let open = |d: &Digest| blobs.open(d);
    let out = TempDir::new("export-local");
    let dest = out.join("out");
    snapshots.export_local(&chain, &open, &dest).unwrap();
    let rootfs = snapshots.rootfs(&chain, &open).unwrap();
    assert_same_tree(&rootfs, &dest);
    assert!(!dest.join("fifo").exists() && dest.join("added").exists());
    // Copies, not links into the store; hardlinks within the tree kept.
    let exported = std::fs::metadata(dest.join("etc/passwd")).unwrap();
    assert_ne!(
        exported.ino(),
        std::fs::metadata(rootfs.join("etc/passwd")).unwrap().ino()
    );
    assert_eq!(
        exported.ino(),
        std::fs::metadata(dest.join("etc/hard")).unwrap().ino()
    );
    assert_eq!(names(out.path()), ["out"], "no temporary left beside it");

    // An empty directory is replaced, a non-empty one refused.
    let empty = out.join("empty");
    std::fs::create_dir(&empty).unwrap();
    snapshots.export_local(&chain, &open, &empty).unwrap();
    assert!(empty.join("added").exists());
    let err = snapshots.export_local(&chain, &open, &dest).unwrap_err();
    assert!(
        matches!(err, SnapshotError::DestinationNotEmpty { ref path } if *path == dest),
        "{err}"
    );
}

#[test]
fn tar_export_extracts_to_the_rootfs() {
    let (root, blobs, chain) = two_layer_store();
    let snapshots = Snapshots::open(root.path()).unwrap();
    let open = |d: &Digest| blobs.open(d);
    let out = TempDir::new("export-tar");
    let tar = out.join("image.tar");
    std::fs::write(&tar, b"old content is replaced").unwrap();
    snapshots.export_tar(&chain, &open, &tar).unwrap();
    assert_eq!(names(out.path()), ["image.tar"]);
    let extracted = out.join("x");
    extract_layer(
        std::fs::File::open(&tar).unwrap(),
        &extracted,
        &ExtractOptions::default(),
    )
    .unwrap();
    assert_same_tree(&snapshots.rootfs(&chain, &open).unwrap(), &extracted);
}
