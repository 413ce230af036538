//! Reliability and security probes, each a test that fails when kiln does not hold: the
//! sandbox (devices, namespaces, a fork bomb) in both executors, on busybox and on Debian;
//! secrets in every form and every place kiln prints or stores text; SIGTERM, SIGINT and
//! broken pipes at the moments that matter; hostile registries (endless blobs, huge
//! manifests); and kill -9 at random points followed by a rerun.
//!
//! The probes run one at a time (see `support::serial`). `KILN_TEST_BIN=<kiln>` runs them
//! against another kiln, to compare.
#![allow(
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr
)]

#[path = "../common/mod.rs"]
mod common;

mod bounded;
mod crash;
mod devices;
mod secrets;
mod signals;
mod support;

use std::path::{Path, PathBuf};

use common::{Tmp, kiln, write_files};

/// A fresh store holding `busybox:latest`, and a work dir.
pub(crate) struct Bench {
    pub t: Tmp,
    pub root: PathBuf,
}

impl Bench {
    pub fn new(tag: &str) -> Bench {
        let t = Tmp::new(tag);
        let root = t.join("root");
        common::busybox(&root, &t);
        Bench { t, root }
    }

    /// Writes a context dir `name` holding `Dockerfile` and `files`; its path.
    pub fn context(&self, name: &str, dockerfile: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = self.t.join(name);
        write_files(&dir, &[("Dockerfile", dockerfile)]);
        write_files(&dir, files);
        dir
    }

    /// `kiln build --progress plain` of `ctx` with `extra` flags under `runtime`.
    pub fn build(&self, ctx: &Path, runtime: &str, extra: &[&str]) -> common::Run {
        let mut args = vec!["build", "--progress", "plain", "--runtime", runtime];
        args.extend_from_slice(extra);
        args.push(ctx.to_str().unwrap());
        kiln(&self.root, &args)
    }
}
