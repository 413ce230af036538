//! Layer directories, chain IDs, listing, removal and leftovers.

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use oci_spec::image::Digest;

use super::Blobs;
use crate::layer::testutil::{TempDir, dir, file, whiteout};
use crate::layer::xattr;
use crate::snapshot::{SnapshotError, SnapshotId, Snapshots, chain_id};

fn digest(c: char) -> Digest {
    Digest::try_from(format!("sha256:{}", c.to_string().repeat(64))).unwrap()
}

#[test]
fn chain_ids_follow_the_oci_definition() {
    assert_eq!(chain_id(&[digest('a')]).unwrap(), digest('a'));
    assert_eq!(
        chain_id(&[digest('a'), digest('b')]).unwrap().digest(),
        "ccd722928bd92476ba1745586fed6e45a102504185ad88cd89e01ff116fd146c"
    );
    assert_eq!(
        chain_id(&[digest('a'), digest('b'), digest('c')])
            .unwrap()
            .digest(),
        "c1377126441fb2f5ec2c21ae2a60255331d639e830f0ee1b40a36e52d4c40588"
    );
    assert!(matches!(chain_id(&[]), Err(SnapshotError::EmptyChain)));
}

#[test]
fn layer_dirs_are_extracted_once_in_overlay_form() {
    let root = TempDir::new("snap-layer");
    let diff = TempDir::new("snap-layer-diff");
    dir(diff.path(), "d", 0o755, (0, 0));
    xattr::set_opaque(&diff.join("d")).unwrap();
    file(diff.path(), "d/f", b"f", 0o644, (0, 0));
    whiteout(diff.path(), "gone");
    let mut blobs = Blobs::default();
    let id = blobs.add(diff.path());
    let snapshots = Snapshots::open(root.path()).unwrap();

    let path = snapshots.layer_dir(&id, || blobs.open(&id)).unwrap();
    assert_eq!(
        path,
        root.join(format!("snapshots/layers/{}/fs", id.digest()))
    );
    let gone = std::fs::symlink_metadata(path.join("gone")).unwrap();
    assert!(gone.file_type().is_char_device() && gone.rdev() == 0);
    assert!(xattr::is_opaque(&path.join("d")).unwrap());
    assert!(!path.join("d/.wh..wh..opq").exists());

    let again = snapshots.layer_dir(&id, || blobs.open(&id)).unwrap();
    assert_eq!(again, path);
    assert_eq!(blobs.opened.get(), 1, "a layer is extracted once");
    assert!(crate::layer::testutil::names(&root.join("snapshots/tmp")).is_empty());
}

#[test]
fn a_blob_that_does_not_match_its_diff_id_leaves_nothing() {
    let root = TempDir::new("snap-mismatch");
    let diff = TempDir::new("snap-mismatch-diff");
    file(diff.path(), "f", b"content", 0o644, (0, 0));
    let mut blobs = Blobs::default();
    let real = blobs.add(diff.path());
    let snapshots = Snapshots::open(root.path()).unwrap();
    let claimed = digest('e');
    let err = snapshots
        .layer_dir(&claimed, || blobs.open(&real))
        .unwrap_err();
    assert!(
        matches!(err, SnapshotError::DiffIdMismatch { ref expected, ref actual } if *expected == claimed && *actual == real),
        "{err}"
    );
    assert!(err.to_string().contains(claimed.digest()));
    assert!(crate::layer::testutil::names(&root.join("snapshots/layers")).is_empty());
    assert!(crate::layer::testutil::names(&root.join("snapshots/tmp")).is_empty());

    let err = snapshots
        .layer_dir(&claimed, || blobs.open(&claimed))
        .unwrap_err();
    assert!(matches!(err, SnapshotError::OpenBlob { .. }), "{err}");
}

#[test]
fn concurrent_extractions_of_one_layer_agree() {
    let root = TempDir::new("snap-race");
    let diff = TempDir::new("snap-race-diff");
    crate::layer::testutil::sample_tree(diff.path());
    let mut blobs = Blobs::default();
    let id = blobs.add(diff.path());
    let blob = blobs.open(&id).unwrap();
    drop(blob);
    let bytes = {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut blobs.open(&id).unwrap(), &mut v).unwrap();
        v
    };
    let snapshots = Snapshots::open(root.path()).unwrap();
    let paths: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    snapshots
                        .layer_dir(&id, || Ok(std::io::Cursor::new(bytes.clone())))
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(paths.iter().all(|p| *p == paths[0]));
    crate::layer::testutil::assert_same_tree(diff.path(), &paths[0]);
    assert!(crate::layer::testutil::names(&root.join("snapshots/tmp")).is_empty());
}

#[test]
fn list_remove_and_stale_leftovers() {
    let root = TempDir::new("snap-gc");
    let diff = TempDir::new("snap-gc-diff");
    file(diff.path(), "f", b"content", 0o644, (0, 0));
    let mut blobs = Blobs::default();
    let id = blobs.add(diff.path());
    // A leftover of a dead process (no such pid) and one of ours: the sweep every kiln
    // starts with removes only the first.
    let tmp = root.join("snapshots/tmp");
    std::fs::create_dir_all(tmp.join("kiln-tmp-4294967295-1-0.layer-dead/fs")).unwrap();
    let live = crate::fsutil::owner::temp_name("layer-live");
    std::fs::create_dir_all(tmp.join(&live)).unwrap();
    let snapshots = Snapshots::open(root.path()).unwrap();
    assert_eq!(crate::fsutil::leftovers::sweep_dir(&tmp), 1);
    assert_eq!(crate::layer::testutil::names(&tmp), [live]);

    let open = |d: &Digest| blobs.open(d);
    snapshots.rootfs(std::slice::from_ref(&id), &open).unwrap();
    snapshots.rootfs(&[], &open).unwrap();
    let listed = snapshots.list().unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.contains(&SnapshotId::Layer(id.clone())));
    assert!(
        listed.contains(&SnapshotId::Rootfs(id.clone())),
        "a one-layer chain's ID is its diff_id"
    );

    snapshots.remove(&SnapshotId::Layer(id.clone())).unwrap();
    snapshots.remove(&SnapshotId::Layer(id.clone())).unwrap();
    assert_eq!(snapshots.list().unwrap(), [SnapshotId::Rootfs(id.clone())]);
    // The rootfs still holds the data through its hardlinks.
    let rootfs = snapshots.rootfs(std::slice::from_ref(&id), &open).unwrap();
    assert_eq!(std::fs::read(rootfs.join("f")).unwrap(), b"content");
    snapshots.remove(&SnapshotId::Rootfs(id.clone())).unwrap();
    assert!(snapshots.list().unwrap().is_empty());
}
