//! The planned layer against the diff directory on the entries the other tests rarely make:
//! every case here goes through [`both`], which fails on any byte of difference between the
//! two layer tars.

use std::os::unix::fs::MetadataExt;

use super::*;
use crate::copy::{Attrs, Kind, NewEntry, Times};

fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    rustix::fs::lsetxattr(path, name, value, rustix::fs::XattrFlags::empty()).unwrap();
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

#[test]
fn special_files_xattrs_set_id_bits_and_old_times_match_the_diff_directory() {
    let (ctx, out) = (Scratch::new("plan-ctx"), Scratch::new("plan-out"));
    ctx.file("tree/bin/tool", "#!/bin/sh\n");
    ctx.chmod("tree/bin/tool", 0o4755);
    set_mtime(&ctx, "tree/bin/tool", 1_000_000);
    set_xattr(&ctx.join("tree/bin/tool"), "user.origin", b"ctx");
    set_xattr(&ctx.join("tree/bin"), "user.dir", b"d");
    ctx.symlink("tree/link", "bin/tool");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        ctx.join("tree/fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(ctx.join("tree/sock")).unwrap();
    if is_root() {
        for (name, rdev) in [("null", rustix::fs::makedev(1, 3)), ("gone", 0)] {
            rustix::fs::mknodat(
                rustix::fs::CWD,
                ctx.join(&format!("tree/{name}")),
                rustix::fs::FileType::CharacterDevice,
                rustix::fs::Mode::from_raw_mode(0o666),
                rdev,
            )
            .unwrap();
        }
    }
    set_mtime(&ctx, "tree", 2_000_000);
    let stats = run(&spec(&["tree"], "/opt/tree/"), &ctx, None, &out).unwrap();
    assert_eq!(stats.files, 1);
    assert_eq!(stats.special, if is_root() { 4 } else { 2 });
    assert_eq!(lstat(&out, "opt/tree/bin/tool").mode() & 0o7777, 0o4755);
}

#[test]
fn a_layer_written_by_several_copies_over_an_image_matches_the_diff_directory() {
    let (ctx, rootfs, out) = (
        Scratch::new("plan2-ctx"),
        Scratch::new("plan2-rootfs"),
        Scratch::new("plan2-out"),
    );
    rootfs.file("etc/passwd", "app:x:1000:1000::/home/app:/bin/sh\n");
    rootfs.dir("srv/data");
    rootfs.chmod("srv/data", 0o750);
    set_mtime(&rootfs, "srv/data", 3_000_000);
    rootfs.symlink("var/run", "/run");
    ctx.file("a/one", "1");
    std::fs::hard_link(ctx.join("a/one"), ctx.join("a/two")).unwrap();
    ctx.file("b/one", "replaced");
    ctx.file("pid", "42");
    let chowned = CopySpec {
        chown: Some("app".into()),
        chmod: Some("u=rwX,go=rX".into()),
        ..spec(&["a"], "/srv/data/")
    };
    run(&chowned, &ctx, Some(&rootfs), &out).unwrap();
    // The image's directory is brought up unchanged...
    let data = lstat(&out, "srv/data");
    assert_eq!((data.mode() & 0o7777, data.mtime()), (0o750, 3_000_000));
    // The first name of a hard-link group is replaced; the second keeps the content.
    run(
        &spec(&["b/one"], "/srv/data/one"),
        &ctx,
        Some(&rootfs),
        &out,
    )
    .unwrap();
    // Through the image's symlink, into a directory only the image has.
    run(&spec(&["pid"], "/var/run/app/"), &ctx, Some(&rootfs), &out).unwrap();
    assert_eq!(read(&out, "srv/data/one"), "replaced");
    assert_eq!(read(&out, "srv/data/two"), "1");
    assert_eq!(read(&out, "run/app/pid"), "42");
    // ... and a later copy writing into it moves its mtime, as in a filesystem.
    assert_ne!(lstat(&out, "srv/data").mtime(), 3_000_000);
}

#[test]
fn a_file_that_shrinks_before_the_tar_is_written_fails_naming_it() {
    let ctx = Scratch::new("plan3-ctx");
    ctx.file("big", "0123456789");
    let mut plan = PlannedLayer::new();
    copy(
        &spec(&["big"], "/big"),
        &context(ctx.path()),
        None,
        &mut plan,
    )
    .unwrap();
    ctx.file("big", "01234");
    let opts = LayerOptions {
        compression: Compression::None,
        source_date_epoch: None,
    };
    let err = plan.write_layer(std::io::sink(), &opts).unwrap_err();
    assert!(err.to_string().contains("big"), "{err}");
}

#[test]
fn the_plan_answers_what_the_copy_asks_of_its_upper() {
    let mut plan = PlannedLayer::new();
    let attrs = Attrs {
        uid: 1,
        gid: 2,
        mode: 0o600,
        times: Times::seconds(5, 5),
    };
    plan.create_dir(Path::new("d"), None).unwrap();
    plan.add(
        Path::new("d/l"),
        NewEntry::Symlink(Path::new("../t")),
        &attrs,
        None,
    )
    .unwrap();
    assert_eq!(plan.kind(Path::new("d")).unwrap(), Some(Kind::Dir));
    assert_eq!(plan.kind(Path::new("d/l")).unwrap(), Some(Kind::Symlink));
    assert_eq!(plan.kind(Path::new("d/x")).unwrap(), None);
    assert_eq!(plan.read_link(Path::new("d/l")).unwrap(), Path::new("../t"));
    // Nothing is made where something is, or below what is not a directory.
    assert!(plan.create_dir(Path::new("d"), None).is_err());
    assert!(
        plan.add(Path::new("d/l/x"), NewEntry::Bytes(b""), &attrs, None)
            .is_err()
    );
    assert!(plan.remove(Path::new("d")).is_err());
    plan.remove(Path::new("d/l")).unwrap();
    assert_eq!(plan.kind(Path::new("d/l")).unwrap(), None);
    assert!(plan.host_dir().is_none());
}
