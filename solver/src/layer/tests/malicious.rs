//! Hostile tars write nothing outside dest: names that climb out are refused with an error
//! naming the entry; absolute names and symlinks are resolved inside dest, as containerd does.

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
        LayerError::UnsafePath { entry, .. } | LayerError::BadHardlink { entry, .. } => entry,
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

/// Extracts `tar` into `<outer>/dest`, checking `outer` holds nothing but `dest`.
fn extract_contained(tar: &[u8]) -> TempDir {
    let outer = TempDir::new("contained");
    let dest = outer.join("dest");
    extract_layer(tar, &dest, &ExtractOptions::default()).unwrap();
    assert_eq!(
        names(outer.path()),
        ["dest"],
        "something was written next to dest"
    );
    outer
}

#[test]
fn absolute_paths_land_inside_dest() {
    let name = format!("/tmp/kiln-abs-escape-{}", std::process::id());
    let tar = raw_tar(&[
        raw_entry("/", Kind::Directory, None, b""),
        raw_entry(&name, Kind::Regular, None, b"inside"),
    ]);
    let outer = extract_contained(&tar);
    assert!(!Path::new(&name).exists());
    let inside = outer.join("dest").join(name.trim_start_matches('/'));
    assert_eq!(std::fs::read(inside).unwrap(), b"inside");
}

#[test]
fn symlink_to_root_means_dest() {
    let name = format!("link/etc/kiln-escape-{}", std::process::id());
    let tar = raw_tar(&[
        raw_entry("link", Kind::Symlink, Some("/"), b""),
        raw_entry(&name, Kind::Regular, None, b"inside"),
    ]);
    let outer = extract_contained(&tar);
    assert!(!Path::new(&format!("/etc/kiln-escape-{}", std::process::id())).exists());
    let dest = outer.join("dest");
    assert_eq!(names(&dest), ["etc", "link"]);
    assert_eq!(
        std::fs::read(dest.join(format!("etc/kiln-escape-{}", std::process::id()))).unwrap(),
        b"inside"
    );
}

#[test]
fn relative_symlink_climbing_out_stops_at_dest() {
    let tar = raw_tar(&[
        raw_entry("a/", Kind::Directory, None, b""),
        raw_entry("a/up", Kind::Symlink, Some("../../.."), b""),
        raw_entry("a/up/x", Kind::Regular, None, b"inside"),
    ]);
    let outer = extract_contained(&tar);
    assert_eq!(std::fs::read(outer.join("dest/x")).unwrap(), b"inside");
}

#[test]
fn absolute_symlink_in_a_parent_resolves_inside_dest() {
    // Debian's /var/run -> /run: an entry under it lands in <dest>/run.
    let tar = raw_tar(&[
        raw_entry("run/", Kind::Directory, None, b""),
        raw_entry("var/", Kind::Directory, None, b""),
        raw_entry("var/run", Kind::Symlink, Some("/run"), b""),
        raw_entry("var/run/pid", Kind::Regular, None, b"1"),
    ]);
    let outer = extract_contained(&tar);
    assert_eq!(std::fs::read(outer.join("dest/run/pid")).unwrap(), b"1");
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

#[test]
fn parents_may_come_after_their_children_or_never() {
    let dest = TempDir::new("late-parents");
    let mut late_dir = raw_entry("a/", Kind::Directory, None, b"");
    late_dir.0.mode = 0o700;
    late_dir.0.uid = 7;
    let tar = raw_tar(&[
        raw_entry("a/b/c", Kind::Regular, None, b"deep"),
        late_dir,
        raw_entry("never/listed/f", Kind::Regular, None, b"x"),
    ]);
    extract_layer(&tar[..], dest.path(), &ExtractOptions::default()).unwrap();
    use std::os::unix::fs::MetadataExt as _;
    let a = std::fs::metadata(dest.join("a")).unwrap();
    assert_eq!(
        (a.mode() & 0o7777, a.uid()),
        (0o700, 7),
        "the late entry's metadata wins"
    );
    assert_eq!(std::fs::read(dest.join("a/b/c")).unwrap(), b"deep");
    let implied = std::fs::metadata(dest.join("never/listed")).unwrap();
    assert_eq!(implied.mode() & 0o7777, 0o755);
}
