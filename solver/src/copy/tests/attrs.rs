//! Owners, modes and times of what is written.

use std::os::unix::fs::MetadataExt;

use super::*;

#[test]
fn context_files_become_root_owned_and_keep_mode_and_mtime() {
    let (ctx, out) = (Scratch::new("own-ctx"), Scratch::new("own-out"));
    ctx.file("dir/run.sh", "#!/bin/sh\n");
    own(&ctx, "dir/run.sh", 1234, 4321);
    // After the chown, which clears set-id bits.
    ctx.chmod("dir/run.sh", 0o4755);
    own(&ctx, "dir", 1234, 4321);
    set_mtime(&ctx, "dir/run.sh", 1_000_000_000);
    ctx.dir("dir/sub");
    set_mtime(&ctx, "dir/sub", 1_100_000_000);
    run(&spec(&["dir"], "/opt/"), &ctx, None, &out).unwrap();
    let script = lstat(&out, "opt/run.sh");
    assert_eq!((script.uid(), script.gid()), (0, 0));
    assert_eq!(script.mode() & 0o7777, 0o4755);
    assert_eq!(script.mtime(), 1_000_000_000);
    assert_eq!(lstat(&out, "opt/sub").mtime(), 1_100_000_000);
}

#[test]
fn stage_files_keep_their_owner() {
    let (stage, out) = (Scratch::new("stage-src"), Scratch::new("stage-out"));
    stage.file("home/app/data", "d");
    own(&stage, "home/app/data", 1000, 1000);
    own(&stage, "home/app", 1000, 1000);
    let tree = SourceTree {
        is_context: false,
        ..context(stage.path())
    };
    copy_both(&spec(&["/home"], "/home"), &tree, None, out.path()).unwrap();
    assert_eq!(
        listing(&out),
        [
            "home dir 755 0:0",
            "home/app dir 755 1000:1000",
            "home/app/data file 644 1000:1000",
        ]
    );
}

#[test]
fn chown_by_number_owns_copies_and_new_parents() {
    let (ctx, out, rootfs) = (
        Scratch::new("chn-ctx"),
        Scratch::new("chn-out"),
        Scratch::new("chn-rootfs"),
    );
    ctx.file("src/a", "a");
    rootfs.dir("srv");
    own(&rootfs, "srv", 7, 8);
    rootfs.chmod("srv", 0o750);
    let mut spec = spec(&["src"], "/srv/new/deeper");
    spec.chown = Some("1000:1001".into());
    run(&spec, &ctx, Some(&rootfs), &out).unwrap();
    // /srv existed: brought into the diff unchanged. The rest is new and the user's.
    assert_eq!(
        listing(&out),
        [
            "srv dir 750 7:8",
            "srv/new dir 755 1000:1001",
            "srv/new/deeper dir 755 1000:1001",
            "srv/new/deeper/a file 644 1000:1001",
        ]
    );
}

#[test]
fn chown_by_name_reads_the_destination() {
    let (ctx, out, rootfs) = (
        Scratch::new("chname-ctx"),
        Scratch::new("chname-out"),
        Scratch::new("chname-rootfs"),
    );
    ctx.file("a", "a");
    rootfs.file(
        "etc/passwd",
        "root:x:0:0::/root:/bin/sh\napp:x:1500:1600::/app:/bin/sh\n",
    );
    rootfs.file("etc/group", "root:x:0:\nwww:x:33:\n");
    let mut spec = spec(&["a"], "/a");
    spec.chown = Some("app".into());
    run(&spec, &ctx, Some(&rootfs), &out).unwrap();
    assert_eq!(listing(&out), ["a file 644 1500:1600"]);
    spec.chown = Some("app:www".into());
    spec.dest = "/b".into();
    run(&spec, &ctx, Some(&rootfs), &out).unwrap();
    let b = lstat(&out, "b");
    assert_eq!((b.uid(), b.gid()), (1500, 33));
    // A name the image lacks is 0:0, as BuildKit's readUser leaves it.
    spec.chown = Some("ghost".into());
    spec.dest = "/c".into();
    run(&spec, &ctx, Some(&rootfs), &out).unwrap();
    let c = lstat(&out, "c");
    assert_eq!((c.uid(), c.gid()), (0, 0));
}

#[test]
fn chmod_octal_applies_to_files_and_directories_copied() {
    let (ctx, out) = (Scratch::new("cho-ctx"), Scratch::new("cho-out"));
    ctx.file("src/a", "a");
    ctx.file("src/sub/b", "b");
    let mut spec = spec(&["src"], "/app");
    spec.chmod = Some("0751".into());
    run(&spec, &ctx, None, &out).unwrap();
    assert_eq!(
        listing(&out),
        [
            // Made by MkdirAll with the copy's mode before the contents go in (fsutil's
            // prepareTargetDir), and not restamped since the copy did not create it.
            "app dir 751 0:0",
            "app/a file 751 0:0",
            "app/sub dir 751 0:0",
            "app/sub/b file 751 0:0",
        ]
    );
}

/// BuildKit's testCopyChmod: parents a copy creates take an octal --chmod as their mode
/// (`COPY --chmod=770 foo /parent/sub/foo` makes `/parent/sub` 0770); a symbolic one leaves
/// them 0755, and parents that exist are untouched.
#[test]
fn chmod_octal_is_the_mode_of_parents_made_on_the_way() {
    let (ctx, out) = (Scratch::new("chp-ctx"), Scratch::new("chp-out"));
    ctx.file("foo", "f");
    let mut spec = spec(&["foo"], "/parent/foo");
    spec.chmod = Some("777".into());
    run(&spec, &ctx, None, &out).unwrap();
    let mut spec2 = spec.clone();
    spec2.dest = "/parent/sub/foo".into();
    spec2.chmod = Some("770".into());
    run(&spec2, &ctx, None, &out).unwrap();
    let mut spec3 = spec.clone();
    spec3.dest = "/sym/bolic/foo".into();
    spec3.chmod = Some("go-w".into());
    run(&spec3, &ctx, None, &out).unwrap();
    assert_eq!(
        listing(&out),
        [
            "parent dir 777 0:0",
            "parent/foo file 777 0:0",
            "parent/sub dir 770 0:0",
            "parent/sub/foo file 770 0:0",
            "sym dir 755 0:0",
            "sym/bolic dir 755 0:0",
            "sym/bolic/foo file 644 0:0",
        ]
    );
}

#[test]
fn chmod_symbolic_works_from_each_mode() {
    let (ctx, out) = (Scratch::new("chs-ctx"), Scratch::new("chs-out"));
    ctx.file("src/plain", "");
    ctx.file("src/tool", "");
    ctx.chmod("src/plain", 0o664);
    ctx.chmod("src/tool", 0o700);
    ctx.dir("src/dir");
    ctx.chmod("src/dir", 0o700);
    let mut spec = spec(&["src"], "/app");
    spec.chmod = Some("u+x,g-w,go+X".into());
    run(&spec, &ctx, None, &out).unwrap();
    assert_eq!(
        listing(&out),
        [
            "app dir 755 0:0",
            "app/dir dir 711 0:0",
            "app/plain file 744 0:0",
            "app/tool file 711 0:0",
        ]
    );
    spec.chmod = Some("u+z".into());
    let err = run(&spec, &ctx, None, &out).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid chmod parameter: 'u+z': invalid syntax"
    );
}

#[test]
fn nested_existing_directories_take_the_source_metadata() {
    // fsutil's copier overwrites the metadata of directories that already exist below the
    // copy's top (overwriteTargetMetadata), not of the top itself.
    let (ctx, out, rootfs) = (
        Scratch::new("nested-ctx"),
        Scratch::new("nested-out"),
        Scratch::new("nested-rootfs"),
    );
    ctx.file("existing/etc/f", "x");
    ctx.chmod("existing/etc", 0o555);
    rootfs.file("etc/passwd", "root");
    rootfs.chmod("etc", 0o755);
    run(&spec(&["existing/"], "/"), &ctx, Some(&rootfs), &out).unwrap();
    assert_eq!(lstat(&out, "etc").mode() & 0o7777, 0o555);
}
