//! Same tree, same SOURCE_DATE_EPOCH → the same bytes.

use std::process::Command;

use super::layer_bytes;
use crate::layer::Compression;
use crate::layer::testutil::{TempDir, sample_tree, set_all_mtimes};

#[test]
fn copies_with_different_mtimes_give_identical_layers_under_source_date_epoch() {
    let a = TempDir::new("det-a");
    sample_tree(a.path());
    let b = TempDir::new("det-b");
    // A real copy: other inodes, other creation order, fresh ctimes.
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", a.path().display()))
        .arg(b.path())
        .status()
        .unwrap();
    assert!(status.success());
    set_all_mtimes(a.path(), 1_600_000_000);
    set_all_mtimes(b.path(), 1_700_000_000);
    let epoch = Some(1_500_000_000);
    for compression in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let (bytes_a, info_a) = layer_bytes(a.path(), compression, epoch);
        let (bytes_b, info_b) = layer_bytes(b.path(), compression, epoch);
        assert_eq!(info_a, info_b, "{compression:?}");
        assert!(bytes_a == bytes_b, "{compression:?} bytes differ");
    }
    // Without the epoch the mtimes show.
    let (_, info_a) = layer_bytes(a.path(), Compression::None, None);
    let (_, info_b) = layer_bytes(b.path(), Compression::None, None);
    assert_ne!(info_a.diff_id, info_b.diff_id);
}

#[test]
fn older_mtimes_are_kept_under_source_date_epoch() {
    let a = TempDir::new("det-old");
    sample_tree(a.path());
    let (bytes, _) = layer_bytes(a.path(), Compression::None, Some(2_000_000_000));
    let mut archive = tar::Archive::new(&bytes[..]);
    for entry in archive.entries().unwrap() {
        assert_eq!(entry.unwrap().header().mtime().unwrap(), 1_000_000_000);
    }
}
