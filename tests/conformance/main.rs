//! buildah's docker-vs-buildah conformance corpus, built by kiln through the corpus's own
//! runner (`../shared/conformance/buildah-conformance/run.py`, buildah 1.28 the oracle, its
//! stand-in bases served by a registry on a loopback port).
//!
//! Every case the runner can build must pass, except the deviations of `DEVIATIONS.md`, where
//! buildah 1.28 and BuildKit disagree and kiln does what BuildKit does. `check.py` then pins
//! kiln's image of every deviation, and of every case buildah cannot build, to BuildKit's
//! result (`expected.json`).
//!
//! Then two more corpora: buildah's own `bud` fixtures (`bud.py`: every Dockerfile that needs
//! nothing from outside this machine, built by buildah and by kiln and compared; the
//! buildah-vs-BuildKit differences pinned in its DEVIATIONS table), and BuildKit's integration
//! Dockerfiles (`buildkit_integration.py`: every one parsed, every runnable one built and
//! judged against what its Go test asserts, extracted into `testdata/buildkit-integration`).
//! Each prints its counts; any FAIL, MISMATCH or unexpected parse fails the test.
//!
//! The corpus is read in place (`KILN_CONFORMANCE_DIR`, else
//! `../shared/conformance`). The kiln under test is `KILN_CONFORMANCE_BIN` (CI points it at
//! the release binary), else `KILN_TEST_BIN`, else this build's.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

#[path = "../common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Tmp;

/// How the runner invokes kiln (its placeholders are shell-quoted by the runner).
const BUILDER_CMD: &str =
    "kiln build --progress plain -f {dockerfile} -o type=oci,tar=false,dest={out} {args} {context}";

fn corpus() -> PathBuf {
    match std::env::var_os("KILN_CONFORMANCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance"),
    }
}

fn kiln_binary() -> PathBuf {
    ["KILN_CONFORMANCE_BIN", "KILN_TEST_BIN"]
        .iter()
        .find_map(std::env::var_os)
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_kiln")), PathBuf::from)
}

fn main() {
    let run_py = corpus().join("buildah-conformance/run.py");
    assert!(
        run_py.is_file(),
        "{} not found: put the conformance corpus at ../shared/conformance or set KILN_CONFORMANCE_DIR",
        run_py.display()
    );
    let t = Tmp::new("conformance");
    // The runner finds `kiln` on PATH.
    let bin_dir = t.join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    std::os::unix::fs::symlink(
        std::fs::canonicalize(kiln_binary()).unwrap(),
        bin_dir.join("kiln"),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let work = t.join("work");
    let report = work.join("report.json");
    println!("conformance: buildah's docker-vs-buildah cases, built by buildah 1.28 and by kiln");
    let status = Command::new("python3")
        .arg(&run_py)
        .args(["--builder-cmd", BUILDER_CMD, "--keep", "--work"])
        .arg(&work)
        .arg("--report")
        .arg(&report)
        .env("PATH", &path)
        .status()
        .expect("python3");
    // 1 means the runner saw FAILs, which check.py judges against DEVIATIONS.md.
    assert!(
        matches!(status.code(), Some(0 | 1)),
        "the conformance runner itself failed: {status}"
    );

    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut failed = Vec::new();
    let status = Command::new("python3")
        .arg(here.join("check.py"))
        .arg(&run_py)
        .arg(&report)
        .arg(here.join("expected.json"))
        .arg(here.join("DEVIATIONS.md"))
        .status()
        .expect("python3");
    if !status.success() {
        failed.push("buildah-conformance (check.py)");
    }

    let kiln = std::fs::canonicalize(kiln_binary()).unwrap();
    println!("buildah-bud: buildah's bud fixtures, built by buildah 1.28 and by kiln");
    let status = Command::new("python3")
        .arg(here.join("bud.py"))
        .arg("--runner")
        .arg(&run_py)
        .arg("--kiln")
        .arg(&kiln)
        .args(["--jobs", "2", "--work"])
        .arg(t.join("bud"))
        .env("PATH", &path)
        .status()
        .expect("python3");
    if !status.success() {
        failed.push("buildah-bud (bud.py)");
    }

    println!("buildkit-integration: BuildKit's integration-test Dockerfiles, built by kiln");
    let status = Command::new("python3")
        .arg(here.join("buildkit_integration.py"))
        .arg("--runner")
        .arg(&run_py)
        .arg("--corpus")
        .arg(corpus().join("buildkit-integration"))
        .arg("--kiln")
        .arg(&kiln)
        .arg("--work")
        .arg(t.join("bki"))
        .env("PATH", &path)
        .status()
        .expect("python3");
    if !status.success() {
        failed.push("buildkit-integration (buildkit_integration.py)");
    }

    if !failed.is_empty() {
        println!("conformance failed: {}", failed.join(", "));
        std::process::exit(1);
    }
}
