//! Whiteouts and opaque directories: written from overlay form, applied, kept or converted.

use std::ffi::OsStr;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use super::layer_bytes;
use crate::layer::testutil::{TempDir, dir, file, names, whiteout};
use crate::layer::{
    ApplyOptions, Compression, ExtractOptions, Owners, WhiteoutMode, apply, extract_layer, xattr,
};

/// Lower: a/{f,g}, b, c/x. Upper diff: a opaque with a/h, b deleted, c/x deleted.
fn two_layers() -> (Vec<u8>, Vec<u8>) {
    let lower = TempDir::new("wh-lower");
    dir(lower.path(), "a", 0o755, (0, 0));
    file(lower.path(), "a/f", b"f", 0o644, (0, 0));
    file(lower.path(), "a/g", b"g", 0o644, (0, 0));
    file(lower.path(), "b", b"b", 0o644, (0, 0));
    dir(lower.path(), "c", 0o755, (0, 0));
    file(lower.path(), "c/x", b"x", 0o644, (0, 0));
    let upper = TempDir::new("wh-upper");
    dir(upper.path(), "a", 0o750, (0, 0));
    xattr::set_opaque(&upper.join("a")).unwrap();
    file(
        upper.path(),
        "a/-early",
        b"sorts before the marker",
        0o644,
        (0, 0),
    );
    file(upper.path(), "a/h", b"h", 0o644, (0, 0));
    whiteout(upper.path(), "b");
    dir(upper.path(), "c", 0o755, (0, 0));
    whiteout(upper.path(), "c/x");
    (
        layer_bytes(lower.path(), Compression::Gzip, None).0,
        layer_bytes(upper.path(), Compression::Gzip, None).0,
    )
}

#[test]
fn diff_conventions_become_whiteout_entries() {
    let (_, upper) = two_layers();
    let decoded = flate2::read::GzDecoder::new(&upper[..]);
    let mut archive = tar::Archive::new(decoded);
    let paths: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| String::from_utf8(e.unwrap().path_bytes().into_owned()).unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "a/",
            "a/.wh..wh..opq",
            "a/-early",
            "a/h",
            ".wh.b",
            "c/",
            "c/.wh.x"
        ]
    );
}

#[test]
fn applied_whiteouts_delete_lower_content_but_spare_the_layer_own() {
    let (lower, upper) = two_layers();
    let dest = TempDir::new("wh-apply");
    extract_layer(&lower[..], dest.path(), &ExtractOptions::default()).unwrap();
    extract_layer(&upper[..], dest.path(), &ExtractOptions::default()).unwrap();
    assert_eq!(names(dest.path()), ["a", "c"]);
    assert_eq!(names(&dest.join("a")), ["-early", "h"]);
    assert!(names(&dest.join("c")).is_empty());
    assert!(!xattr::is_opaque(&dest.join("a")).unwrap());
    assert_eq!(
        std::fs::metadata(dest.join("a")).unwrap().mode() & 0o7777,
        0o750
    );
}

#[test]
fn kept_whiteouts_are_plain_files() {
    let (_, upper) = two_layers();
    let dest = TempDir::new("wh-keep");
    let opts = ExtractOptions {
        whiteouts: false,
        same_owner: true,
    };
    extract_layer(&upper[..], dest.path(), &opts).unwrap();
    assert_eq!(names(dest.path()), [".wh.b", "a", "c"]);
    assert_eq!(names(&dest.join("a")), ["-early", ".wh..wh..opq", "h"]);
    assert!(
        std::fs::symlink_metadata(dest.join(".wh.b"))
            .unwrap()
            .is_file()
    );
}

#[test]
fn overlay_form_restores_devices_and_opaque_xattr() {
    let (_, upper) = two_layers();
    let dest = TempDir::new("wh-overlay");
    let opts = ApplyOptions {
        whiteouts: WhiteoutMode::Overlay,
        owners: Owners::Archive,
    };
    apply(&upper[..], dest.path(), &opts).unwrap();
    assert_eq!(names(dest.path()), ["a", "b", "c"]);
    let b = std::fs::symlink_metadata(dest.join("b")).unwrap();
    assert!(b.file_type().is_char_device() && b.rdev() == 0);
    assert!(xattr::is_opaque(&dest.join("a")).unwrap());
    assert_eq!(names(&dest.join("a")), ["-early", "h"]);
    // And it archives back to the same layer.
    let (again, _) = layer_bytes(dest.path(), Compression::Gzip, None);
    let relisted: Vec<String> = tar::Archive::new(flate2::read::GzDecoder::new(&again[..]))
        .entries()
        .unwrap()
        .map(|e| String::from_utf8(e.unwrap().path_bytes().into_owned()).unwrap())
        .collect();
    assert_eq!(
        relisted,
        [
            "a/",
            "a/.wh..wh..opq",
            "a/-early",
            "a/h",
            ".wh.b",
            "c/",
            "c/.wh.x"
        ]
    );
    let _ = OsStr::new("");
}

#[test]
fn whiteouts_cannot_name_parents() {
    let tar = super::raw_tar(&[super::raw_entry(
        "a/.wh...",
        crate::layer::header::Kind::Regular,
        None,
        b"",
    )]);
    let dest = TempDir::new("wh-dotdot");
    let err = extract_layer(&tar[..], dest.path(), &ExtractOptions::default()).unwrap_err();
    assert!(err.to_string().contains("a/.wh..."), "{err}");
}
