//! Layer benchmarks over a generated tree (default ~500 MB in 2,000 files; `KILN_BENCH_MB`
//! and `KILN_BENCH_FILES` change it, `KILN_BENCH_TREE=DIR` uses a real directory instead):
//! `write_layer` to tar, tar+gzip (kiln's parallel gzip) and tar+zstd, the old
//! single-threaded flate2 gzip of the same tar for comparison, and `extract_layer` of the
//! gzip and plain blobs. Throughput is in uncompressed tar bytes.
//!
//!   cargo bench --bench layer
//!   KILN_BENCH_MB=64 cargo bench --bench layer -- gzip
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    reason = "a benchmark: failures abort it and the summary goes to stderr"
)]

mod common;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{TempDir, env_usize, generate_tree};
use divan::Bencher;
use divan::counter::BytesCount;
use kiln_solver::layer::{Compression, ExtractOptions, LayerOptions, extract_layer, write_layer};

struct Input {
    /// Holds the generated tree and the blobs; removed at the end of `main`.
    _dir: Option<TempDir>,
    tree: PathBuf,
    tar_size: u64,
    gzip_blob: PathBuf,
    tar_blob: PathBuf,
    _blobs: TempDir,
}

static INPUT: OnceLock<Input> = OnceLock::new();

fn input() -> &'static Input {
    INPUT.get_or_init(make_input)
}

fn make_input() -> Input {
    let (dir, tree) = match std::env::var_os("KILN_BENCH_TREE") {
        Some(t) => (None, PathBuf::from(t)),
        None => {
            let dir = TempDir::new("layer-tree");
            let mb = env_usize("KILN_BENCH_MB", 500) as u64;
            let files = env_usize("KILN_BENCH_FILES", 2000);
            generate_tree(dir.path(), files, mb << 20, 7);
            let tree = dir.path().to_path_buf();
            (Some(dir), tree)
        }
    };
    let blobs = TempDir::new("layer-blobs");
    let opts = |compression| LayerOptions {
        compression,
        source_date_epoch: Some(0),
    };
    let tar_blob = blobs.path().join("layer.tar");
    let tar = write_layer(
        &tree,
        io::BufWriter::new(std::fs::File::create(&tar_blob).unwrap()),
        &opts(Compression::None),
    )
    .unwrap();
    let gzip_blob = blobs.path().join("layer.tar.gz");
    let gz = write_layer(
        &tree,
        io::BufWriter::new(std::fs::File::create(&gzip_blob).unwrap()),
        &opts(Compression::Gzip),
    )
    .unwrap();
    let zst = write_layer(&tree, io::sink(), &opts(Compression::Zstd)).unwrap();
    let mb = |n: u64| n as f64 / f64::from(1 << 20);
    eprintln!(
        "tree {}: tar {:.1} MiB, gzip {:.1} MiB, zstd {:.1} MiB, {} threads available",
        tree.display(),
        mb(tar.size),
        mb(gz.size),
        mb(zst.size),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    Input {
        _dir: dir,
        tree,
        tar_size: tar.size,
        gzip_blob,
        tar_blob,
        _blobs: blobs,
    }
}

fn main() {
    divan::main();
    // Statics are never dropped: remove the generated tree and blobs by hand.
    if let Some(input) = INPUT.get() {
        if let Some(dir) = &input._dir {
            let _ = std::fs::remove_dir_all(dir.path());
        }
        let _ = std::fs::remove_dir_all(input._blobs.path());
    }
}

fn write(bencher: Bencher<'_, '_>, compression: Compression) {
    let input = input();
    let opts = LayerOptions {
        compression,
        source_date_epoch: Some(0),
    };
    bencher
        .counter(BytesCount::new(input.tar_size))
        .bench(|| write_layer(&input.tree, io::sink(), &opts).unwrap());
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn write_tar(bencher: Bencher<'_, '_>) {
    write(bencher, Compression::None);
}

/// kiln's gzip (what `Compression::Gzip` does today).
#[divan::bench(sample_count = 3, sample_size = 1)]
fn write_tar_gzip(bencher: Bencher<'_, '_>) {
    write(bencher, Compression::Gzip);
}

/// The single-threaded flate2 (zlib-rs) gzip kiln used before, over the same tar stream.
#[divan::bench(sample_count = 3, sample_size = 1)]
fn write_tar_gzip_single_thread(bencher: Bencher<'_, '_>) {
    let input = input();
    let opts = LayerOptions {
        compression: Compression::None,
        source_date_epoch: Some(0),
    };
    bencher.counter(BytesCount::new(input.tar_size)).bench(|| {
        let gz = flate2::write::GzEncoder::new(io::sink(), flate2::Compression::default());
        let mut gz = io::BufWriter::with_capacity(256 * 1024, gz);
        write_layer(&input.tree, &mut gz, &opts).unwrap();
        gz.flush().unwrap();
        gz.into_inner().ok().unwrap().finish().unwrap();
    });
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn write_tar_zstd(bencher: Bencher<'_, '_>) {
    write(bencher, Compression::Zstd);
}

fn extract(bencher: Bencher<'_, '_>, blob: &Path) {
    let input = input();
    bencher
        .counter(BytesCount::new(input.tar_size))
        .with_inputs(|| TempDir::new("extract"))
        .bench_local_values(|dest| {
            let file = std::fs::File::open(blob).unwrap();
            extract_layer(
                file,
                &dest.path().join("rootfs"),
                &ExtractOptions::default(),
            )
            .unwrap();
            // Dropped (removed) outside the timing.
            dest
        });
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn extract_tar_gzip(bencher: Bencher<'_, '_>) {
    extract(bencher, &input().gzip_blob);
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn extract_tar(bencher: Bencher<'_, '_>) {
    extract(bencher, &input().tar_blob);
}
