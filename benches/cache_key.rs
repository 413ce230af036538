//! Cache-key benchmarks: the canonical `kiln_llb` encoding (length-prefixed fields into
//! sha256) of realistic ops, as the solver computes it for every step of every build.
//!
//!   cargo bench --bench cache_key
#![allow(clippy::unwrap_used, reason = "a benchmark")]

use std::hint::black_box;

use divan::counter::ItemsCount;
use kiln_llb::encode::encode_op;
use kiln_llb::{
    CacheKey, CacheSharing, CopyParams, Encoder, ExecMount, ExecOp, FileAction, FileOp,
    NetworkMode, Op, OpId, Platform, Source,
};

fn main() {
    divan::main();
}

const BASE_KEY: &str = "sha256:5f1c0e6a3c4d2b1a09f8e7d6c5b4a3928170f6e5d4c3b2a19081726354453627";
const CONTEXT_DIGEST: &str =
    "sha256:0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";

/// A typical `RUN --mount=type=cache,... apt-get update && apt-get install ...` step.
fn exec_op() -> Op {
    Op::Exec(ExecOp {
        base: OpId(3),
        args: vec![
            "/bin/sh".into(),
            "-c".into(),
            "apt-get update && apt-get install -y --no-install-recommends curl \
             ca-certificates git build-essential pkg-config libssl-dev && \
             rm -rf /var/lib/apt/lists/*"
                .into(),
        ],
        env: vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            "LANG=C.UTF-8".into(),
            "DEBIAN_FRONTEND=noninteractive".into(),
            "RUSTUP_HOME=/usr/local/rustup".into(),
            "CARGO_HOME=/usr/local/cargo".into(),
            "RUST_VERSION=1.85.0".into(),
        ],
        cwd: "/src".into(),
        user: String::new(),
        network: NetworkMode::Host,
        mounts: vec![
            ExecMount::Cache {
                id: "/var/cache/apt".into(),
                target: "/var/cache/apt".into(),
                sharing: CacheSharing::Locked,
                mode: None,
                uid: None,
                gid: None,
                readonly: false,
                seed: None,
            },
            ExecMount::Bind {
                source: OpId(1),
                selector: "scripts".into(),
                target: "/scripts".into(),
                readonly: true,
            },
        ],
        hostname: None,
        proxy_env: Vec::new(),
        platform: None,
    })
}

/// `COPY --chown=1000:1000 src/ Cargo.toml Cargo.lock /src/`.
fn copy_op() -> Op {
    Op::File(FileOp {
        base: OpId(2),
        actions: vec![FileAction::Copy {
            source: OpId(1),
            params: CopyParams {
                sources: vec!["src/".into(), "Cargo.toml".into(), "Cargo.lock".into()],
                dest: "/src/".into(),
                chown: Some("1000:1000".into()),
                chmod: None,
                parents: false,
                excludes: vec!["target".into(), "**/*.tmp".into()],
                unpack_archives: false,
                link: false,
            },
        }],
    })
}

fn image_op() -> Op {
    Op::Source(Source::Image {
        reference: "docker.io/library/debian:12".into(),
        platform: Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: String::new(),
        },
    })
}

/// A RUN step's key as the solver builds it: the op, then the base's key.
fn exec_key(op: &Op, base: &str) -> CacheKey {
    let mut e = Encoder::new();
    encode_op(&mut e, op);
    e.str("base", base);
    e.finish()
}

#[divan::bench]
fn exec_step(bencher: divan::Bencher<'_, '_>) {
    let op = exec_op();
    bencher.bench(|| exec_key(black_box(&op), black_box(BASE_KEY)));
}

/// A COPY from the context: the op, the base's key and the context checksum.
#[divan::bench]
fn copy_step(bencher: divan::Bencher<'_, '_>) {
    let op = copy_op();
    bencher.bench(|| {
        let mut e = Encoder::new();
        encode_op(&mut e, black_box(&op));
        e.str("base", BASE_KEY).str("content", CONTEXT_DIGEST);
        e.finish()
    });
}

/// A base image's key: the op and the manifest digest.
#[divan::bench]
fn image_source(bencher: divan::Bencher<'_, '_>) {
    let op = image_op();
    bencher.bench(|| {
        let mut e = Encoder::new();
        encode_op(&mut e, black_box(&op));
        e.str("manifest", CONTEXT_DIGEST);
        e.finish()
    });
}

/// A 50-step build's keys, each chained on the one before (what a fully cached rebuild of
/// a long Dockerfile computes before it can answer from the cache index).
#[divan::bench]
fn chain_of_50(bencher: divan::Bencher<'_, '_>) {
    let ops: Vec<Op> = (0..50)
        .map(|i| if i % 3 == 0 { copy_op() } else { exec_op() })
        .collect();
    bencher.counter(ItemsCount::new(ops.len())).bench(|| {
        let mut key = CacheKey(BASE_KEY.to_owned());
        for op in &ops {
            key = exec_key(black_box(op), &key.0);
        }
        key
    });
}
