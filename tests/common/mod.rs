//! Shared helpers for the end-to-end tests: temp dirs, running kiln, the busybox fixture.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod buildah;
pub mod layout;
pub mod proxy;
pub mod registry;
pub mod tree;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A temp directory removed at the end of the test.
pub struct Tmp(pub PathBuf);

impl Tmp {
    pub fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "kiln-e2e-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The result of a kiln run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "kiln failed:\n{}", self.stderr);
        self
    }

    pub fn failed(self) -> Self {
        assert_eq!(
            self.code, 1,
            "kiln should have failed with 1:\n{}",
            self.stderr
        );
        self
    }

    /// Lines like `#3 CACHED`: how many steps were cached and how many ran.
    pub fn counts(&self) -> (usize, usize) {
        let cached = self
            .stderr
            .lines()
            .filter(|l| l.ends_with(" CACHED"))
            .count();
        let ran = self.stderr.lines().filter(|l| l.contains(" DONE ")).count();
        (cached, ran)
    }
}

fn output(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs kiln with `--root` set to `root` (for subcommands that take it).
pub fn kiln(root: &Path, args: &[&str]) -> Run {
    kiln_env(root, args, &[])
}

pub fn kiln_env(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = kiln_command(root, args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    output(cmd.output().unwrap())
}

/// The kiln binary the tests run: KILN_TEST_BIN runs them against another kiln (an older
/// build, to compare).
pub fn kiln_bin() -> PathBuf {
    std::env::var_os("KILN_TEST_BIN")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_kiln")), PathBuf::from)
}

/// `kiln ARGS --root ROOT` with no inherited SOURCE_DATE_EPOCH or KILN_ROOT and stdin closed,
/// for a test that needs the process itself (its stdout as bytes, several at once).
pub fn kiln_command(root: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(kiln_bin());
    cmd.args(args)
        .arg("--root")
        .arg(root)
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("KILN_ROOT")
        .stdin(Stdio::null());
    cmd
}

/// Runs an external tool, which must be installed (`bash .ci/setup` installs them).
pub fn tool(name: &str, args: &[&str]) -> Run {
    let out = Command::new(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{name}: {e}: install it with `bash .ci/setup`"));
    output(out)
}

/// Builds the busybox base image (fixtures/busybox) into `root` as `busybox:latest`.
pub fn busybox(root: &Path, work: &Tmp) {
    busybox_env(root, work, &[]);
}

/// [`busybox`] with extra environment for kiln (e.g. `SOURCE_DATE_EPOCH`); each root gets a
/// context of its own, so two stores in one test never share one.
pub fn busybox_env(root: &Path, work: &Tmp, env: &[(&str, &str)]) {
    let name = root
        .file_name()
        .map_or_else(|| "root".into(), |n| n.to_string_lossy());
    let ctx = work.join(&format!("busybox-context-{name}"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/busybox/make-context.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(&ctx)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    kiln_env(
        root,
        &["build", "-q", "-t", "busybox:latest", ctx.to_str().unwrap()],
        env,
    )
    .ok();
}

/// Writes files (parents created) under `dir`: `(relative path, content)`.
pub fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (rel, content) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
    }
}

/// One entry of an unpacked tree: type, mode, uid, gid and content or link target.
pub fn describe(root: &Path, rel: &str) -> String {
    use std::os::unix::fs::MetadataExt as _;
    let p = root.join(rel.trim_start_matches('/'));
    let m = std::fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let kind = if m.file_type().is_symlink() {
        format!("link->{}", std::fs::read_link(&p).unwrap().display())
    } else if m.is_dir() {
        "dir".to_owned()
    } else {
        format!(
            "file:{}",
            String::from_utf8_lossy(&std::fs::read(&p).unwrap())
        )
    };
    format!("{:o} {}:{} {kind}", m.mode() & 0o7777, m.uid(), m.gid())
}

/// Ends a suite that prints a line per case (`harness = false`): the table, then the failures,
/// exiting 1 when there are any.
pub fn finish_suite(name: &str, table: &[String], failures: &[String]) {
    #[allow(clippy::print_stdout)]
    {
        println!("{name}:\n{}", table.join("\n"));
        if !failures.is_empty() {
            println!("\n{name} FAILED:\n\n{}", failures.join("\n\n"));
        }
    }
    if !failures.is_empty() {
        std::process::exit(1);
    }
}
