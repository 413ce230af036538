//! kiln on the images other tools write: `fixtures/interop/make-bases.py` makes a base image
//! with each writer people use (GNU tar in every format, bsdtar, busybox tar, Python's
//! tarfile, Go's archive/tar, umoci, buildah commit, and hand-written JSON and layers for what
//! registries serve), each is pushed to a registry on a free loopback port, and the probe
//! Dockerfile (`fixtures/interop/probe/`) is built on every one by kiln and by buildah. The
//! results, unpacked by umoci, must agree path by path (type, mode, owner, content, link
//! target, device, xattrs, hardlinks) and in the config.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod common;

use std::path::{Path, PathBuf};

use common::buildah::Buildah;
use common::registry::Registry;
use common::tree::{diff_configs, diff_trees, summarize, unpack};
use common::{Tmp, kiln, tool};

/// One base as make-bases.py lists it.
#[derive(serde::Deserialize)]
struct Base {
    name: String,
    writer: String,
    kind: String,
    path: PathBuf,
    all: bool,
    /// The base buildah builds instead, where it cannot read this one.
    oracle: Option<String>,
    /// A twin only buildah builds.
    oracle_only: bool,
    /// Layers of the image, which both builders' results start with.
    layers: usize,
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs make-bases.py into `out` and reads its list.
fn make_bases(out: &Path) -> Vec<Base> {
    let script = repo().join("fixtures/interop/make-bases.py");
    tool(
        "python3",
        &[script.to_str().unwrap(), out.to_str().unwrap()],
    )
    .ok();
    serde_json::from_slice(&std::fs::read(out.join("bases.json")).unwrap()).unwrap()
}

/// Pushes a base to the registry with skopeo, keeping its bytes; returns its reference.
fn publish(registry: &Registry, base: &Base) -> String {
    let reference = format!("{}/interop/{}:latest", registry.addr(), base.name);
    let source = match base.kind.as_str() {
        "layout" => format!("oci:{}:latest", base.path.display()),
        _ => format!("docker-archive:{}", base.path.display()),
    };
    let dest = format!("docker://{reference}");
    let mut args = vec!["copy", "--dest-tls-verify=false", "--preserve-digests"];
    if base.all {
        args.push("--all");
    }
    args.extend([source.as_str(), dest.as_str()]);
    tool("skopeo", &args).ok();
    reference
}

fn main() {
    let t = Tmp::new("interop");
    let bases = make_bases(&t.join("bases"));
    assert!(
        bases.len() >= 30,
        "make-bases.py made {} bases",
        bases.len()
    );
    let registry = Registry::start();
    let buildah = Buildah::new(&t.join("buildah"));
    let probe = repo().join("fixtures/interop/probe");
    let dockerfile = probe.join("Dockerfile");
    let root = t.join("kiln-root");
    let mut failures: Vec<String> = Vec::new();
    let mut table = Vec::new();
    // KILN_INTEROP_ONLY=name,name narrows a run while investigating.
    let only = std::env::var("KILN_INTEROP_ONLY").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only.split(',').any(|n| n == name);
    let references: std::collections::BTreeMap<&str, String> = bases
        .iter()
        .map(|b| (b.name.as_str(), publish(&registry, b)))
        .collect();
    // buildah's result per base it built (several of kiln's bases share one oracle).
    let mut oracles: std::collections::BTreeMap<String, Result<PathBuf, String>> =
        Default::default();
    let mut built = 0;
    for base in bases.iter().filter(|b| !b.oracle_only && wanted(&b.name)) {
        eprintln!("interop: {} ({})", base.name, base.writer);
        built += 1;
        let reference = &references[base.name.as_str()];
        let arg = format!("BASE={reference}");
        let kiln_out = t.join(&format!("kiln-{}", base.name));
        let run = kiln(
            &root,
            &[
                "build",
                "--progress",
                "plain",
                "-f",
                dockerfile.to_str().unwrap(),
                "--build-arg",
                &arg,
                "-t",
                &format!("probe-{}", base.name),
                "-o",
                &format!("type=oci,tar=false,dest={}", kiln_out.display()),
                probe.to_str().unwrap(),
            ],
        );
        if run.code != 0 {
            table.push(format!("{:<28} kiln FAILED", base.name));
            failures.push(format!(
                "{} ({}): kiln failed:\n{}",
                base.name,
                base.writer,
                tail(&run.stderr)
            ));
            continue;
        }
        let oracle_name = base.oracle.clone().unwrap_or_else(|| base.name.clone());
        let oracle = oracles.entry(oracle_name.clone()).or_insert_with(|| {
            let out = t.join(&format!("buildah-{oracle_name}"));
            let arg = references[oracle_name.as_str()].as_str();
            let run = buildah.build(&dockerfile, &probe, &[("BASE", arg)], &[], &out);
            if run.code == 0 {
                Ok(out)
            } else {
                Err(tail(&run.stderr))
            }
        });
        let oracle_out = match oracle {
            Ok(out) => out.clone(),
            Err(stderr) => {
                table.push(format!("{:<28} buildah FAILED on {oracle_name}", base.name));
                failures.push(format!(
                    "{}: buildah failed on {oracle_name}:\n{stderr}",
                    base.name
                ));
                continue;
            }
        };
        let ours = unpack(
            &kiln_out,
            "latest",
            &t.join(&format!("unpacked-kiln-{}", base.name)),
            base.layers,
        );
        let theirs = unpack(
            &oracle_out,
            "latest",
            &t.join(&format!(
                "unpacked-buildah-{}-for-{}",
                oracle_name, base.name
            )),
            base.layers,
        );
        let mut diffs = diff_trees(
            &summarize(&theirs.rootfs),
            &summarize(&ours.rootfs),
            "results",
        );
        diffs.extend(diff_configs(&theirs.config, &ours.config));
        let verdict = match (diffs.is_empty(), base.oracle.as_deref()) {
            (true, None) => "same as buildah".to_owned(),
            (true, Some(o)) => format!("same as buildah on {o}"),
            (false, _) => "DIFFERS".to_owned(),
        };
        table.push(format!("{:<28} {verdict}", base.name));
        if !diffs.is_empty() {
            failures.push(format!(
                "{} ({}): {} differences from buildah on {oracle_name}:\n  {}",
                base.name,
                base.writer,
                diffs.len(),
                common::tree::first_lines(&diffs)
            ));
        }
    }
    common::finish_suite(&format!("interop: {built} bases built"), &table, &failures);
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
