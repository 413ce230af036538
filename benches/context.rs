//! Build-context benchmarks over a generated context (default 5,000 files, ~500 MB, as issue
//! 7's scenario 2; `KILN_BENCH_CONTEXT_FILES` and `KILN_BENCH_CONTEXT_MB` change it):
//! hashing it cold (every file read and sha256'd, an empty context index), revalidating it
//! unchanged (`stat` alone, answered by the store's redb index), and revalidating it with
//! one file changed. Files are in the page cache, as on a rebuild.
//!
//!   cargo bench --bench context
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    reason = "a benchmark: failures abort it and the summary goes to stderr"
)]

mod common;

use std::sync::OnceLock;

use common::{TempDir, env_usize, generate_tree};
use divan::Bencher;
use divan::counter::{BytesCount, ItemsCount};
use kiln_solver::context::Context;
use kiln_solver::store::Store;

struct Input {
    dir: TempDir,
    files: usize,
    bytes: u64,
}

static INPUT: OnceLock<Input> = OnceLock::new();

fn input() -> &'static Input {
    INPUT.get_or_init(|| {
        let dir = TempDir::new("context");
        let files = env_usize("KILN_BENCH_CONTEXT_FILES", 5000);
        let mb = env_usize("KILN_BENCH_CONTEXT_MB", 500) as u64;
        let bytes = generate_tree(dir.path(), files, mb << 20, 11);
        eprintln!(
            "context {}: {files} files, {:.1} MiB",
            dir.path().display(),
            bytes as f64 / f64::from(1 << 20)
        );
        Input { dir, files, bytes }
    })
}

fn main() {
    divan::main();
    if let Some(input) = INPUT.get() {
        let _ = std::fs::remove_dir_all(input.dir.path());
    }
}

fn all() -> Vec<String> {
    vec![".".to_owned()]
}

/// Every file read and hashed: sha256 throughput plus the walk and one index write.
#[divan::bench(sample_count = 5, sample_size = 1)]
fn hash_cold(bencher: Bencher<'_, '_>) {
    let input = input();
    let ctx = Context::open(input.dir.path(), None).unwrap();
    bencher
        .counter(BytesCount::new(input.bytes))
        .with_inputs(|| {
            let root = TempDir::new("context-store");
            let store = Store::open(root.path()).unwrap();
            (root, store)
        })
        .bench_local_values(|(root, store)| {
            ctx.checksum(&all(), store.meta()).unwrap();
            (root, store)
        });
}

/// Nothing changed: a walk, one `stat` per entry and one batched index read.
#[divan::bench(sample_count = 20, sample_size = 1)]
fn revalidate_unchanged(bencher: Bencher<'_, '_>) {
    let input = input();
    let root = TempDir::new("context-store");
    let store = Store::open(root.path()).unwrap();
    let ctx = Context::open(input.dir.path(), None).unwrap();
    let first = ctx.checksum(&all(), store.meta()).unwrap();
    bencher.counter(ItemsCount::new(input.files)).bench(|| {
        let again = ctx.checksum(&all(), store.meta()).unwrap();
        assert_eq!(again, first);
    });
}

/// One file rewritten before each run: the unchanged walk plus one file hashed and one
/// index write.
#[divan::bench(sample_count = 20, sample_size = 1)]
fn revalidate_one_changed(bencher: Bencher<'_, '_>) {
    let input = input();
    let root = TempDir::new("context-store");
    let store = Store::open(root.path()).unwrap();
    let ctx = Context::open(input.dir.path(), None).unwrap();
    ctx.checksum(&all(), store.meta()).unwrap();
    let changed = input.dir.path().join("changed.txt");
    let mut n = 0u64;
    bencher
        .counter(ItemsCount::new(input.files))
        .with_inputs(|| {
            n += 1;
            std::fs::write(&changed, format!("edit {n}\n")).unwrap();
        })
        .bench_local_values(|()| ctx.checksum(&all(), store.meta()).unwrap());
}
