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
