//! Base images end to end, as kiln finds them: per platform (in OCI layouts, OCI and docker
//! archives, the store and a registry), and refused with an error naming the digest, the
//! reference and the entry when they cannot be used.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::layout::{Layout, read_image, tar_of};
use common::registry::Registry;
use common::{Tmp, kiln, tool, write_files};
use serde_json::{Value, json};

/// (host architecture, another one), as OCI names them.
fn arches() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "x86_64" => ("amd64", "arm64"),
        "aarch64" => ("arm64", "amd64"),
        other => panic!("no test platform pair for {other}"),
    }
}

/// The busybox fixture as an OCI layout (tag `latest`), built by kiln.
fn busybox_layout(t: &Tmp) -> PathBuf {
    let ctx = t.join("busybox-context");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/busybox/make-context.sh");
    tool("bash", &[script.to_str().unwrap(), ctx.to_str().unwrap()]).ok();
    let out = t.join("busybox-layout");
    kiln(
        &t.join("busybox-root"),
        &[
            "build",
            "-q",
            "-t",
            "busybox:latest",
            "-o",
            &format!("type=oci,tar=false,dest={}", out.display()),
            ctx.to_str().unwrap(),
        ],
    )
    .ok();
    out
}

fn config_for(base: &Value, arch: &str) -> Value {
    let mut config = base.clone();
    config["architecture"] = arch.into();
    if arch == "arm64" {
        config["variant"] = "v8".into();
    }
    config["config"]["Labels"] = json!({"arch": arch});
    config
}

/// A layout with the busybox image for each of `arches` (each with `/arch` holding its name)
/// in one index, plus an attestation entry, tagged `multi`; returns it and the index digest.
fn multi_platform(t: &Tmp, busybox: &Path, arches: &[&str]) -> (PathBuf, String) {
    let (base_layers, base_config) = read_image(busybox, "latest");
    let layout = Layout::new(&t.join("multi"));
    let base = layout.copy_layers(busybox, &base_layers);
    let mut manifests = Vec::new();
    for arch in arches {
        let mut layers = base.clone();
        layers.push(layout.layer(&tar_of(&[("arch", format!("{arch}\n").as_bytes())])));
        let mut desc = layout.image(&layers, config_for(&base_config, arch));
        desc["platform"] = json!({"os": "linux", "architecture": arch});
        if *arch == "arm64" {
            desc["platform"]["variant"] = "v8".into();
        }
        manifests.push(desc);
    }
    let statement = layout.blob(br#"{"_type":"https://in-toto.io/Statement/v0.1"}"#);
    let mut empty = layout.blob(b"{}");
    empty["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
    let mut statement_layer = statement;
    statement_layer["mediaType"] = "application/vnd.in-toto+json".into();
    let mut attestation = layout.manifest(
        &json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": empty, "layers": [statement_layer]}),
        "application/vnd.oci.image.manifest.v1+json",
    );
    attestation["platform"] = json!({"os": "unknown", "architecture": "unknown"});
    attestation["annotations"] = json!({"vnd.docker.reference.type": "attestation-manifest"});
    manifests.push(attestation);
    let index = layout.manifest(
        &json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": manifests}),
        "application/vnd.oci.image.index.v1+json",
    );
    let digest = index["digest"].as_str().unwrap().to_owned();
    layout.tag(&[("multi", index)]);
    (layout.dir.clone(), digest)
}

/// A stage `FROM --platform=<other> foreign` and a stage `FROM host` (the host's platform) in
/// one build: each finds its own platform's `/arch`.
fn each_stage_gets_its_platform(t: &Tmp, root: &Path, foreign: &str, host_image: &str) {
    let (host, other) = arches();
    let out = t.join("out-stages");
    let _ = std::fs::remove_dir_all(&out);
    build(
        root,
        &t.join("ctx-stages"),
        &format!(
            "FROM --platform=linux/{other} {foreign} AS foreign\n\
             FROM {host_image}\n\
             COPY --from=foreign /arch /foreign-arch\n"
        ),
        &["-o", &format!("type=local,dest={}", out.display())],
    )
    .ok();
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap();
    assert_eq!(read("arch"), format!("{host}\n"));
    assert_eq!(read("foreign-arch"), format!("{other}\n"));
}

fn build(root: &Path, dir: &Path, dockerfile: &str, extra: &[&str]) -> common::Run {
    write_files(dir, &[("Dockerfile", dockerfile)]);
    let mut args = vec!["build", "--progress", "plain"];
    args.extend(extra);
    args.push(dir.to_str().unwrap());
    kiln(root, &args)
}

/// Whether `haystack` (an error report, wrapped and framed by miette) says `needle`: compared
/// without whitespace and frame characters.
fn says(haystack: &str, needle: &str) -> bool {
    let squash = |s: &str| {
        s.chars()
            .filter(|c| !c.is_whitespace() && *c != '|' && *c != '│')
            .collect::<String>()
    };
    squash(haystack).contains(&squash(needle))
}

fn oci_config(layout: &Path) -> Value {
    read_image(layout, "latest").1
}

#[test]
fn layouts_and_archives_resolve_for_the_requested_platform() {
    let t = Tmp::new("img-layout-platform");
    let busybox = busybox_layout(&t);
    let (host, other) = arches();
    let (multi, index_digest) = multi_platform(&t, &busybox, &[other, host]);
    let root = t.join("root");
    let layout_ref = format!("oci-layout://{}:multi", multi.display());

    // Two stages, two platforms, one layout: each stage gets its own image.
    each_stage_gets_its_platform(&t, &root, &layout_ref, &layout_ref);

    // --platform picks the other manifest of the index, named by tag or by the index digest.
    for selector in [":multi".to_owned(), format!("@{index_digest}")] {
        let out = t.join("out-other");
        let _ = std::fs::remove_dir_all(&out);
        build(
            &root,
            &t.join("ctx-other"),
            &format!(
                "FROM oci-layout://{}{selector}\nLABEL x=1\n",
                multi.display()
            ),
            &[
                "--platform",
                &format!("linux/{other}"),
                "-o",
                &format!("type=oci,tar=false,dest={}", out.display()),
            ],
        )
        .ok();
        let config = oci_config(&out);
        assert_eq!(config["architecture"], other, "{selector}");
        assert_eq!(config["config"]["Labels"]["arch"], other, "{selector}");
    }

    // The same index as an OCI archive (skopeo's oci-archive:), and a docker save archive.
    let archive = t.join("multi.tar");
    tool(
        "skopeo",
        &[
            "copy",
            "--all",
            &format!("oci:{}:multi", multi.display()),
            &format!("oci-archive:{}:multi", archive.display()),
        ],
    )
    .ok();
    let saved = t.join("saved.tar");
    tool(
        "skopeo",
        &[
            "copy",
            &format!("oci:{}:latest", busybox.display()),
            &format!("docker-archive:{}:busybox:saved", saved.display()),
        ],
    )
    .ok();
    let out = t.join("out-archives");
    build(
        &root,
        &t.join("ctx-archives"),
        "FROM archived\nCOPY --from=saved /etc/passwd /saved-passwd\nRUN cat /arch /saved-passwd > /both\n",
        &[
            "--platform",
            &format!("linux/{host}"),
            "--build-context",
            &format!("archived=oci-layout://{}:multi", archive.display()),
            "--build-context",
            &format!("saved=oci-layout://{}", saved.display()),
            "-o",
            &format!("type=local,dest={}", out.display()),
        ],
    )
    .ok();
    let both = std::fs::read_to_string(out.join("both")).unwrap();
    assert!(both.starts_with(&format!("{host}\nroot:x:0:0")), "{both}");
}

#[test]
fn the_store_keeps_one_image_per_name_and_platform() {
    let t = Tmp::new("img-store-platform");
    let busybox = busybox_layout(&t);
    let (host, other) = arches();
    let root = t.join("root");
    let base = format!("oci-layout://{}:latest", busybox.display());
    for arch in [host, other] {
        let r = build(
            &root,
            &t.join(&format!("ctx-{arch}")),
            &format!("FROM {base}\nLABEL built-for={arch}\n"),
            &["--platform", &format!("linux/{arch}"), "-t", "app:1"],
        )
        .ok();
        if arch == other {
            // busybox exists for the host only: used, with a warning naming both platforms.
            assert!(
                r.stderr.contains("warning")
                    && r.stderr.contains(&format!("linux/{host}"))
                    && r.stderr.contains(&format!("not linux/{other}")),
                "{}",
                r.stderr
            );
        }
    }
    let images = kiln(&root, &["images"]).ok().stdout;
    assert_eq!(images.matches("app").count(), 1, "{images}");
    for arch in [host, other] {
        let out = t.join(&format!("out-{arch}"));
        build(
            &root,
            &t.join(&format!("ctx-from-{arch}")),
            "FROM app:1\nLABEL again=1\n",
            &[
                "--platform",
                &format!("linux/{arch}"),
                "-o",
                &format!("type=oci,tar=false,dest={}", out.display()),
            ],
        )
        .ok();
        let config = oci_config(&out);
        assert_eq!(config["config"]["Labels"]["built-for"], arch, "{config}");
        assert_eq!(config["architecture"], arch);
    }
}

#[test]
fn a_registry_index_is_pulled_per_platform() {
    let t = Tmp::new("img-registry-platform");
    let busybox = busybox_layout(&t);
    let (host, other) = arches();
    let (multi, index_digest) = multi_platform(&t, &busybox, &[host, other]);
    let registry = Registry::start();
    let reference = format!("{}/multi:1", registry.addr());
    tool(
        "skopeo",
        &[
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
            &format!("oci:{}:multi", multi.display()),
            &format!("docker://{reference}"),
        ],
    )
    .ok();
    let root = t.join("root");
    kiln(&root, &["pull", &reference]).ok();

    // Only the host's manifest is stored: a build for the other platform pulls its own.
    let out = t.join("out-other");
    let r = build(
        &root,
        &t.join("ctx-other"),
        &format!("FROM {reference}\nLABEL x=1\n"),
        &[
            "--platform",
            &format!("linux/{other}"),
            "-o",
            &format!("type=oci,tar=false,dest={}", out.display()),
        ],
    )
    .ok();
    assert!(
        r.stderr.contains(&format!("for linux/{other}")),
        "{}",
        r.stderr
    );
    assert_eq!(oci_config(&out)["config"]["Labels"]["arch"], other);

    // COPY --from and RUN --mount from= an image read it for the build's platform too (the
    // "arm64" busybox of the fixture is an x86 binary under its label: it runs here).
    let out = t.join("out-from-image");
    build(
        &root,
        &t.join("ctx-from-image"),
        &format!(
            "FROM {reference}
             COPY --from={reference} /arch /copied-arch
             RUN --mount=type=bind,from={reference},target=/m cp /m/arch /mounted-arch
"
        ),
        &["-o", &format!("type=local,dest={}", out.display())],
    )
    .ok();
    for file in ["copied-arch", "mounted-arch"] {
        let text = std::fs::read_to_string(out.join(file)).unwrap();
        assert_eq!(text, format!("{host}\n"), "{file}");
    }

    // A fresh store: two stages on two platforms of one reference, and the index by digest.
    let fresh = t.join("fresh");
    let pinned = format!("{}/multi@{index_digest}", registry.addr());
    each_stage_gets_its_platform(&t, &fresh, &reference, &pinned);
}

#[test]
fn a_manifest_whose_config_contradicts_its_index_entry_is_refused() {
    let t = Tmp::new("img-lying-index");
    let busybox = busybox_layout(&t);
    let (host, other) = arches();
    let (layers, config) = read_image(&busybox, "latest");
    let layout = Layout::new(&t.join("lying"));
    let copied = layout.copy_layers(&busybox, &layers);
    let mut desc = layout.image(&copied, config_for(&config, other));
    let manifest = desc["digest"].as_str().unwrap().to_owned();
    desc["platform"] = json!({"os": "linux", "architecture": host});
    let index = layout.manifest(
        &json!({"schemaVersion": 2, "manifests": [desc]}),
        "application/vnd.oci.image.index.v1+json",
    );
    layout.tag(&[("latest", index)]);
    let r = build(
        &t.join("root"),
        &t.join("ctx"),
        &format!("FROM oci-layout://{}:latest\n", layout.dir.display()),
        &[],
    )
    .failed();
    assert!(
        says(&r.stderr, &manifest)
            && says(&r.stderr, &format!("listed for linux/{host}"))
            && says(&r.stderr, &format!("config says linux/{other}")),
        "{}",
        r.stderr
    );
}

#[test]
fn unusable_bases_are_refused_naming_the_digest_and_the_entry() {
    let t = Tmp::new("img-refused");
    let busybox = busybox_layout(&t);
    let (layers, config) = read_image(&busybox, "latest");
    let root = t.join("root");

    // Docker schema 1.
    let schema1 = Layout::new(&t.join("schema1"));
    let mut v1 = schema1.manifest(
        &json!({"schemaVersion": 1, "name": "old", "tag": "1", "architecture": "amd64",
                "fsLayers": [{"blobSum": "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"}],
                "history": [{"v1Compatibility": "{}"}]}),
        "application/vnd.docker.distribution.manifest.v1+json",
    );
    let v1_digest = v1["digest"].as_str().unwrap().to_owned();
    v1["mediaType"] = "application/vnd.docker.distribution.manifest.v1+json".into();
    schema1.tag(&[("latest", v1)]);
    let r = build(
        &root,
        &t.join("ctx-schema1"),
        &format!("FROM oci-layout://{}:latest\n", schema1.dir.display()),
        &[],
    )
    .failed();
    assert!(
        says(&r.stderr, "schema 1") && says(&r.stderr, &v1_digest),
        "{}",
        r.stderr
    );

    // A foreign layer (its blob lives elsewhere).
    let foreign = Layout::new(&t.join("foreign"));
    let mut copied = foreign.copy_layers(&busybox, &layers);
    let (mut outside, outside_id) = foreign.layer(&tar_of(&[("windows", b"x")]));
    outside["mediaType"] = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip".into();
    outside["urls"] = json!(["https://example.invalid/layer"]);
    let outside_digest = outside["digest"].as_str().unwrap().to_owned();
    copied.push((outside, outside_id));
    let desc = foreign.image(&copied, config.clone());
    foreign.tag(&[("latest", desc)]);
    let r = build(
        &root,
        &t.join("ctx-foreign"),
        &format!("FROM oci-layout://{}:latest\n", foreign.dir.display()),
        &[],
    )
    .failed();
    assert!(
        says(&r.stderr, "foreign") && says(&r.stderr, &outside_digest),
        "{}",
        r.stderr
    );

    // A layer whose entry climbs out of the root: named with the layer's diff_id.
    let hostile = Layout::new(&t.join("hostile"));
    let mut copied = hostile.copy_layers(&busybox, &layers);
    let evil = hostile.layer(&tar_of(&[("a/../../evil", b"escaped")]));
    let evil_id = evil.1.clone();
    copied.push(evil);
    let desc = hostile.image(&copied, config);
    hostile.tag(&[("latest", desc)]);
    let r = build(
        &root,
        &t.join("ctx-hostile"),
        &format!(
            "FROM oci-layout://{}:latest\nRUN true\n",
            hostile.dir.display()
        ),
        &[],
    )
    .failed();
    assert!(
        says(&r.stderr, "a/../../evil") && says(&r.stderr, &evil_id),
        "{}",
        r.stderr
    );
    assert!(!t.path().join("evil").exists() && !root.join("evil").exists());
}

#[test]
fn run_gets_home_groups_and_path_as_buildkit_gives_them() {
    let t = Tmp::new("img-run-env");
    let busybox = busybox_layout(&t);
    // The same image, its config with an Env that has no PATH.
    let (layers, mut config) = read_image(&busybox, "latest");
    let layout = Layout::new(&t.join("no-path"));
    let copied = layout.copy_layers(&busybox, &layers);
    config["config"]["Env"] = json!(["A=1"]);
    let desc = layout.image(&copied, config);
    layout.tag(&[("latest", desc)]);
    let out = t.join("out");
    build(
        &t.join("root"),
        &t.join("ctx"),
        &format!(
            "FROM oci-layout://{}:latest\n\
             RUN echo \"root HOME=$HOME PATH=$PATH $(grep Groups /proc/self/status)\" > /env\n\
             USER app\n\
             RUN echo \"app HOME=$HOME $(grep Groups /proc/self/status)\" > /tmp/app\n\
             USER 4242\n\
             RUN echo \"4242 HOME=$HOME\" > /tmp/4242\n\
             USER root\n\
             RUN cat /tmp/app /tmp/4242 >> /env\n",
            layout.dir.display()
        ),
        &["-o", &format!("type=oci,tar=false,dest={}", out.display())],
    )
    .ok();
    let default_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    let config = oci_config(&out);
    assert_eq!(
        config["config"]["Env"],
        json!(["A=1", format!("PATH={default_path}")])
    );
    let unpacked = t.join("unpacked");
    let image = common::tree::unpack(&out, "latest", &unpacked, 0);
    let env = std::fs::read_to_string(image.rootfs.join("env")).unwrap();
    // Groups: the ones whose member list names the user (staff lists app), as runc gives
    // BuildKit's RUN; HOME from the passwd entry, `/` for a uid that has none.
    assert_eq!(
        env,
        format!(
            "root HOME=/root PATH={default_path} Groups:\t \n\
             app HOME=/home/app Groups:\t50 \n\
             4242 HOME=/\n"
        )
    );
}
