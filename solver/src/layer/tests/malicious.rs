//! Hostile tars are refused with an error naming the entry, and write nothing outside dest.

use std::path::Path;

use super::{raw_entry, raw_tar};
use crate::layer::header::Kind;
use crate::layer::testutil::{TempDir, names};
use crate::layer::{ExtractOptions, LayerError, extract_layer};

/// Extracts `tar` into `<outer>/dest` and returns the error, checking `outer` holds nothing
/// but `dest`.
fn extract_hostile(tar: &[u8]) -> (LayerError, TempDir) {
    let outer = TempDir::new("hostile");
    let dest = outer.join("dest");
    let err = extract_layer(tar, &dest, &ExtractOptions::default()).unwrap_err();
    assert_eq!(
        names(outer.path()),
        ["dest"],
        "something was written next to dest"
    );
    (err, outer)
}

fn entry_of(err: &LayerError) -> &str {
    match err {
        LayerError::UnsafePath { entry, .. }
        | LayerError::SymlinkEscape { entry, .. }
        | LayerError::BadHardlink { entry, .. } => entry,
        other => panic!("unexpected error: {other}"),
    }
}

#[test]
fn dotdot_path_is_refused() {
    let tar = raw_tar(&[raw_entry("../x", Kind::Regular, None, b"escaped")]);
    let (err, _outer) = extract_hostile(&tar);
    assert!(matches!(err, LayerError::UnsafePath { .. }), "{err}");
    assert_eq!(entry_of(&err), "../x");
    assert!(err.to_string().contains("../x"));
}

#[test]
fn absolute_path_is_refused() {
    let name = format!("/tmp/kiln-abs-escape-{}", std::process::id());
    let tar = raw_tar(&[raw_entry(&name, Kind::Regular, None, b"escaped")]);
    let (err, _outer) = extract_hostile(&tar);
    assert!(matches!(err, LayerError::UnsafePath { .. }), "{err}");
    assert_eq!(entry_of(&err), name);
    assert!(!Path::new(&name).exists());
}

#[test]
fn symlink_to_root_is_not_followed() {
    let name = format!("link/etc/kiln-escape-{}", std::process::id());
    let tar = raw_tar(&[
        raw_entry("link", Kind::Symlink, Some("/"), b""),
        raw_entry(&name, Kind::Regular, None, b"escaped"),
    ]);
    let (err, outer) = extract_hostile(&tar);
    assert!(matches!(err, LayerError::SymlinkEscape { .. }), "{err}");
    assert_eq!(entry_of(&err), name);
    assert!(!Path::new(&format!("/etc/kiln-escape-{}", std::process::id())).exists());
    assert_eq!(names(&outer.join("dest")), ["link"]);
}

#[test]
fn relative_symlink_climbing_out_is_not_followed() {
    let tar = raw_tar(&[
        raw_entry("a/", Kind::Directory, None, b""),
        raw_entry("a/up", Kind::Symlink, Some("../.."), b""),
        raw_entry("a/up/x", Kind::Regular, None, b"escaped"),
    ]);
    let (err, _outer) = extract_hostile(&tar);
    assert!(
        matches!(err, LayerError::SymlinkEscape { ref link, .. } if link.ends_with("a/up")),
        "{err}"
    );
    assert_eq!(entry_of(&err), "a/up/x");
}

#[test]
fn hardlinks_out_of_dest_are_refused() {
    for target in ["/etc/passwd", "../outside"] {
        let tar = raw_tar(&[raw_entry("h", Kind::Hardlink, Some(target), b"")]);
        let (err, _outer) = extract_hostile(&tar);
        assert!(matches!(err, LayerError::BadHardlink { .. }), "{err}");
        assert_eq!(entry_of(&err), "h");
    }
}

#[test]
fn symlinks_inside_dest_are_followed_and_final_symlinks_replaced() {
    let outer = TempDir::new("hostile-ok");
    std::fs::write(outer.join("victim"), b"untouched").unwrap();
    let dest = outer.join("dest");
    let tar = raw_tar(&[
        raw_entry("real/", Kind::Directory, None, b""),
        raw_entry("alias", Kind::Symlink, Some("./real"), b""),
        raw_entry("alias/f", Kind::Regular, None, b"via alias"),
        raw_entry("l", Kind::Symlink, Some("../victim"), b""),
        raw_entry("l", Kind::Regular, None, b"replaced"),
    ]);
    extract_layer(&tar[..], &dest, &ExtractOptions::default()).unwrap();
    assert_eq!(std::fs::read(dest.join("real/f")).unwrap(), b"via alias");
    assert_eq!(std::fs::read(outer.join("victim")).unwrap(), b"untouched");
    assert!(std::fs::symlink_metadata(dest.join("l")).unwrap().is_file());
}
