//! Real-world Dockerfiles (`testdata/realworld/`) on a real distribution: Debian 12 minbase
//! made with mmdebstrap (`fixtures/debian/make-debian.py`, cached outside the clone), published
//! by Go's archive/tar and by GNU tar, pushed to a registry on a free loopback port. Each
//! Dockerfile is built by kiln on both and by buildah once; the images, unpacked by umoci,
//! must agree path by path and in the config, but for what is a log or a cache by nature
//! (apt and dpkg logs, debconf's backups, bytecode caches) and buildah's own /etc files.
//!
//! RUN steps reach Debian's archive over plain HTTP and PyPI, npm and crates.io over HTTPS
//! through a proxy only the host's CA bundle trusts: the bundle goes in as a secret and each
//! tool is pointed at it (PIP_CERT, NODE_EXTRA_CA_CERTS, CARGO_HTTP_CAINFO), as users behind
//! such a proxy do (see testdata/realworld/README.md).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::buildah::Buildah;
use common::registry::Registry;
use common::tree::{Entry, diff_configs, diff_trees, summarize, unpack};
use common::{Tmp, kiln, tool};

/// The host's CA bundle, which the HTTPS proxy in front of the package registries is trusted by.
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// One Dockerfile and the bases kiln builds it on.
struct Case {
    name: &'static str,
    /// Also built on the GNU tar base (the slow ones only on Go's, which buildah reads too).
    both_bases: bool,
    /// Targets of cache mounts: buildah 1.28 writes a whiteout for each (its known bug: the
    /// base's directory disappears from the image), where BuildKit — and kiln — leave the
    /// base's directory as it was. kiln's image must hold them as directories.
    mount_targets: &'static [&'static str],
    /// Mount points buildah 1.28 leaves in the image (the parent directory of a secret), which
    /// BuildKit's stub cleaner — and kiln — remove: kiln's image must not hold them.
    buildah_stubs: &'static [&'static str],
}

const CASES: [Case; 6] = [
    Case {
        name: "apt-cache",
        both_bases: true,
        mount_targets: &["var/cache/apt", "var/lib/apt/lists"],
        buildah_stubs: &[],
    },
    Case {
        name: "users",
        both_bases: true,
        mount_targets: &[],
        buildah_stubs: &[],
    },
    Case {
        name: "setcap",
        both_bases: true,
        mount_targets: &[],
        buildah_stubs: &[],
    },
    Case {
        name: "python-venv",
        both_bases: true,
        mount_targets: &[],
        buildah_stubs: &["run/secrets"],
    },
    Case {
        name: "node-npm-ci",
        both_bases: false,
        mount_targets: &["root/.npm", "root/.cargo/registry"],
        buildah_stubs: &[],
    },
    Case {
        name: "rust-cargo",
        both_bases: false,
        mount_targets: &["root/.npm", "root/.cargo/registry"],
        buildah_stubs: &[],
    },
];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// What differs between two builds by nature, not by builder: logs and caches with times in
/// them, bytecode, and the files buildah mounts into RUN.
fn is_noise(path: &str) -> bool {
    const PREFIXES: [&str; 7] = [
        "var/log/",
        "var/cache/debconf/",
        "var/cache/ldconfig/",
        "var/cache/apt/",
        "var/lib/apt/lists/",
        "root/.npm/",
        "root/.cache/",
    ];
    const FILES: [&str; 3] = ["etc/hosts", "etc/hostname", "etc/resolv.conf"];
    PREFIXES.iter().any(|p| path.starts_with(p))
        || FILES.contains(&path)
        || path.ends_with("-old")
        || path.contains("/__pycache__")
        || path.ends_with(".pyc")
}

fn filtered(tree: BTreeMap<String, Entry>) -> BTreeMap<String, Entry> {
    tree.into_iter().filter(|(p, _)| !is_noise(p)).collect()
}

fn build_args(reference: &str) -> Vec<String> {
    vec![
        "--build-arg".into(),
        format!("BASE={reference}"),
        "--secret".into(),
        format!("id=ca,src={CA_BUNDLE}"),
    ]
}

fn main() {
    let t = Tmp::new("realworld");
    let out = t.join("debian");
    let script = repo().join("fixtures/debian/make-debian.py");
    tool(
        "python3",
        &[script.to_str().unwrap(), out.to_str().unwrap()],
    )
    .ok();
    let registry = Registry::start();
    let publish = |name: &str| {
        let reference = format!("{}/realworld/{name}:latest", registry.addr());
        let source = format!("oci:{}:latest", out.join("layouts").join(name).display());
        let dest = format!("docker://{reference}");
        tool(
            "skopeo",
            &[
                "copy",
                "--dest-tls-verify=false",
                "--preserve-digests",
                &source,
                &dest,
            ],
        )
        .ok();
        reference
    };
    let gotar = publish("debian-gotar");
    let gnutar = publish("debian-gnutar");
    let buildah = Buildah::new(&t.join("buildah"));
    let root = t.join("kiln-root");
    let only = std::env::var("KILN_REALWORLD_ONLY").unwrap_or_default();
    let mut failures = Vec::new();
    let mut table = Vec::new();
    for case in CASES
        .iter()
        .filter(|c| only.is_empty() || only.split(',').any(|n| n == c.name))
    {
        let dir = repo().join("testdata/realworld").join(case.name);
        let dockerfile = dir.join("Dockerfile");
        let oracle_out = t.join(&format!("buildah-{}", case.name));
        let secret = format!("id=ca,src={CA_BUNDLE}");
        let oracle = buildah.build(
            &dockerfile,
            &dir,
            &[("BASE", &gotar)],
            &["--secret", &secret],
            &oracle_out,
        );
        assert_eq!(
            oracle.code, 0,
            "buildah failed on {}:\n{}",
            case.name, oracle.stderr
        );
        let theirs = unpack(
            &oracle_out,
            "latest",
            &t.join(&format!("unpacked-buildah-{}", case.name)),
            0,
        );
        let mut expected = filtered(summarize(&theirs.rootfs));
        for stub in case.buildah_stubs {
            assert!(
                expected.remove(*stub).is_some(),
                "{}: buildah no longer leaves {stub}: drop it from buildah_stubs",
                case.name
            );
        }
        let bases: &[(&str, &str)] = if case.both_bases {
            &[("debian-gotar", &gotar), ("debian-gnutar", &gnutar)]
        } else {
            &[("debian-gotar", &gotar)]
        };
        for (base, reference) in bases {
            let kiln_out: PathBuf = t.join(&format!("kiln-{}-{base}", case.name));
            let mut args: Vec<String> = vec![
                "build".into(),
                "--progress".into(),
                "plain".into(),
                "-t".into(),
                format!("realworld-{}", case.name),
                "-o".into(),
                format!("type=oci,tar=false,dest={}", kiln_out.display()),
            ];
            args.extend(build_args(reference));
            args.push(dir.display().to_string());
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let run = kiln(&root, &argv);
            if run.code != 0 {
                table.push(format!("{:<14} on {base:<14} kiln FAILED", case.name));
                failures.push(format!(
                    "{} on {base}: kiln failed:\n{}",
                    case.name, run.stderr
                ));
                continue;
            }
            let ours = unpack(
                &kiln_out,
                "latest",
                &t.join(&format!("unpacked-kiln-{}-{base}", case.name)),
                0,
            );
            let mut tree = filtered(summarize(&ours.rootfs));
            let mut diffs = Vec::new();
            for target in case.mount_targets {
                match tree.remove(*target) {
                    Some(e) if e.kind == "dir" => {}
                    Some(e) => diffs.push(format!("{target}: the cache mount's target is {e}")),
                    None if target.starts_with("root/") => {}
                    None => diffs.push(format!("{target}: the base's directory is gone")),
                }
            }
            diffs.extend(diff_trees(&expected, &tree, ""));
            diffs.extend(diff_configs(&theirs.config, &ours.config));
            table.push(format!(
                "{:<14} on {base:<14} {}",
                case.name,
                if diffs.is_empty() {
                    "same as buildah".to_owned()
                } else {
                    format!("{} DIFFERENCES", diffs.len())
                }
            ));
            if !diffs.is_empty() {
                failures.push(format!(
                    "{} on {base}: {} differences from buildah:\n  {}",
                    case.name,
                    diffs.len(),
                    common::tree::first_lines(&diffs)
                ));
            }
        }
    }
    common::finish_suite("realworld", &table, &failures);
}
