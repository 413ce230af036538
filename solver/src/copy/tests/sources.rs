//! Which sources are found and where they land.

use std::os::unix::fs::MetadataExt;

use super::*;

#[test]
fn file_to_file() {
    let (ctx, out) = (Scratch::new("f2f-ctx"), Scratch::new("f2f-out"));
    ctx.file("a.txt", "A");
    ctx.chmod("a.txt", 0o640);
    let stats = run(&spec(&["a.txt"], "/b.txt"), &ctx, None, &out).unwrap();
    assert_eq!(listing(&out), ["b.txt file 640 0:0"]);
    assert_eq!(read(&out, "b.txt"), "A");
    assert_eq!((stats.files, stats.bytes), (1, 1));
}

#[test]
fn file_into_directory_named_with_a_slash() {
    let (ctx, out) = (Scratch::new("f2d-ctx"), Scratch::new("f2d-out"));
    ctx.file("sub/a.txt", "A");
    run(&spec(&["./sub/a.txt"], "/d/e/"), &ctx, None, &out).unwrap();
    assert_eq!(
        listing(&out),
        ["d dir 755 0:0", "d/e dir 755 0:0", "d/e/a.txt file 644 0:0"]
    );
}

#[test]
fn directory_contents_not_the_directory() {
    let (ctx, out) = (Scratch::new("dir-ctx"), Scratch::new("dir-out"));
    ctx.file("src/x", "x");
    ctx.file("src/sub/y", "y");
    ctx.chmod("src/sub", 0o700);
    ctx.chmod("src", 0o700);
    run(&spec(&["src"], "/app"), &ctx, None, &out).unwrap();
    // The destination is made 0755 (BuildKit's MkdirAll), the source directory's own mode
    // is not copied; directories inside keep theirs.
    assert_eq!(
        listing(&out),
        [
            "app dir 755 0:0",
            "app/sub dir 700 0:0",
            "app/sub/y file 644 0:0",
            "app/x file 644 0:0",
        ]
    );
}

#[test]
fn root_source_copies_the_whole_context() {
    let (ctx, out) = (Scratch::new("root-ctx"), Scratch::new("root-out"));
    ctx.file("a", "a");
    ctx.file("d/b", "b");
    run(&spec(&["."], "/app/"), &ctx, None, &out).unwrap();
    assert_eq!(
        listing(&out),
        [
            "app dir 755 0:0",
            "app/a file 644 0:0",
            "app/d dir 755 0:0",
            "app/d/b file 644 0:0",
        ]
    );
}

#[test]
fn wildcard_with_one_match_is_like_a_plain_source() {
    let (ctx, out) = (Scratch::new("w1-ctx"), Scratch::new("w1-out"));
    ctx.file("notes.md", "md");
    ctx.file("a.txt", "a");
    run(&spec(&["*.md"], "/one"), &ctx, None, &out).unwrap();
    assert_eq!(listing(&out), ["one file 644 0:0"]);
    assert_eq!(read(&out, "one"), "md");
}

#[test]
fn wildcard_with_several_matches_fills_a_directory() {
    let (ctx, out) = (Scratch::new("wn-ctx"), Scratch::new("wn-out"));
    ctx.file("a.txt", "a");
    ctx.file("b.txt", "b");
    ctx.file("c.md", "c");
    ctx.file("dir.txt/inner", "i");
    let stats = run(&spec(&["*.txt"], "/many/"), &ctx, None, &out).unwrap();
    // A matched directory has its contents merged in, as for any directory source.
    assert_eq!(
        listing(&out),
        [
            "many dir 755 0:0",
            "many/a.txt file 644 0:0",
            "many/b.txt file 644 0:0",
            "many/inner file 644 0:0",
        ]
    );
    assert_eq!(stats.files, 3);
}

#[test]
fn several_files_into_a_non_directory_leave_the_last() {
    // BuildKit copies each source (and each wildcard match) to the destination in turn; the
    // last one stays. (Its docs ask for a directory; its file op does not check.)
    let (ctx, out) = (Scratch::new("multi-ctx"), Scratch::new("multi-out"));
    ctx.file("a.txt", "a");
    ctx.file("b.txt", "b");
    run(&spec(&["a.txt", "b.txt"], "/dest"), &ctx, None, &out).unwrap();
    assert_eq!(read(&out, "dest"), "b");
    let out = Scratch::new("multi-out-glob");
    run(&spec(&["*.txt"], "/dest"), &ctx, None, &out).unwrap();
    assert_eq!(read(&out, "dest"), "b");
    // Into a directory that already exists, each goes inside it.
    let (rootfs, out) = (Scratch::new("multi-rootfs"), Scratch::new("multi-out-dir"));
    rootfs.dir("dest");
    run(
        &spec(&["a.txt", "b.txt"], "/dest"),
        &ctx,
        Some(&rootfs),
        &out,
    )
    .unwrap();
    assert_eq!(read(&out, "dest/b.txt"), "b");
}

#[test]
fn several_directories_merge_without_a_slash() {
    // BuildKit's own test: `ADD --exclude=... dir* /5`.
    let (ctx, out) = (Scratch::new("merge-ctx"), Scratch::new("merge-out"));
    ctx.file("dir1/a", "1");
    ctx.file("dir2/b", "2");
    run(&spec(&["dir*"], "/merged"), &ctx, None, &out).unwrap();
    assert_eq!(
        listing(&out),
        [
            "merged dir 755 0:0",
            "merged/a file 644 0:0",
            "merged/b file 644 0:0"
        ]
    );
}

#[test]
fn missing_sources_are_named() {
    let (ctx, out) = (Scratch::new("miss-ctx"), Scratch::new("miss-out"));
    ctx.file("present", "");
    let err = run(
        &spec(&["present", "./gone/file.txt"], "/x/"),
        &ctx,
        None,
        &out,
    )
    .unwrap_err();
    assert!(matches!(err, CopyError::NotFound { .. }));
    assert_eq!(
        err.to_string(),
        "failed to calculate checksum: \"/gone/file.txt\": not found"
    );
    let err = run(&spec(&["nodir/*.txt"], "/x/"), &ctx, None, &out).unwrap_err();
    assert_eq!(err.to_string(), "lstat /nodir: no such file or directory");
    // An empty wildcard is allowed, as BuildKit's frontend asks, and writes nothing.
    let stats = run(&spec(&["*.none"], "/x/"), &ctx, None, &out).unwrap();
    assert_eq!(stats, CopyStats::default());
    assert!(listing(&out).is_empty());
}

#[test]
fn sources_may_not_climb_out_of_the_root() {
    let (ctx, out) = (Scratch::new("esc-ctx"), Scratch::new("esc-out"));
    for source in ["../x", "/../x", "a/../../x"] {
        let err = run(&spec(&[source], "/x"), &ctx, None, &out).unwrap_err();
        assert!(matches!(err, CopyError::SourceOutsideRoot { .. }), "{err}");
        assert!(err.to_string().contains(&format!("{source:?}")), "{err}");
        assert!(err.to_string().contains("build context"), "{err}");
    }
}

#[test]
fn context_symlinks_that_must_be_followed_may_not_leave_it() {
    let outside = Scratch::new("esc-outside");
    outside.file("secret", "s");
    let (ctx, out) = (Scratch::new("esclink-ctx"), Scratch::new("esclink-out"));
    ctx.symlink("up", "../../../../../../../../tmp");
    ctx.symlink("abs", &outside.join("secret").display().to_string());
    ctx.symlink("dir/link", "../../x");
    for source in ["up", "abs", "dir/link", "up/anything"] {
        let err = run(&spec(&[source], "/x"), &ctx, None, &out).unwrap_err();
        let CopyError::SymlinkEscapes { path, link, .. } = &err else {
            panic!("{source}: {err}");
        };
        assert_eq!(path, source);
        assert!(source.starts_with(link.as_str()), "{err}");
    }
    assert!(listing(&out).is_empty());
}

#[test]
fn symlinks_inside_directories_stay_symlinks() {
    let (ctx, out) = (Scratch::new("link-ctx"), Scratch::new("link-out"));
    ctx.file("dir/target.txt", "t");
    ctx.symlink("dir/link", "target.txt");
    ctx.symlink("dir/abs", "/etc/passwd");
    ctx.symlink("dir/dangling", "nowhere");
    let stats = run(&spec(&["dir"], "/app/"), &ctx, None, &out).unwrap();
    assert_eq!(
        listing(&out),
        [
            "app dir 755 0:0",
            "app/abs link->/etc/passwd 0:0",
            "app/dangling link->nowhere 0:0",
            "app/link link->target.txt 0:0",
            "app/target.txt file 644 0:0",
        ]
    );
    assert_eq!(stats.symlinks, 3);
}

#[test]
fn a_symlink_named_as_the_source_is_followed() {
    let (ctx, out) = (Scratch::new("follow-ctx"), Scratch::new("follow-out"));
    ctx.file("real/file.txt", "content");
    ctx.symlink("alias.txt", "real/file.txt");
    ctx.symlink("dirlink", "real");
    run(&spec(&["alias.txt"], "/d/"), &ctx, None, &out).unwrap();
    run(&spec(&["dirlink"], "/e"), &ctx, None, &out).unwrap();
    // The file keeps the link's name; the directory's contents are copied.
    assert_eq!(
        listing(&out),
        [
            "d dir 755 0:0",
            "d/alias.txt file 644 0:0",
            "e dir 755 0:0",
            "e/file.txt file 644 0:0",
        ]
    );
    // Without following, the link itself is copied.
    let out = Scratch::new("follow-out-2");
    let mut spec = spec(&["alias.txt"], "/d/");
    spec.follow_symlinks_in_sources = false;
    run(&spec, &ctx, None, &out).unwrap();
    assert_eq!(
        listing(&out),
        ["d dir 755 0:0", "d/alias.txt link->real/file.txt 0:0"]
    );
}

#[test]
fn hard_links_stay_hard_links() {
    let (ctx, out) = (Scratch::new("hard-ctx"), Scratch::new("hard-out"));
    ctx.file("dir/a", "same");
    std::fs::hard_link(ctx.join("dir/a"), ctx.join("dir/b")).unwrap();
    ctx.file("dir/c", "other");
    let stats = run(&spec(&["dir"], "/app"), &ctx, None, &out).unwrap();
    let (a, b, c) = (
        lstat(&out, "app/a"),
        lstat(&out, "app/b"),
        lstat(&out, "app/c"),
    );
    assert_eq!(a.ino(), b.ino());
    assert_ne!(a.ino(), c.ino());
    assert_eq!(a.nlink(), 2);
    assert_eq!((stats.files, stats.hardlinks), (2, 1));
}

#[test]
fn ignored_paths_are_not_in_the_context() {
    let (ctx, out) = (Scratch::new("ign-ctx"), Scratch::new("ign-out"));
    ctx.file("keep.txt", "k");
    ctx.file("secret.txt", "s");
    ctx.file("logs/a.log", "a");
    ctx.file("logs/keep.log", "k");
    // As a matcher for `secret.txt`, `logs`, `!logs/keep.log` answers.
    let ignore = |p: &str| {
        p == "secret.txt" || (p == "logs" || p.starts_with("logs/")) && p != "logs/keep.log"
    };
    let tree = SourceTree {
        ignore: Some(&ignore),
        ignore_has_exceptions: true,
        ..context(ctx.path())
    };
    let err = copy_both(&spec(&["secret.txt"], "/x"), &tree, None, out.path()).unwrap_err();
    assert!(matches!(err, CopyError::NotFound { .. }), "{err}");
    copy_both(&spec(&["."], "/app/"), &tree, None, out.path()).unwrap();
    assert_eq!(
        listing(&out),
        [
            "app dir 755 0:0",
            "app/keep.txt file 644 0:0",
            "app/logs dir 755 0:0",
            "app/logs/keep.log file 644 0:0",
        ]
    );
    // A wildcard does not see ignored files either.
    let out = Scratch::new("ign-out-2");
    copy_both(&spec(&["*.txt"], "/w/"), &tree, None, out.path()).unwrap();
    assert_eq!(listing(&out), ["w dir 755 0:0", "w/keep.txt file 644 0:0"]);
}

#[test]
fn parents_keep_the_source_path() {
    let (ctx, out) = (Scratch::new("par-ctx"), Scratch::new("par-out"));
    ctx.file("a/b/c.txt", "c");
    ctx.file("a/b/d.txt", "d");
    ctx.file("x/y/z.txt", "z");
    ctx.file("x/other", "o");
    ctx.chmod("a", 0o750);
    let mut spec = spec(&["./a/b/c.txt", "x/./y/z.txt"], "/dst/");
    spec.parents = true;
    run(&spec, &ctx, None, &out).unwrap();
    // Parents are created with the source directories' modes; `x/./` pivots.
    assert_eq!(
        listing(&out),
        [
            "dst dir 755 0:0",
            "dst/a dir 750 0:0",
            "dst/a/b dir 755 0:0",
            "dst/a/b/c.txt file 644 0:0",
            "dst/y dir 755 0:0",
            "dst/y/z.txt file 644 0:0",
        ]
    );
}

#[test]
fn parents_with_wildcards_and_missing_paths() {
    let (ctx, out) = (Scratch::new("parw-ctx"), Scratch::new("parw-out"));
    ctx.file("pkg/one/go.mod", "1");
    ctx.file("pkg/two/go.mod", "2");
    ctx.file("pkg/two/main.go", "m");
    let mut with_parents = spec(&["pkg/*/go.mod"], "/src/");
    with_parents.parents = true;
    run(&with_parents, &ctx, None, &out).unwrap();
    assert_eq!(
        listing(&out),
        [
            "src dir 755 0:0",
            "src/pkg dir 755 0:0",
            "src/pkg/one dir 755 0:0",
            "src/pkg/one/go.mod file 644 0:0",
            "src/pkg/two dir 755 0:0",
            "src/pkg/two/go.mod file 644 0:0",
        ]
    );
    with_parents.sources = vec!["pkg/./three/go.mod".to_owned()];
    let err = run(&with_parents, &ctx, None, &out).unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to calculate checksum: \"/pkg/three/go.mod\": not found"
    );
}

#[test]
fn exclude_patterns_apply_below_each_source() {
    let (ctx, out) = (Scratch::new("exc-ctx"), Scratch::new("exc-out"));
    ctx.file("app.py", "");
    ctx.file("debug.log", "");
    ctx.file("sub/trace.log", "");
    ctx.file("sub/keep.log", "");
    ctx.file("cache/blob", "");
    let mut spec = spec(&["."], "/app/");
    spec.excludes = vec![
        "*.log".into(),
        "sub/*.log".into(),
        "!sub/keep.log".into(),
        "cache".into(),
    ];
    run(&spec, &ctx, None, &out).unwrap();
    assert_eq!(
        listing(&out),
        [
            "app dir 755 0:0",
            "app/app.py file 644 0:0",
            "app/sub dir 755 0:0",
            "app/sub/keep.log file 644 0:0",
        ]
    );
}
