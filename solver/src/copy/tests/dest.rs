//! Destinations that already exist in the stage's filesystem.

use super::*;

#[test]
fn a_file_goes_into_an_existing_directory() {
    let (ctx, out, rootfs) = (
        Scratch::new("exist-ctx"),
        Scratch::new("exist-out"),
        Scratch::new("exist-rootfs"),
    );
    ctx.file("a.txt", "a");
    rootfs.dir("usr/share");
    own(&rootfs, "usr", 0, 50);
    set_mtime(&rootfs, "usr/share", 123_456);
    run(&spec(&["a.txt"], "/usr/share"), &ctx, Some(&rootfs), &out).unwrap();
    assert_eq!(
        listing(&out),
        [
            "usr dir 755 0:50",
            "usr/share dir 755 0:0",
            "usr/share/a.txt file 644 0:0",
        ]
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(lstat(&out, "usr/share").mtime(), 123_456, "kept as it was");
}

#[test]
fn destination_symlinks_are_followed_inside_the_image() {
    let (ctx, out, rootfs) = (
        Scratch::new("dlink-ctx"),
        Scratch::new("dlink-out"),
        Scratch::new("dlink-rootfs"),
    );
    ctx.file("a.txt", "a");
    ctx.file("dir/b.txt", "b");
    rootfs.dir("srv/app");
    rootfs.symlink("app", "/srv/app");
    rootfs.symlink("rel", "srv/../srv/app");
    run(&spec(&["a.txt"], "/app/"), &ctx, Some(&rootfs), &out).unwrap();
    run(&spec(&["dir"], "/rel/sub"), &ctx, Some(&rootfs), &out).unwrap();
    assert_eq!(
        listing(&out),
        [
            "srv dir 755 0:0",
            "srv/app dir 755 0:0",
            "srv/app/a.txt file 644 0:0",
            "srv/app/sub dir 755 0:0",
            "srv/app/sub/b.txt file 644 0:0",
        ]
    );
}

#[test]
fn conflicts_with_existing_entries() {
    let (ctx, out, rootfs) = (
        Scratch::new("conf-ctx"),
        Scratch::new("conf-out"),
        Scratch::new("conf-rootfs"),
    );
    ctx.file("a.txt", "a");
    ctx.file("dir/x", "x");
    rootfs.dir("d/a.txt");
    rootfs.file("f", "file");
    let err = run(&spec(&["a.txt"], "/d/"), &ctx, Some(&rootfs), &out).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot replace to directory /d/a.txt with file"
    );
    let err = run(&spec(&["dir"], "/f"), &ctx, Some(&rootfs), &out).unwrap_err();
    assert_eq!(err.to_string(), "cannot copy to non-directory: /f");
    let err = run(&spec(&["a.txt"], "/f/x"), &ctx, Some(&rootfs), &out).unwrap_err();
    assert_eq!(err.to_string(), "mkdir /f: not a directory");
    // A file replaces a file.
    run(&spec(&["a.txt"], "/f"), &ctx, Some(&rootfs), &out).unwrap();
    assert_eq!(read(&out, "f"), "a");
}
