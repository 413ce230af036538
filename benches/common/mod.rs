//! Helpers shared by the benchmarks: temp dirs removed on drop and deterministic generated
//! trees whose content compresses like a real image's (text, binaries, already-compressed
//! data), so compression throughput means something.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A directory under /var/tmp (on disk, not tmpfs), removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let base = std::env::var_os("KILN_BENCH_TMP")
            .map_or_else(|| PathBuf::from("/var/tmp"), PathBuf::from);
        let path = base.join(format!("kiln-bench-{label}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// An integer from the environment, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// xorshift64*: fast, deterministic, good enough to make bytes.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: &[&str] = &[
    "the", "static", "fn", "return", "error", "value", "config", "layer", "image", "build",
    "import", "package", "function", "struct", "const", "if", "else", "for", "while", "self",
    "request", "response", "handler", "context", "buffer", "string", "int", "uint64_t", "void",
    "include", "define", "module", "export", "default", "async", "await", "match", "Some", "None",
    "Ok", "Err", "vec", "map", "key", "path", "file", "open", "close", "read", "write",
];

/// Source-like text: words, punctuation, indentation, newlines (~4x with gzip).
fn text(rng: &mut Rng, out: &mut Vec<u8>, len: usize) {
    while out.len() < len {
        for _ in 0..rng.below(4) {
            out.extend_from_slice(b"    ");
        }
        for _ in 0..4 + rng.below(8) {
            out.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes());
            out.push(if rng.below(6) == 0 { b'(' } else { b' ' });
        }
        if rng.below(3) == 0 {
            out.extend_from_slice(format!("{}", rng.below(100_000)).as_bytes());
        }
        out.extend_from_slice(b";\n");
    }
    out.truncate(len);
}

/// Binary-like: small integers, repeated opcodes-ish runs, zero padding (~2-3x with gzip).
fn binary(rng: &mut Rng, out: &mut Vec<u8>, len: usize) {
    while out.len() < len {
        match rng.below(8) {
            0 => out.extend(std::iter::repeat_n(0u8, 16 + rng.below(240) as usize)),
            1..=4 => {
                let v = rng.below(4096) as u32;
                out.extend_from_slice(&v.to_le_bytes());
            }
            _ => {
                let op = [0x48, 0x89, 0xe5, 0x8b, 0x45, 0xfc, 0xc3, 0x0f][rng.below(8) as usize];
                out.extend_from_slice(&[op, rng.below(256) as u8, 0x00, rng.below(16) as u8]);
            }
        }
    }
    out.truncate(len);
}

/// Incompressible: already-compressed assets.
fn random(rng: &mut Rng, out: &mut Vec<u8>, len: usize) {
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
}

/// Fills `root` with `files` files totalling about `total` bytes in nested directories:
/// 45% text, 40% binary-like, 15% random bytes. Returns the bytes written.
pub fn generate_tree(root: &Path, files: usize, total: u64, seed: u64) -> u64 {
    let mut rng = Rng::new(seed);
    let avg = (total / files.max(1) as u64).max(1);
    let mut written = 0u64;
    let mut buf = Vec::new();
    for i in 0..files {
        let dir = root.join(format!("d{:02}/s{:02}", i % 37, (i / 37) % 23));
        fs::create_dir_all(&dir).unwrap();
        // Sizes spread from avg/4 to 7avg/4, so most files are mid-sized, some large.
        let len = (avg / 4 + rng.below(avg * 3 / 2 + 1)) as usize;
        buf.clear();
        match rng.below(20) {
            0..=8 => text(&mut rng, &mut buf, len),
            9..=16 => binary(&mut rng, &mut buf, len),
            _ => random(&mut rng, &mut buf, len),
        }
        let mut f = fs::File::create(dir.join(format!("f{i:05}.dat"))).unwrap();
        f.write_all(&buf).unwrap();
        written += len as u64;
    }
    written
}
