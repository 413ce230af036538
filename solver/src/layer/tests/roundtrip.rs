//! A tree with every kind of file survives write → extract unchanged.

use super::layer_bytes;
use crate::layer::testutil::{TempDir, assert_same_tree, sample_tree, summarize};
use crate::layer::{
    Compression, ExtractOptions, LayerError, MEDIA_TYPE_TAR_GZIP, extract_layer, write_layer,
};

#[test]
fn every_kind_of_file_round_trips_with_each_compression() {
    let src = TempDir::new("rt-src");
    sample_tree(src.path());
    let xattrs = &summarize(src.path())[std::path::Path::new("xattr-file")].xattrs;
    assert_eq!(xattrs.len(), 2, "the sample's xattrs are seen at all");
    for compression in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let (bytes, info) = layer_bytes(src.path(), compression, None);
        assert_eq!(info.size, bytes.len() as u64);
        assert_eq!(info.media_type, compression.media_type());
        if compression == Compression::None {
            assert_eq!(info.diff_id, info.digest);
        }
        let dest = TempDir::new("rt-dest");
        extract_layer(&bytes[..], dest.path(), &ExtractOptions::default()).unwrap();
        assert_same_tree(src.path(), dest.path());
    }
}

#[test]
fn tar_layout_is_sorted_relative_and_pax_where_needed() {
    let src = TempDir::new("rt-layout");
    sample_tree(src.path());
    let (bytes, info) = layer_bytes(src.path(), Compression::None, None);
    assert_eq!(info.media_type, crate::layer::MEDIA_TYPE_TAR);
    let mut archive = tar::Archive::new(&bytes[..]);
    let mut paths = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
        let header = entry.header();
        assert_eq!(header.username_bytes(), Some(&b""[..]), "{path}");
        assert_eq!(header.groupname_bytes(), Some(&b""[..]), "{path}");
        // `hard` sorts first, so it holds the content and `passwd` links to it.
        if path == "etc/passwd" {
            assert!(header.entry_type().is_hard_link());
            assert_eq!(&*entry.link_name_bytes().unwrap(), b"etc/hard");
        }
        if path == "etc/nobody" {
            assert_eq!(header.uid().unwrap(), 3_000_000);
        }
        if path == "xattr-file" {
            let keys: Vec<String> = entry
                .pax_extensions()
                .unwrap()
                .unwrap()
                .map(|r| r.unwrap().key().unwrap().to_owned())
                .collect();
            assert_eq!(
                keys,
                ["SCHILY.xattr.trusted.kiln", "SCHILY.xattr.user.kiln"]
            );
        }
        paths.push(path);
    }
    assert!(
        paths
            .iter()
            .all(|p| !p.starts_with('/') && !p.starts_with("./"))
    );
    assert!(paths.contains(&"bin/".to_owned()) && paths.contains(&"empty/".to_owned()));
    assert!(
        paths.iter().any(|p| p.len() > 255),
        "a path long enough to need PAX"
    );
    // Parents first, siblings by name.
    let position = |p: &str| paths.iter().position(|x| x == p).unwrap();
    assert!(position("etc/") < position("etc/hard"));
    assert!(position("etc/hard") < position("etc/passwd"));
    assert!(position("bin/tool") < position("etc/"));
    assert_eq!(paths.len(), summarize(src.path()).len());
}

#[test]
fn missing_diff_root_is_an_error_naming_it() {
    let dir = TempDir::new("rt-missing");
    let missing = dir.join("nope");
    let err = write_layer(&missing, Vec::new(), &Default::default()).unwrap_err();
    assert!(
        matches!(err, LayerError::NotADirectory { ref path } if *path == missing),
        "{err}"
    );
    assert_eq!(
        crate::layer::Compression::default().media_type(),
        MEDIA_TYPE_TAR_GZIP
    );
}

#[test]
fn extraction_without_same_owner_leaves_files_ours() {
    let src = TempDir::new("rt-owner-src");
    sample_tree(src.path());
    let (bytes, _) = layer_bytes(src.path(), Compression::Gzip, None);
    let dest = TempDir::new("rt-owner-dest");
    let opts = ExtractOptions {
        whiteouts: true,
        same_owner: false,
    };
    extract_layer(&bytes[..], dest.path(), &opts).unwrap();
    let me = rustix::process::geteuid().as_raw();
    for (path, node) in summarize(dest.path()) {
        assert_eq!(node.uid, me, "{path:?}");
    }
}
