//! `kiln build` end to end: real images from the busybox fixture, checked with independent
//! tools (umoci, skopeo, oci-image-tool), caching, determinism, outputs and bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::{Tmp, busybox, describe, kiln, kiln_env, tool, write_files};

const APP: &str = r#"# syntax=docker/dockerfile:1
FROM busybox AS builder
WORKDIR /src
COPY hello.sh .
COPY --chown=app:staff data/ /data/

FROM busybox
ARG GREETING=hi
ENV G=$GREETING
COPY --from=builder /src/hello.sh /usr/local/bin/hello
COPY --from=builder /data /data
COPY --chmod=0600 <<EOF /etc/motd
welcome $G
EOF
COPY links/ /links/
USER app
WORKDIR /home/app
EXPOSE 8080 53/udp
LABEL org.example.title="app" org.example.n=1
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s CMD ["hello"]
ENTRYPOINT ["/usr/local/bin/hello"]
CMD ["--verbose"]
"#;

fn app_context(dir: &Path) {
    write_files(
        dir,
        &[
            ("Dockerfile", APP),
            ("hello.sh", "#!/bin/sh\necho hello\n"),
            ("data/x", "x\n"),
            ("data/secret.key", "do not ship\n"),
            ("data/keep.key", "re-included\n"),
            ("links/target.txt", "t\n"),
            (".dockerignore", "data/*.key\n!data/keep.key\n"),
        ],
    );
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir.join("hello.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("target.txt", dir.join("links/link")).unwrap();
    std::fs::hard_link(dir.join("links/target.txt"), dir.join("links/hard")).unwrap();
}

#[test]
fn multi_stage_image_checked_by_independent_tools() {
    let t = Tmp::new("app");
    let root = t.join("root");
    busybox(&root, &t);
    let ctx = t.join("ctx");
    app_context(&ctx);
    let oci = t.join("oci");
    let meta = t.join("meta.json");
    let iid = t.join("iid");
    kiln(
        &root,
        &[
            "build",
            "-t",
            "app:1.0",
            "-t",
            "app:latest",
            "-o",
            &format!("type=oci,tar=false,dest={}", oci.display()),
            "--iidfile",
            iid.to_str().unwrap(),
            "--metadata-file",
            meta.to_str().unwrap(),
            "--label",
            "org.example.title=from-cli",
            "--label",
            "org.example.cli",
            ctx.to_str().unwrap(),
        ],
    )
    .ok();

    // oci-image-tool validates the layout, manifest and config against the OCI schemas.
    tool(
        "oci-image-tool",
        &[
            "validate",
            "--type",
            "image",
            "--ref",
            "name=1.0",
            oci.to_str().unwrap(),
        ],
    )
    .ok();

    // skopeo reads the raw config as any registry client would (--raw keeps Docker's
    // fields, such as Healthcheck, that the OCI types drop).
    let cfg = tool(
        "skopeo",
        &[
            "inspect",
            "--config",
            "--raw",
            &format!("oci:{}:1.0", oci.display()),
        ],
    )
    .ok();
    let cfg: serde_json::Value = serde_json::from_str(&cfg.stdout).unwrap();
    let c = &cfg["config"];
    assert_eq!(c["User"], "app");
    assert_eq!(c["WorkingDir"], "/home/app");
    assert_eq!(c["Env"], serde_json::json!(["PATH=/bin", "G=hi"]));
    assert_eq!(c["Entrypoint"], serde_json::json!(["/usr/local/bin/hello"]));
    assert_eq!(c["Cmd"], serde_json::json!(["--verbose"]));
    assert_eq!(
        c["ExposedPorts"],
        serde_json::json!({"8080/tcp": {}, "53/udp": {}})
    );
    // --label overrides a LABEL of the same key; `--label KEY` alone is an empty value.
    assert_eq!(c["Labels"]["org.example.title"], "from-cli");
    assert_eq!(c["Labels"]["org.example.n"], "1");
    assert_eq!(c["Labels"]["org.example.cli"], "");
    assert_eq!(c["StopSignal"], "SIGINT");
    assert_eq!(
        c["Healthcheck"]["Test"],
        serde_json::json!(["CMD", "hello"])
    );
    assert_eq!(c["Healthcheck"]["Interval"], 5_000_000_000u64);
    let history: Vec<&str> = cfg["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["created_by"].as_str().unwrap())
        .collect();
    assert!(
        history.contains(&"COPY /src/hello.sh /usr/local/bin/hello # buildkit"),
        "{history:?}"
    );
    assert!(
        history.contains(&"COPY --chmod=0600 <<EOF /etc/motd # buildkit"),
        "{history:?}"
    );
    let layers = cfg["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["empty_layer"] != true)
        .count();
    assert_eq!(layers, cfg["rootfs"]["diff_ids"].as_array().unwrap().len());

    // umoci unpacks the layers as a runtime would; compare the tree.
    let bundle = t.join("bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:1.0", oci.display()),
            bundle.to_str().unwrap(),
        ],
    )
    .ok();
    let rootfs = bundle.join("rootfs");
    let expect = [
        (
            "/usr/local/bin/hello",
            "755 0:0 file:#!/bin/sh\necho hello\n",
        ),
        // COPY --from copies /data's contents into a /data it creates (0:0, as BuildKit's
        // CopyDirContentsOnly does); the files keep the owner they had in the builder stage.
        ("/data", "755 0:0 dir"),
        ("/data/x", "644 1000:50 file:x\n"),
        ("/data/keep.key", "644 1000:50 file:re-included\n"),
        ("/etc/motd", "600 0:0 file:welcome hi\n"),
        ("/links/link", "777 0:0 link->target.txt"),
        ("/links/target.txt", "644 0:0 file:t\n"),
        ("/bin/sh", "777 0:0 link->busybox"),
        ("/tmp", "1777 0:0 dir"),
        ("/home/app", "755 0:0 dir"),
    ];
    for (path, want) in expect {
        assert_eq!(describe(&rootfs, path), want, "{path}");
    }
    assert!(
        !rootfs.join("data/secret.key").exists(),
        ".dockerignore'd file shipped"
    );
    use std::os::unix::fs::MetadataExt as _;
    let ino = |p: &str| std::fs::metadata(rootfs.join(p)).unwrap().ino();
    assert_eq!(
        ino("links/hard"),
        ino("links/target.txt"),
        "hardlink not kept"
    );

    // The image is in the store under both names; iidfile and metadata agree.
    let id = std::fs::read_to_string(&iid).unwrap();
    let images = kiln(&root, &["images"]).ok().stdout;
    assert!(images.contains("app") && images.contains("1.0") && images.contains("latest"));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&meta).unwrap()).unwrap();
    assert_eq!(meta["containerimage.digest"], id.as_str());
    assert!(
        meta["containerimage.config.digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
}

#[test]
fn rebuild_is_fully_cached_and_a_changed_file_reruns_only_its_readers() {
    let t = Tmp::new("cache");
    let root = t.join("root");
    busybox(&root, &t);
    let ctx = t.join("ctx");
    write_files(
        &ctx,
        &[
            (
                "Dockerfile",
                "FROM busybox\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\nLABEL x=1\n",
            ),
            ("a.txt", "a"),
            ("b.txt", "b"),
        ],
    );
    let c = ctx.to_str().unwrap();
    let first = kiln(&root, &["build", "-t", "c", c]).ok();
    assert_eq!(first.counts(), (1, 2), "{}", first.stderr);
    let second = kiln(&root, &["build", "-t", "c", c]).ok();
    assert_eq!(
        second.counts(),
        (3, 0),
        "every step cached:\n{}",
        second.stderr
    );
    std::fs::write(ctx.join("b.txt"), "changed").unwrap();
    let third = kiln(&root, &["build", "-t", "c", c]).ok();
    assert_eq!(
        third.counts(),
        (2, 1),
        "only COPY b.txt reruns:\n{}",
        third.stderr
    );
    assert!(
        third.stderr.contains("COPY b.txt /b.txt\n#3 DONE"),
        "{}",
        third.stderr
    );
    let nocache = kiln(&root, &["build", "--no-cache", "-t", "c", c]).ok();
    assert_eq!(nocache.counts(), (1, 2), "{}", nocache.stderr);
}

#[test]
fn source_date_epoch_gives_one_digest_from_empty_stores() {
    let t = Tmp::new("repro");
    let ctx = t.join("ctx");
    app_context(&ctx);
    let mut ids = Vec::new();
    for store in ["s1", "s2"] {
        let root = t.join(store);
        let env = [("SOURCE_DATE_EPOCH", "1700000000")];
        common::busybox_env(&root, &t, &env);
        let run = kiln_env(&root, &["build", "-q", ctx.to_str().unwrap()], &env).ok();
        ids.push(run.stdout.trim().to_owned());
    }
    assert!(ids[0].starts_with("sha256:"));
    assert_eq!(ids[0], ids[1]);
}

/// The config of image `id` in the store at `root`, read back by skopeo from an OCI export.
fn exported_config(
    t: &Tmp,
    root: &Path,
    ctx: &Path,
    extra: &[&str],
) -> (String, serde_json::Value) {
    let oci = t.join(&format!(
        "oci-{}-{}",
        root.file_name().unwrap().to_string_lossy(),
        extra.len()
    ));
    let mut args = vec!["build", "-q", "-o"];
    let out = format!("type=oci,dest={},tar=false,name=x:1", oci.display());
    args.push(&out);
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    let id = kiln(root, &args).ok().stdout.trim().to_owned();
    let cfg = tool(
        "skopeo",
        &[
            "inspect",
            "--config",
            "--raw",
            &format!("oci:{}:1", oci.display()),
        ],
    )
    .ok();
    (id, serde_json::from_str(&cfg.stdout).unwrap())
}

/// BuildKit's rule: a cached step keeps the time its layer was first made, and the image's
/// `created` is its last history entry's, so a fully cached rebuild is the same image.
#[test]
fn cached_rebuilds_keep_the_image_digest() {
    let t = Tmp::new("repro-cached");
    let root = t.join("root");
    busybox(&root, &t);
    let ctx = t.join("ctx");
    write_files(
        &ctx,
        &[
            (
                "Dockerfile",
                "FROM busybox\nENV A=1\nRUN echo ran > /ran\nCOPY f /f\nLABEL l=1\n",
            ),
            ("f", "f\n"),
        ],
    );
    let (first, cfg) = exported_config(&t, &root, &ctx, &[]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (second, cfg2) = exported_config(&t, &root, &ctx, &["--label", "x=y"]);
    assert_ne!(first, second, "a label is a new config");
    let (third, _) = exported_config(&t, &root, &ctx, &[]);
    assert_eq!(first, third, "a cached rebuild is the same image");
    let history = cfg["history"].as_array().unwrap();
    let times: Vec<&str> = history
        .iter()
        .map(|h| h["created"].as_str().unwrap())
        .collect();
    let n = times.len();
    // ENV takes the RUN's time (the first new layer's), LABEL the COPY's, the image the last.
    assert_eq!(times[n - 4], times[n - 3], "{times:?}");
    assert_eq!(times[n - 2], times[n - 1], "{times:?}");
    assert_eq!(cfg["created"].as_str(), Some(times[n - 1]));
    assert!(!times[n - 1].starts_with("1970"), "{times:?}");
    assert_eq!(
        cfg2["created"], cfg["created"],
        "cached steps keep their times"
    );
}

/// BuildKit's `COPY --link`: the step is keyed without its base, so a new base reuses the
/// step's layer (the same blob) without running it, rebased onto the new base.
#[test]
fn copy_link_layer_is_rebased_onto_a_changed_base() {
    let t = Tmp::new("copy-link");
    let root = t.join("root");
    busybox(&root, &t);
    let ctx = t.join("ctx");
    write_files(
        &ctx,
        &[
            (
                "Dockerfile",
                "FROM busybox\nARG V\nRUN echo $V > /v\nCOPY --link f /app/f\nCOPY --link --chown=1:2 f /app/g\n",
            ),
            ("f", "f\n"),
        ],
    );
    let build = |v: &str| {
        let oci = t.join(&format!("oci-{v}"));
        let run = kiln(
            &root,
            &[
                "build",
                "--build-arg",
                &format!("V={v}"),
                "-o",
                &format!("type=oci,tar=false,dest={},name=x:1", oci.display()),
                ctx.to_str().unwrap(),
            ],
        )
        .ok();
        let manifest = tool(
            "skopeo",
            &["inspect", "--raw", &format!("oci:{}:1", oci.display())],
        )
        .ok()
        .stdout;
        let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
        let layers: Vec<String> = manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_owned())
            .collect();
        (run, oci, layers)
    };
    let (_, _, first) = build("one");
    let (second, oci, layers) = build("two");
    assert!(
        second.counts() == (3, 1),
        "only the RUN runs again:\n{}",
        second.stderr
    );
    assert_ne!(first[1], layers[1], "the base changed");
    assert_eq!(
        first[2..],
        layers[2..],
        "the linked layers are the same blobs"
    );
    // The image holds the new base under the linked layers.
    let bundle = t.join("bundle");
    tool(
        "umoci",
        &[
            "raw",
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:1", oci.display()),
            bundle.to_str().unwrap(),
        ],
    )
    .ok();
    assert_eq!(std::fs::read_to_string(bundle.join("v")).unwrap(), "two\n");
    assert_eq!(
        std::fs::read_to_string(bundle.join("app/f")).unwrap(),
        "f\n"
    );
}

/// A rebuild that changes nothing writes nothing durable: the only syncs left are redb's own
/// when the metadata database opens and closes (three `fdatasync`s), where every cache
/// lookup used to open it anew (about 30 for this Dockerfile).
#[test]
fn a_cached_rebuild_waits_on_no_fsync_of_its_own() {
    let t = Tmp::new("noop-fsync");
    let root = t.join("root");
    busybox(&root, &t);
    let ctx = t.join("ctx");
    app_context(&ctx);
    let c = ctx.to_str().unwrap();
    kiln(&root, &["build", "-q", "-t", "app:1", c]).ok();
    kiln(&root, &["build", "-q", "-t", "app:1", c]).ok();
    let summary = t.join("strace.txt");
    let out = std::process::Command::new("strace")
        .args([
            "-f",
            "-c",
            "-e",
            "trace=fsync,fdatasync,sync_file_range",
            "-o",
        ])
        .arg(&summary)
        .arg(common::kiln_bin())
        .args(["build", "-q", "-t", "app:1", c, "--root"])
        .arg(&root)
        .env_remove("KILN_ROOT")
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap_or_else(|e| panic!("strace: {e}: install it with `bash .ci/setup`"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&summary).unwrap();
    let syncs: u64 = text
        .lines()
        .filter(|l| {
            l.ends_with("fsync") || l.ends_with("fdatasync") || l.ends_with("sync_file_range")
        })
        .filter_map(|l| {
            l.split_whitespace()
                .nth(3)
                .and_then(|n| n.parse::<u64>().ok())
        })
        .sum();
    assert!(syncs <= 3, "a cached rebuild synced {syncs} times:\n{text}");
}

/// BuildKit's global `ARG SOURCE_DATE_EPOCH=N`: the Dockerfile's default is the epoch, a
/// build arg overrides it, a value that is no number is an error at the ARG.
#[test]
fn source_date_epoch_as_a_dockerfile_default() {
    let t = Tmp::new("repro-default");
    let root = t.join("root");
    busybox(&root, &t);
    let ctx = t.join("ctx");
    write_files(
        &ctx,
        &[
            (
                "Dockerfile",
                "ARG SOURCE_DATE_EPOCH=1445412480\nFROM busybox\nCOPY f /f\n",
            ),
            ("f", "f\n"),
        ],
    );
    let (_, cfg) = exported_config(&t, &root, &ctx, &[]);
    assert_eq!(cfg["created"], "2015-10-21T07:28:00Z");
    let (_, cfg) = exported_config(
        &t,
        &root,
        &ctx,
        &["--build-arg", "SOURCE_DATE_EPOCH=1700000002"],
    );
    assert_eq!(cfg["created"], "2023-11-14T22:13:22Z");
    std::fs::write(
        ctx.join("Dockerfile"),
        "ARG SOURCE_DATE_EPOCH=not-a-timestamp\nFROM busybox\n",
    )
    .unwrap();
    let bad = kiln(&root, &["build", ctx.to_str().unwrap()]).failed();
    assert!(
        bad.stderr
            .contains("invalid SOURCE_DATE_EPOCH: not-a-timestamp")
            && bad.stderr.contains("Dockerfile:1:1"),
        "{}",
        bad.stderr
    );
}

/// buildx passes SOURCE_DATE_EPOCH as a build arg: it sets every time, the base's included.
#[test]
fn source_date_epoch_as_a_build_arg() {
    let t = Tmp::new("repro-arg");
    let ctx = t.join("ctx");
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo ran > /ran\nCOPY . /ctx\n",
        )],
    );
    let mut ids = Vec::new();
    for store in ["s1", "s2"] {
        let root = t.join(store);
        common::busybox_env(&root, &t, &[("SOURCE_DATE_EPOCH", "1700000000")]);
        let (id, cfg) = exported_config(&t, &root, &ctx, &["--build-arg", "SOURCE_DATE_EPOCH=0"]);
        assert_eq!(cfg["created"], "1970-01-01T00:00:00Z");
        for h in cfg["history"].as_array().unwrap() {
            assert_eq!(h["created"], "1970-01-01T00:00:00Z", "{h}");
        }
        ids.push(id);
    }
    assert!(ids[0].starts_with("sha256:"));
    assert_eq!(ids[0], ids[1]);
    let bad = kiln(
        &t.join("s1"),
        &[
            "build",
            "--build-arg",
            "SOURCE_DATE_EPOCH=soon",
            ctx.to_str().unwrap(),
        ],
    )
    .failed();
    assert!(
        bad.stderr.contains("SOURCE_DATE_EPOCH=\"soon\""),
        "{}",
        bad.stderr
    );
}

#[test]
fn outputs_docker_local_tar_and_oci_tar() {
    let t = Tmp::new("outputs");
    let root = t.join("root");
    busybox(&root, &t);
    let ctx = t.join("ctx");
    write_files(
        &ctx,
        &[
            ("Dockerfile", "FROM busybox\nCOPY f /srv/f\n"),
            ("f", "data\n"),
        ],
    );
    let (docker, local, tarf, ocitar) = (
        t.join("img.tar"),
        t.join("local"),
        t.join("rootfs.tar"),
        t.join("oci.tar"),
    );
    kiln(
        &root,
        &[
            "build",
            "-t",
            "out:1",
            "-o",
            &format!("type=docker,dest={}", docker.display()),
            "-o",
            &format!("type=local,dest={}", local.display()),
            "-o",
            &format!("type=tar,dest={}", tarf.display()),
            "-o",
            &format!("type=oci,dest={},tar=true", ocitar.display()),
            ctx.to_str().unwrap(),
        ],
    )
    .ok();
    assert_eq!(
        std::fs::read_to_string(local.join("srv/f")).unwrap(),
        "data\n"
    );
    assert!(local.join("bin/busybox").is_file());
    let listing = tool("tar", &["-tf", tarf.to_str().unwrap()]).ok().stdout;
    assert!(
        listing
            .lines()
            .any(|l| l.trim_start_matches("./") == "srv/f"),
        "{listing}"
    );
    // docker-archive: skopeo reads it the way docker load would.
    let cfg = tool(
        "skopeo",
        &[
            "inspect",
            "--config",
            &format!("docker-archive:{}", docker.display()),
        ],
    )
    .ok();
    assert!(
        cfg.stdout.contains("COPY f /srv/f # buildkit"),
        "{}",
        cfg.stdout
    );
    let cfg = tool(
        "skopeo",
        &[
            "inspect",
            "--config",
            &format!("oci-archive:{}:1", ocitar.display()),
        ],
    )
    .ok();
    assert!(
        cfg.stdout.contains("COPY f /srv/f # buildkit"),
        "{}",
        cfg.stdout
    );
}

#[test]
fn images_tag_and_rmi() {
    let t = Tmp::new("tags");
    let root = t.join("root");
    busybox(&root, &t);
    kiln(
        &root,
        &["tag", "busybox", "registry.local:5000/tools/bb:v1"],
    )
    .ok();
    let list = kiln(&root, &["images"]).ok().stdout;
    assert!(
        list.contains("registry.local:5000/tools/bb") && list.contains("v1"),
        "{list}"
    );
    kiln(&root, &["rmi", "registry.local:5000/tools/bb:v1"]).ok();
    let list = kiln(&root, &["images"]).ok().stdout;
    assert!(!list.contains("registry.local"), "{list}");
    let err = kiln(&root, &["rmi", "nope:1"]).failed();
    assert!(err.stderr.contains("nope"), "{}", err.stderr);
}

#[test]
fn from_oci_layout_and_named_build_contexts() {
    let t = Tmp::new("sources");
    let root = t.join("root");
    busybox(&root, &t);
    let layout = t.join("layout");
    let base_ctx = t.join("base");
    write_files(
        &base_ctx,
        &[
            ("Dockerfile", "FROM busybox\nCOPY base.txt /\n"),
            ("base.txt", "base\n"),
        ],
    );
    kiln(
        &root,
        &[
            "build",
            "-o",
            &format!("type=oci,tar=false,dest={},name=base:1", layout.display()),
            base_ctx.to_str().unwrap(),
        ],
    )
    .ok();
    // A second store builds FROM the layout: blobs are imported and verified.
    let root2 = t.join("root2");
    let assets = t.join("assets");
    write_files(&assets, &[("logo.svg", "<svg/>\n")]);
    let ctx = t.join("ctx");
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            &format!(
                "FROM oci-layout://{}:1\nCOPY --from=assets logo.svg /srv/\nCOPY --from=bb /bin/busybox /bb\n",
                layout.display()
            ),
        )],
    );
    let out = t.join("out");
    kiln(
        &root2,
        &[
            "build",
            "--build-context",
            &format!("assets={}", assets.display()),
            "--build-context",
            &format!("bb=oci-layout://{}:1", layout.display()),
            "-o",
            &format!("type=local,dest={}", out.display()),
            ctx.to_str().unwrap(),
        ],
    )
    .ok();
    assert_eq!(
        std::fs::read_to_string(out.join("base.txt")).unwrap(),
        "base\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("srv/logo.svg")).unwrap(),
        "<svg/>\n"
    );
    assert!(out.join("bb").is_file());
}

#[test]
fn add_extracts_local_archives_and_copy_does_not() {
    let t = Tmp::new("add");
    let root = t.join("root");
    let ctx = t.join("ctx");
    write_files(&ctx, &[("src/inner/file.txt", "inside\n")]);
    // Plain, gzip, bzip2, xz and zstd tars, each made by GNU tar.
    let kinds: [(&str, &[&str]); 5] = [
        ("a.tar", &["-cf"]),
        ("a.tar.gz", &["-czf"]),
        ("a.tar.bz2", &["-cjf"]),
        ("a.tar.xz", &["-cJf"]),
        ("a.tar.zst", &["--zstd", "-cf"]),
    ];
    let mut dockerfile = String::from("FROM scratch\n");
    for (i, (name, flags)) in kinds.iter().enumerate() {
        let made = std::process::Command::new("tar")
            .args(*flags)
            .arg(name)
            .args(["-C", "src", "inner"])
            .current_dir(&ctx)
            .status()
            .unwrap();
        assert!(made.success(), "tar {flags:?}");
        dockerfile.push_str(&format!("ADD {name} /x{i}/\n"));
    }
    dockerfile.push_str("COPY a.tar.gz /y/\n");
    write_files(&ctx, &[("Dockerfile", &dockerfile)]);
    let out = t.join("out");
    kiln(
        &root,
        &[
            "build",
            "-o",
            &format!("type=local,dest={}", out.display()),
            ctx.to_str().unwrap(),
        ],
    )
    .ok();
    for (i, (name, _)) in kinds.iter().enumerate() {
        let f = out.join(format!("x{i}/inner/file.txt"));
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "inside\n", "{name}");
    }
    assert!(out.join("y/a.tar.gz").is_file(), "COPY must not extract");
}

#[test]
fn dockerfile_from_stdin_or_outside_the_context_target_and_build_args() {
    let t = Tmp::new("dockerfile");
    let root = t.join("root");
    let ctx = t.join("ctx");
    write_files(
        &ctx,
        &[
            ("a.txt", "a\n"),
            ("b.txt", "b\n"),
            (".dockerignore", "a.txt\n"),
        ],
    );
    // -f outside the context, with its own .dockerignore taking precedence.
    let df = t.join("elsewhere/build.Dockerfile");
    write_files(
        &t.join("elsewhere"),
        &[
            (
                "build.Dockerfile",
                "FROM scratch AS first\nARG WHICH=a\nCOPY ${WHICH}.txt /\nFROM scratch\nCOPY b.txt /\n",
            ),
            ("build.Dockerfile.dockerignore", "b.txt\n"),
        ],
    );
    let local = |dir: &std::path::Path| format!("type=local,dest={}", dir.display());
    let out = t.join("out");
    let (dfs, cs) = (df.to_str().unwrap(), ctx.to_str().unwrap());
    kiln(
        &root,
        &[
            "build",
            "-f",
            dfs,
            "--target",
            "first",
            "-o",
            &local(&out),
            cs,
        ],
    )
    .ok();
    assert_eq!(
        std::fs::read_to_string(out.join("a.txt")).unwrap(),
        "a\n",
        "<Dockerfile>.dockerignore replaces .dockerignore"
    );
    // --build-arg changes what is copied; b.txt is ignored through the Dockerfile's own file.
    let out2 = t.join("out2");
    let run = kiln(
        &root,
        &[
            "build",
            "-f",
            dfs,
            "--target",
            "first",
            "--build-arg",
            "WHICH=b",
            "-o",
            &local(&out2),
            cs,
        ],
    )
    .failed();
    assert!(run.stderr.contains("b.txt"), "{}", run.stderr);
    // -f - reads the Dockerfile from standard input.
    let out3 = t.join("out3");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args([
            "build",
            "--root",
            root.to_str().unwrap(),
            "-f",
            "-",
            "-o",
            &local(&out3),
            cs,
        ])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"FROM scratch\nCOPY b.txt /from-stdin\n")
        .unwrap();
    let done = child.wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(out3.join("from-stdin")).unwrap(),
        "b\n"
    );
}

/// Each bad input fails with exit code 1, a located error naming the culprit, and leaves
/// no image tagged.
#[test]
fn bad_inputs_fail_located_and_tag_nothing() {
    let t = Tmp::new("bad");
    let root = t.join("root");
    busybox(&root, &t);
    let corrupt = t.join("corrupt-layout");
    write_files(
        &corrupt,
        &[
            ("oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}"),
            ("index.json", "{not json"),
        ],
    );
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "missing",
            "FROM busybox\nCOPY nothere.txt /\n".into(),
            "nothere.txt",
        ),
        ("parent", "FROM busybox\nCOPY ../x /\n".into(), "../x"),
        ("symlink", "FROM busybox\nCOPY escape /\n".into(), "escape"),
        (
            "unknown-from",
            "FROM busybox\nCOPY --from=nosuchimage /x /\n".into(),
            "nosuchimage",
        ),
        ("unknown-base", "FROM nosuchbase:1\n".into(), "nosuchbase:1"),
        (
            "corrupt-layout",
            format!("FROM oci-layout://{}\n", corrupt.display()),
            "index.json",
        ),
    ];
    for (name, dockerfile, culprit) in cases {
        let ctx = t.join(&format!("ctx-{name}"));
        write_files(&ctx, &[("Dockerfile", &dockerfile)]);
        std::os::unix::fs::symlink("/etc/passwd", ctx.join("escape")).unwrap();
        let tag = format!("bad-{name}:1");
        let run = kiln(&root, &["build", "-t", &tag, ctx.to_str().unwrap()]).failed();
        assert!(
            run.stderr.contains(culprit),
            "{name}: error does not name {culprit}:\n{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("Dockerfile:"),
            "{name}: error not located:\n{}",
            run.stderr
        );
        let images = kiln(&root, &["images"]).ok().stdout;
        assert!(
            !images.contains(&format!("bad-{name}")),
            "{name}: tagged anyway"
        );
    }
    // The store still works after all of that.
    let ctx = t.join("ctx-good");
    write_files(
        &ctx,
        &[("Dockerfile", "FROM busybox\nCOPY ok /\n"), ("ok", "ok")],
    );
    kiln(&root, &["build", "-t", "good:1", ctx.to_str().unwrap()]).ok();
}

/// BuildKit's testDockerfileLowercase: without -f and without a `Dockerfile`, a lowercase
/// `dockerfile` in the context is the one built; with both, `Dockerfile` wins.
#[test]
fn lowercase_dockerfile_is_the_fallback() {
    let t = Tmp::new("build-lowercase");
    let root = t.join("root");
    let ctx = t.join("ctx");
    write_files(&ctx, &[("dockerfile", "FROM scratch\nLABEL which=lower\n")]);
    let oci = t.join("oci");
    let dest = format!("type=oci,tar=false,dest={}", oci.display());
    kiln(&root, &["build", "-o", &dest, ctx.to_str().unwrap()]).ok();
    let config = |oci: &Path| {
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(oci.join("index.json")).unwrap()).unwrap();
        let blob = |d: &str| {
            let hex = d.trim_start_matches("sha256:");
            serde_json::from_slice::<serde_json::Value>(
                &std::fs::read(oci.join("blobs/sha256").join(hex)).unwrap(),
            )
            .unwrap()
        };
        let manifest = blob(index["manifests"][0]["digest"].as_str().unwrap());
        blob(manifest["config"]["digest"].as_str().unwrap())
    };
    assert_eq!(config(&oci)["config"]["Labels"]["which"], "lower");
    write_files(&ctx, &[("Dockerfile", "FROM scratch\nLABEL which=upper\n")]);
    let oci2 = t.join("oci2");
    let dest2 = format!("type=oci,tar=false,dest={}", oci2.display());
    kiln(&root, &["build", "-o", &dest2, ctx.to_str().unwrap()]).ok();
    assert_eq!(config(&oci2)["config"]["Labels"]["which"], "upper");
}
