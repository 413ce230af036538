use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

struct Tmp(PathBuf);

impl Tmp {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "kiln-ctx-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn setup() -> (Tmp, PathBuf, MetaDb) {
    let t = Tmp::new();
    let ctx = t.0.join("ctx");
    fs::create_dir_all(ctx.join("src/sub")).unwrap();
    fs::write(ctx.join("src/a.txt"), "a").unwrap();
    fs::write(ctx.join("src/sub/b.txt"), "b").unwrap();
    fs::write(ctx.join("top.txt"), "top").unwrap();
    fs::write(ctx.join("secret.key"), "k").unwrap();
    let db = MetaDb::open(&t.0.join("meta.redb")).unwrap();
    (t, ctx, db)
}

fn all() -> Vec<String> {
    vec![".".to_owned()]
}

#[test]
fn unchanged_context_is_revalidated_from_stat_alone() {
    let (_t, ctx, db) = setup();
    let c = Context::open(&ctx, None).unwrap();
    let (d1, hashed1) = c.checksum_counting(&all(), &db, false).unwrap();
    assert_eq!(hashed1, 4);
    let (d2, hashed2) = c.checksum_counting(&all(), &db, false).unwrap();
    assert_eq!((d1.clone(), hashed2), (d2, 0));
    fs::write(ctx.join("src/a.txt"), "changed").unwrap();
    let (d3, hashed3) = c.checksum_counting(&all(), &db, false).unwrap();
    assert_eq!(hashed3, 1);
    assert_ne!(d1, d3);
}

#[test]
fn checksum_covers_only_the_sources_prefix() {
    let (_t, ctx, db) = setup();
    let c = Context::open(&ctx, None).unwrap();
    let src = vec!["src/".to_owned()];
    let d1 = c.checksum(&src, &db).unwrap();
    fs::write(ctx.join("top.txt"), "other").unwrap();
    assert_eq!(
        c.checksum(&src, &db).unwrap(),
        d1,
        "a file outside src/ changed"
    );
    fs::write(ctx.join("src/sub/b.txt"), "bb").unwrap();
    assert_ne!(c.checksum(&src, &db).unwrap(), d1);
    let wild = vec!["src/*.txt".to_owned()];
    assert_ne!(
        c.checksum(&wild, &db).unwrap(),
        c.checksum(&all(), &db).unwrap()
    );
}

#[test]
fn dockerignore_hides_files_and_dockerfile_specific_file_wins() {
    let (_t, ctx, db) = setup();
    fs::write(ctx.join(".dockerignore"), "*.key\n").unwrap();
    let c = Context::open(&ctx, None).unwrap();
    assert!(c.is_ignored("secret.key"));
    let d1 = c.checksum(&all(), &db).unwrap();
    fs::write(ctx.join("secret.key"), "rotated").unwrap();
    assert_eq!(c.checksum(&all(), &db).unwrap(), d1, "ignored file changed");
    let df = ctx.join("build.Dockerfile");
    fs::write(&df, "FROM scratch\n").unwrap();
    fs::write(ctx.join("build.Dockerfile.dockerignore"), "top.txt\n").unwrap();
    let c = Context::open(&ctx, Some(&df)).unwrap();
    assert!(c.is_ignored("top.txt"));
    assert!(
        !c.is_ignored("secret.key"),
        "the specific file replaces .dockerignore"
    );
}

#[test]
fn literal_prefixes() {
    assert_eq!(literal_prefix("src/*.rs"), "src");
    assert_eq!(literal_prefix("./a/b/"), "a/b");
    assert_eq!(literal_prefix("*"), "");
    assert_eq!(literal_prefix("/"), "");
}

#[test]
fn bad_ignore_pattern_names_the_file() {
    let (_t, ctx, _db) = setup();
    fs::write(ctx.join(".dockerignore"), "!\n").unwrap();
    let e = Context::open(&ctx, None).unwrap_err().to_string();
    assert!(e.contains(".dockerignore"), "{e}");
}

#[test]
fn owners_count_only_when_asked() {
    let (_t, ctx, db) = setup();
    let c = Context::open(&ctx, None).unwrap();
    let plain = c.checksum(&all(), &db).unwrap();
    let owned = c.checksum_with_owners(&all(), &db).unwrap();
    std::os::unix::fs::lchown(ctx.join("top.txt"), Some(1234), Some(1234)).unwrap();
    assert_eq!(c.checksum(&all(), &db).unwrap(), plain);
    assert_ne!(c.checksum_with_owners(&all(), &db).unwrap(), owned);
}

#[test]
fn a_symlinked_source_is_followed_inside_the_root() {
    // An image's `/data -> /src` (absolute, as `ln -s` writes it in a RUN) points into the
    // stage's rootfs, not at the host's `/src`.
    let (_t, ctx, db) = setup();
    std::os::unix::fs::symlink("/src", ctx.join("data")).unwrap();
    std::os::unix::fs::symlink("/src/a.txt", ctx.join("file-link")).unwrap();
    let c = Context::open(&ctx, None).unwrap();
    let via_link = c.checksum(&["data".to_owned()], &db).unwrap();
    assert_eq!(via_link, c.checksum(&["src".to_owned()], &db).unwrap());
    let file = c.checksum(&["file-link".to_owned()], &db).unwrap();
    fs::write(ctx.join("src/a.txt"), "changed").unwrap();
    assert_ne!(c.checksum(&["data".to_owned()], &db).unwrap(), via_link);
    assert_ne!(c.checksum(&["file-link".to_owned()], &db).unwrap(), file);
}

/// What the checksum's walk must find, as the plain sequential `walkdir` walk it replaced
/// found it: (path, kind, link target, mode, size, uid, gid, inode).
fn reference_listing(c: &Context, prefix: &str) -> Vec<(String, String, String, u32, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    let start = c.root().join(prefix);
    let prune = c.matcher.as_ref().is_none_or(|m| !m.exclusions());
    let mut out = Vec::new();
    let mut walk = walkdir::WalkDir::new(&start)
        .follow_links(false)
        .into_iter();
    while let Some(item) = walk.next() {
        let item = item.unwrap();
        let rel = item
            .path()
            .strip_prefix(c.root())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if rel.is_empty() {
            continue;
        }
        if c.is_ignored(&rel) {
            if item.file_type().is_dir() && prune {
                walk.skip_current_dir();
            }
            continue;
        }
        let meta = item.metadata().unwrap();
        let ft = meta.file_type();
        let (kind, detail) = if ft.is_symlink() {
            let target = fs::read_link(item.path()).unwrap();
            ("symlink", target.to_string_lossy().into_owned())
        } else if ft.is_dir() {
            ("dir", String::new())
        } else if ft.is_file() {
            ("file", String::new())
        } else {
            ("special", String::new())
        };
        out.push((rel, kind.to_owned(), detail, meta.mode(), meta.ino()));
    }
    out.sort();
    out
}

fn walked(c: &Context, prefix: &str) -> Vec<(String, String, String, u32, u64)> {
    let mut entries = Vec::new();
    c.collect(prefix, &mut entries).unwrap();
    let mut out: Vec<_> = entries
        .into_iter()
        .map(|e| {
            assert_eq!(e.mode, e.stat.mode & 0o7777, "{}", e.rel);
            (e.rel, e.kind.to_owned(), e.detail, e.stat.mode, e.stat.ino)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn the_walk_finds_what_a_sequential_walk_finds() {
    let (_t, ctx, _db) = setup();
    // Wide and deep, so several threads share the queue; every kind of entry.
    for d in 0..30 {
        let dir = ctx.join(format!("tree/d{d:02}/e/f"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..20 {
            fs::write(dir.join(format!("file{f}")), format!("{d} {f}")).unwrap();
        }
        std::os::unix::fs::symlink(format!("../../d{d:02}"), dir.join("up")).unwrap();
    }
    std::os::unix::fs::symlink("/nowhere", ctx.join("tree/dangling")).unwrap();
    crate::layer::testutil::node(&ctx, "tree/fifo", rustix::fs::FileType::Fifo, 0o640, (0, 0));
    fs::write(ctx.join("tree/n\u{e9}e \"quoted\".txt"), "x").unwrap();
    let cases = [
        ("", "tree"),
        ("tree/d0*\n", ""),
        ("tree/d0*\n", "tree"),
        // An exception below an ignored directory: the walk must enter it.
        ("tree/d0*\n!tree/d03/e/f/file7\n", ""),
        ("**/file1*\n", "tree/d05"),
        ("tree\n", "tree/d07/e"),
    ];
    for (ignore, prefix) in cases {
        fs::write(ctx.join(".dockerignore"), ignore).unwrap();
        let c = Context::open(&ctx, None).unwrap();
        let want = reference_listing(&c, prefix);
        assert!(
            !want.is_empty() || ignore == "tree\n",
            "{ignore:?} {prefix:?}"
        );
        assert_eq!(
            walked(&c, prefix),
            want,
            "ignore {ignore:?}, prefix {prefix:?}"
        );
    }
}

#[test]
fn a_start_the_walk_cannot_stat_is_named() {
    let (_t, ctx, db) = setup();
    // A source removed between its resolution and the walk.
    let c = Context::open(&ctx, None).unwrap();
    let mut entries = Vec::new();
    let err = walk::walk(
        c.root(),
        "src/gone",
        &walk::Filter {
            ignored: &|_: &str| false,
            prune: true,
        },
        &mut entries,
    )
    .unwrap_err();
    assert!(err.to_string().contains("src/gone"), "{err}");
    drop(db);
}
