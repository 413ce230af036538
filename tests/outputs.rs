//! Every buildx output form, each read back by an independent tool: skopeo for OCI and
//! docker tarballs and registries, `tar -t` for `-o -`, `docker load` into a dockerd this test
//! starts on its own socket, oci-image-tool for a layout many builds export into at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::registry::Registry;
use common::{Tmp, busybox, kiln, kiln_env, tool, write_files};
use serde_json::Value;

/// A store with busybox, and a context whose image has one base layer and two of its own.
fn app(t: &Tmp) -> (PathBuf, PathBuf) {
    let root = t.join("root");
    busybox(&root, t);
    let ctx = t.join("ctx");
    write_files(
        &ctx,
        &[
            (
                "Dockerfile",
                "FROM busybox\nRUN echo ran > /ran\nCOPY f /srv/f\n",
            ),
            ("f", "data\n"),
        ],
    );
    (root, ctx)
}

/// Runs kiln with stdout into `out` (bytes, not text); returns stderr.
fn kiln_stdout_to(root: &Path, args: &[&str], out: &Path) -> String {
    let file = std::fs::File::create(out).unwrap();
    let got = common::kiln_command(root, args)
        .stdout(Stdio::from(file))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&got.stderr).into_owned();
    assert!(got.status.success(), "kiln {args:?} failed:\n{stderr}");
    stderr
}

fn listing(tar: &Path) -> Vec<String> {
    tool("tar", &["-tf", tar.to_str().unwrap()])
        .ok()
        .stdout
        .lines()
        .map(|l| l.trim_start_matches("./").to_owned())
        .collect()
}

fn raw(reference: &str) -> Value {
    let out = tool("skopeo", &["inspect", "--raw", reference]).ok();
    serde_json::from_str(&out.stdout).unwrap()
}

fn layer_types(manifest: &Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn stdout_streams_and_tarballs_as_buildx_writes_them() {
    let t = Tmp::new("out-stdout");
    let (root, ctx) = app(&t);
    let c = ctx.to_str().unwrap();

    // `-o -`: the rootfs as a tar on stdout.
    let rootfs = t.join("rootfs.tar");
    kiln_stdout_to(&root, &["build", "-o", "-", c], &rootfs);
    let names = listing(&rootfs);
    assert!(names.iter().any(|n| n == "srv/f"), "{names:?}");
    assert!(names.iter().any(|n| n == "bin/busybox"), "{names:?}");
    // `type=local,dest=-` is the same stream.
    let local = t.join("local.tar");
    kiln_stdout_to(&root, &["build", "-o", "type=local,dest=-", c], &local);
    assert_eq!(listing(&local), names);

    // `type=docker,dest=-`: a docker archive skopeo reads as `docker load` would.
    let docker = t.join("docker.tar");
    kiln_stdout_to(
        &root,
        &["build", "-t", "app:1", "-o", "type=docker,dest=-", c],
        &docker,
    );
    assert!(listing(&docker).contains(&"manifest.json".to_owned()));
    let cfg = tool(
        "skopeo",
        &[
            "inspect",
            "--config",
            &format!("docker-archive:{}", docker.display()),
        ],
    )
    .ok();
    assert!(cfg.stdout.contains("\"architecture\""), "{}", cfg.stdout);

    // `type=oci,dest=-` and `type=oci,dest=X.tar`: OCI tarballs, the same image.
    let oci_stream = t.join("oci-stream.tar");
    kiln_stdout_to(
        &root,
        &["build", "-t", "app:1", "-o", "type=oci,dest=-", c],
        &oci_stream,
    );
    let tarball = t.join("app.tar");
    let meta = t.join("meta.json");
    kiln(
        &root,
        &[
            "build",
            "-t",
            "app:1",
            "--metadata-file",
            meta.to_str().unwrap(),
            "-o",
            &format!("type=oci,dest={}", tarball.display()),
            c,
        ],
    )
    .ok();
    assert!(tarball.is_file(), "type=oci writes a tarball by default");
    let from_stream = raw(&format!("oci-archive:{}:1", oci_stream.display()));
    let from_file = raw(&format!("oci-archive:{}:1", tarball.display()));
    assert_eq!(from_stream, from_file);
    // --metadata-file has buildx's keys, the descriptor naming what was written.
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(&meta).unwrap()).unwrap();
    let digest = meta["containerimage.digest"].as_str().unwrap();
    assert_eq!(meta["containerimage.descriptor"]["digest"], digest);
    assert_eq!(
        meta["containerimage.descriptor"]["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert!(meta["containerimage.descriptor"]["size"].as_u64().unwrap() > 0);
    assert!(
        meta["containerimage.config.digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(meta["image.name"], "app:1");
    assert!(
        meta["buildx.build.ref"]
            .as_str()
            .unwrap()
            .starts_with("kiln/")
    );

    // tar=false is a layout directory; a tarball onto a directory is refused by name.
    let dir = t.join("layout");
    kiln(
        &root,
        &[
            "build",
            "-o",
            &format!("type=oci,dest={},tar=false", dir.display()),
            c,
        ],
    )
    .ok();
    assert!(dir.join("index.json").is_file());
    let err = kiln(
        &root,
        &[
            "build",
            "-o",
            &format!("type=oci,dest={}", dir.display()),
            c,
        ],
    )
    .failed();
    assert!(err.stderr.contains("tar=false"), "{}", err.stderr);

    // Mistakes are refused before anything is built.
    for (args, needle) in [
        (vec!["build", "-q", "-o", "-", c], "-q prints the image id"),
        (
            vec!["build", "-o", "-", "-o", "type=docker,dest=-", c],
            "only one output",
        ),
        (
            vec!["build", "-o", "type=oci,dest=-,tar=false", c],
            "stdout",
        ),
        (vec!["build", "-o", "type=registry", c], "name="),
    ] {
        let r = kiln(&root, &args).failed();
        assert!(r.stderr.contains(needle), "{args:?}: {}", r.stderr);
        assert!(
            !r.stderr.contains("DONE"),
            "refused before building: {}",
            r.stderr
        );
    }
}

#[test]
fn compression_media_types_and_annotations() {
    let t = Tmp::new("out-forms");
    let (root, ctx) = app(&t);
    let c = ctx.to_str().unwrap();
    let export = |name: &str, extra: &str, flags: &[&str]| -> PathBuf {
        let dest = t.join(&format!("{name}.tar"));
        let spec = format!("type=oci,dest={}{extra}", dest.display());
        let mut args = vec!["build", "-o", &spec];
        args.extend_from_slice(flags);
        args.push(c);
        kiln(&root, &args).ok();
        dest
    };
    let gzip = "application/vnd.oci.image.layer.v1.tar+gzip";
    let zstd = "application/vnd.oci.image.layer.v1.tar+zstd";
    let tar = "application/vnd.oci.image.layer.v1.tar";

    // The store keeps the layers kiln made (the base's too: kiln built it) as plain tars;
    // an image leaving the store is compressed, gzip unless asked otherwise.
    let kept = export("kept", ",compression=uncompressed", &[]);
    assert_eq!(
        layer_types(&raw(&format!("oci-archive:{}", kept.display()))),
        [tar, tar, tar]
    );
    let edge = export("edge", "", &[]);
    assert_eq!(
        layer_types(&raw(&format!("oci-archive:{}", edge.display()))),
        [gzip, gzip, gzip]
    );
    // A base stored gzip-compressed (named from an output that asked for it) keeps its
    // compression below layers converted to another one.
    let base_ctx = t.join("busybox-context-root");
    kiln(
        &root,
        &[
            "build",
            "-q",
            "-o",
            "type=image,name=busybox:latest,compression=gzip",
            base_ctx.to_str().unwrap(),
        ],
    )
    .ok();

    // zstd: the layers this build made are converted, the base keeps its compression.
    let z = export("zstd", ",compression=zstd,compression-level=3", &[]);
    let m = raw(&format!("oci-archive:{}", z.display()));
    assert_eq!(layer_types(&m), [gzip, zstd, zstd]);
    // skopeo copies it, verifying every blob against its digest, and reads zstd back.
    let copy = t.join("zstd-copy");
    tool(
        "skopeo",
        &[
            "copy",
            &format!("oci-archive:{}", z.display()),
            &format!("oci:{}:z", copy.display()),
        ],
    )
    .ok();
    // zstd(1) decompresses the converted layers to the files the build made.
    let copied = raw(&format!("oci:{}:z", copy.display()));
    let mut files = Vec::new();
    for layer in &copied["layers"].as_array().unwrap()[1..] {
        let digest = layer["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:");
        let blob = copy.join("blobs/sha256").join(digest);
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("zstd -dc '{}' | tar -t", blob.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        files.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_owned),
        );
    }
    assert!(files.iter().any(|f| f.ends_with("srv/f")), "{files:?}");
    assert!(files.iter().any(|f| f == "ran"), "{files:?}");

    // force-compression converts the base too; uncompressed is a plain tar.
    let forced = export("forced", ",compression=zstd,force-compression=true", &[]);
    assert_eq!(
        layer_types(&raw(&format!("oci-archive:{}", forced.display()))),
        [zstd, zstd, zstd]
    );
    let plain = export("plain", ",compression=uncompressed", &[]);
    assert_eq!(
        layer_types(&raw(&format!("oci-archive:{}", plain.display()))),
        [gzip, tar, tar]
    );
    // The same export again reuses the converted blobs: the same manifest.
    let again = export("zstd-again", ",compression=zstd,compression-level=3", &[]);
    assert_eq!(raw(&format!("oci-archive:{}", again.display())), m);

    // oci-mediatypes=false: Docker schema 2.
    let docker = export("docker-types", ",oci-mediatypes=false", &[]);
    let m = raw(&format!("oci-archive:{}", docker.display()));
    assert_eq!(
        m["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.docker.container.image.v1+json"
    );
    let dgzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    assert_eq!(layer_types(&m), [dgzip, dgzip, dgzip]);

    // Annotations: --annotation and annotation.* on the manifest, the descriptor's in
    // index.json.
    let annotated = export(
        "annotated",
        ",annotation.org.opencontainers.image.title=app,annotation-manifest-descriptor.d=x",
        &["--annotation", "org.example.from-flag=1"],
    );
    let m = raw(&format!("oci-archive:{}", annotated.display()));
    assert_eq!(m["annotations"]["org.opencontainers.image.title"], "app");
    assert_eq!(m["annotations"]["org.example.from-flag"], "1");
    let index = tool("tar", &["-xOf", annotated.to_str().unwrap(), "index.json"]).ok();
    let index: Value = serde_json::from_str(&index.stdout).unwrap();
    assert_eq!(index["manifests"][0]["annotations"]["d"], "x", "{index}");

    for (spec, needle) in [
        ("compression=zstd,oci-mediatypes=false", "Docker media type"),
        ("compression=estargz", "estargz"),
        ("annotation-index.k=v", "multi-platform"),
    ] {
        let r = kiln(
            &root,
            &["build", "-o", &format!("type=oci,dest=x.tar,{spec}"), c],
        )
        .failed();
        assert!(r.stderr.contains(needle), "{spec}: {}", r.stderr);
    }
}

#[test]
fn registry_and_image_outputs() {
    let reg = Registry::start();
    let t = Tmp::new("out-registry");
    let (root, ctx) = app(&t);
    let c = ctx.to_str().unwrap();
    let addr = reg.addr();
    let meta = t.join("meta.json");

    // type=registry pushes; the metadata names what the registry serves.
    kiln(
        &root,
        &[
            "build",
            "--metadata-file",
            meta.to_str().unwrap(),
            "-o",
            &format!("type=registry,name={addr}/app:1"),
            c,
        ],
    )
    .ok();
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(&meta).unwrap()).unwrap();
    let digest = meta["containerimage.digest"].as_str().unwrap().to_owned();
    let served = tool(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--format",
            "{{.Digest}}",
            &format!("docker://{addr}/app:1"),
        ],
    )
    .ok();
    assert_eq!(served.stdout.trim(), digest);

    // type=image names the image in kiln's store (two names, quoted as buildx takes them).
    kiln(
        &root,
        &["build", "-o", "type=image,\"name=local:a,local:b\"", c],
    )
    .ok();
    for name in ["local:a", "local:b"] {
        kiln(&root, &["inspect", name]).ok();
    }

    // push-by-digest: served by digest, no tag made.
    let r = kiln(
        &root,
        &[
            "build",
            "-q",
            "-o",
            &format!("type=image,name={addr}/bydigest:v1,push=true,push-by-digest=true"),
            c,
        ],
    )
    .ok();
    let id = r.stdout.trim();
    tool(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{addr}/bydigest@{id}"),
        ],
    )
    .ok();
    let tagged = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{addr}/bydigest:v1"),
        ])
        .output()
        .unwrap();
    assert!(!tagged.status.success(), "push-by-digest made no tag");

    // zstd through a registry: skopeo pulls it back, verifying each blob's digest.
    kiln(
        &root,
        &[
            "build",
            "-o",
            &format!("type=registry,name={addr}/z:1,compression=zstd"),
            c,
        ],
    )
    .ok();
    let pulled = t.join("z-pulled");
    tool(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{addr}/z:1"),
            &format!("oci:{}:z", pulled.display()),
        ],
    )
    .ok();
    let m = raw(&format!("oci:{}:z", pulled.display()));
    assert_eq!(
        layer_types(&m)[1..],
        [
            "application/vnd.oci.image.layer.v1.tar+zstd",
            "application/vnd.oci.image.layer.v1.tar+zstd"
        ]
    );
}

#[test]
fn concurrent_exports_into_one_layout_keep_every_tag() {
    let t = Tmp::new("out-concurrent");
    let (root, ctx) = app(&t);
    // Each build its own image (a label from the build arg), so each tag names its own.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN echo ran > /ran\nCOPY f /srv/f\nARG N\nLABEL n=$N\n",
    )
    .unwrap();
    let layout = t.join("layout");
    let children: Vec<(String, Child)> = (0..8)
        .map(|i| {
            let tag = format!("t{i}");
            let child = common::kiln_command(
                &root,
                &[
                    "build",
                    "-q",
                    "--build-arg",
                    &format!("N={i}"),
                    "-o",
                    &format!(
                        "type=oci,tar=false,dest={},name=app:{tag}",
                        layout.display()
                    ),
                    ctx.to_str().unwrap(),
                ],
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
            (tag, child)
        })
        .collect();
    for (tag, child) in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{tag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(layout.join("index.json")).unwrap()).unwrap();
    let mut names: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
        })
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"]);
    // oci-image-tool checks the index and each manifest against the OCI schemas (its
    // `--type image --ref name=…` mismatches refs in an index of three or more entries, a
    // bug of the tool: the index is checked whole instead), and skopeo reads every tag.
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    tool(
        "oci-image-tool",
        &[
            "validate",
            "--type",
            "imageIndex",
            &path(&layout.join("index.json")),
        ],
    )
    .ok();
    for d in index["manifests"].as_array().unwrap() {
        let hex = d["digest"].as_str().unwrap().trim_start_matches("sha256:");
        tool(
            "oci-image-tool",
            &[
                "validate",
                "--type",
                "manifest",
                &path(&layout.join("blobs/sha256").join(hex)),
            ],
        )
        .ok();
    }
    for name in names {
        let config = tool(
            "skopeo",
            &[
                "inspect",
                "--config",
                &format!("oci:{}:{name}", layout.display()),
            ],
        )
        .ok();
        let n = &name[1..];
        assert!(
            config.stdout.contains(&format!("\"n\": \"{n}\"")),
            "{}",
            config.stdout
        );
    }
}

/// A dockerd of this test's own: its socket, data and exec roots in a temp dir; no network
/// setup. Killed on drop.
struct Dockerd {
    child: Child,
    host: String,
    _dir: Tmp,
}

impl Dockerd {
    fn start() -> Self {
        let dir = Tmp::new("dockerd");
        let sock = dir.join("d.sock");
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .args(["--iptables=false", "--ip-masq=false", "--bridge=none"])
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("x"))
            .arg("--pidfile")
            .arg(dir.join("d.pid"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("dockerd: {e}: install docker.io (bash .ci/setup)"));
        let host = format!("unix://{}", sock.display());
        let mut d = Dockerd {
            child,
            host,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let up = Command::new("docker")
                .args(["-H", &d.host, "version"])
                .output()
                .is_ok_and(|o| o.status.success());
            if up {
                return d;
            }
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!(
                    "dockerd exited ({status}): {}",
                    std::fs::read_to_string(d._dir.join("dockerd.log")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "dockerd did not answer in 60 s");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn docker(&self, args: &[&str]) -> common::Run {
        let mut all = vec!["-H", &self.host];
        all.extend_from_slice(args);
        tool("docker", &all)
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn load_into_docker() {
    let t = Tmp::new("out-load");
    let (root, ctx) = app(&t);
    let c = ctx.to_str().unwrap();
    // Without docker or podman on PATH, --load says so.
    let r = kiln_env(&root, &["build", "--load", c], &[("PATH", "/nonexistent")]).failed();
    assert!(
        r.stderr.contains("neither docker nor podman"),
        "{}",
        r.stderr
    );

    let dockerd = Dockerd::start();
    let r = kiln_env(
        &root,
        &["build", "--load", "-t", "app:loaded", c],
        &[("DOCKER_HOST", &dockerd.host)],
    )
    .ok();
    assert!(
        r.stderr.contains("app:loaded"),
        "docker load's words: {}",
        r.stderr
    );
    let listed = dockerd
        .docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "app:loaded",
            "cat",
            "/srv/f",
            "/ran",
        ])
        .ok();
    assert_eq!(listed.stdout, "data\nran\n");

    // `-o type=docker,dest=-` piped into `docker load`.
    let archive = t.join("streamed.tar");
    kiln_stdout_to(
        &root,
        &["build", "-t", "app:streamed", "-o", "type=docker,dest=-", c],
        &archive,
    );
    dockerd
        .docker(&["load", "-i", archive.to_str().unwrap()])
        .ok();
    dockerd.docker(&["image", "inspect", "app:streamed"]).ok();
}

/// The image's layers, compressed while the build writes them for an output that needs them
/// compressed (gzip, or zstd at a level), are byte for byte what compressing them at export
/// makes: a `--no-cache` build straight to an OCI layout gives the manifest the export of the
/// same image built for the store alone gave; and a layer of another stage is never
/// compressed.
#[test]
fn layers_compressed_during_the_build_are_the_exports_own() {
    let t = Tmp::new("out-alongside");
    let root = t.join("root");
    busybox(&root, &t);
    let ctx = t.join("ctx");
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            "FROM busybox AS tool\nRUN seq 1 300000 > /numbers\n\
             FROM busybox\nRUN seq 1 200000 > /big && echo ran > /ran\n\
             COPY --from=tool /numbers /numbers\n",
        )],
    );
    let c = ctx.to_str().unwrap();
    let epoch = [("SOURCE_DATE_EPOCH", "1700000000")];
    let manifest_of = |layout: &Path| -> String {
        let index: Value =
            serde_json::from_str(&std::fs::read_to_string(layout.join("index.json")).unwrap())
                .unwrap();
        index["manifests"][0]["digest"].as_str().unwrap().to_owned()
    };
    for extra in ["", ",compression=zstd,compression-level=5"] {
        let during = t.join("during");
        let after = t.join("after");
        let _ = std::fs::remove_dir_all(&during);
        let _ = std::fs::remove_dir_all(&after);
        let to = |dir: &Path| format!("type=oci,tar=false,dest={}{extra}", dir.display());
        // A store-only build (nothing compressed), then the image exported: every step
        // cached, every layer compressed at export.
        kiln_env(&root, &["build", "--no-cache", "-t", "app", c], &epoch).ok();
        let spec = to(&after);
        kiln_env(&root, &["build", "-o", &spec, c], &epoch).ok();
        // Every step run again, its layers compressed while written; remembered over the
        // export's, so a different blob would change the manifest.
        let spec = to(&during);
        kiln_env(&root, &["build", "--no-cache", "-o", &spec, c], &epoch).ok();
        assert_eq!(manifest_of(&during), manifest_of(&after), "{extra}");
        // skopeo verifies every blob of the layout against its digest.
        tool(
            "skopeo",
            &[
                "copy",
                &format!("oci:{}", during.display()),
                &format!("dir:{}", t.join("copied").display()),
            ],
        )
        .ok();
        let _ = std::fs::remove_dir_all(t.join("copied"));
    }
    // Only the final stage's layers were compressed during the build (and the base at
    // export): the store holds one gzip and one zstd blob per layer of the image — none of
    // the tool stage's layer, which no output exports.
    let magic_count = |magic: &[u8]| {
        std::fs::read_dir(root.join("blobs/sha256"))
            .unwrap()
            .filter(|e| {
                let mut head = [0u8; 4];
                std::io::Read::read(
                    &mut std::fs::File::open(e.as_ref().unwrap().path()).unwrap(),
                    &mut head,
                )
                .unwrap();
                head.starts_with(magic)
            })
            .count()
    };
    assert_eq!(magic_count(&[0x1f, 0x8b]), 3, "gzip blobs");
    assert_eq!(magic_count(&[0x28, 0xb5, 0x2f, 0xfd]), 3, "zstd blobs");
}
