//! COPY into a layer: a context of many small files (default 20,000 files, ~80 MB;
//! `KILN_BENCH_FILES` and `KILN_BENCH_MB` change it) copied as `COPY . /app/` and written as
//! a plain layer tar, the way a build does it (`copy_planned`: the layer planned in memory and
//! streamed from the context in one pass) and the way it did before (`copy_staged`: every
//! file copied into a staging diff directory, the directory archived, then deleted).
//!
//!   cargo bench --bench copy
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    reason = "a benchmark: failures abort it"
)]

mod common;

use std::io;
use std::sync::OnceLock;

use common::{TempDir, env_usize, generate_tree};
use divan::Bencher;
use divan::counter::ItemsCount;
use kiln_solver::copy::{CopySpec, DiskUpper, PlannedLayer, SourceTree, copy};
use kiln_solver::layer::{Compression, LayerOptions, write_layer};

struct Input {
    context: TempDir,
    files: usize,
}

static INPUT: OnceLock<Input> = OnceLock::new();

fn input() -> &'static Input {
    INPUT.get_or_init(|| {
        let context = TempDir::new("copy-context");
        let files = env_usize("KILN_BENCH_FILES", 20_000);
        let mb = env_usize("KILN_BENCH_MB", 80) as u64;
        generate_tree(context.path(), files, mb << 20, 11);
        Input { context, files }
    })
}

fn spec() -> CopySpec {
    CopySpec {
        sources: vec![".".into()],
        dest: "/app/".into(),
        follow_symlinks_in_sources: true,
        ..CopySpec::default()
    }
}

fn tree(input: &Input) -> SourceTree<'_> {
    SourceTree {
        root: input.context.path(),
        ignore: None,
        ignore_has_exceptions: false,
        is_context: true,
    }
}

const OPTS: LayerOptions = LayerOptions {
    compression: Compression::None,
    source_date_epoch: Some(0),
};

fn main() {
    divan::main();
    // Statics are never dropped: remove the generated context here.
    if let Some(input) = INPUT.get() {
        let _ = std::fs::remove_dir_all(input.context.path());
    }
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn copy_planned(bencher: Bencher<'_, '_>) {
    let input = input();
    bencher.counter(ItemsCount::new(input.files)).bench(|| {
        let mut plan = PlannedLayer::new();
        copy(&spec(), &tree(input), None, &mut plan).unwrap();
        plan.write_layer(io::sink(), &OPTS).unwrap()
    });
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn copy_staged(bencher: Bencher<'_, '_>) {
    let input = input();
    bencher.counter(ItemsCount::new(input.files)).bench(|| {
        let staging = TempDir::new("copy-staging");
        copy(
            &spec(),
            &tree(input),
            None,
            &mut DiskUpper::new(staging.path()),
        )
        .unwrap();
        write_layer(staging.path(), io::sink(), &OPTS).unwrap()
    });
}
