//! Store maintenance and inspection end to end: `kiln du` against `du -sb`, `kiln prune`
//! after `kiln rmi` (what goes, what stays, checked with skopeo and oci-image-tool, and
//! whether the next build is cached), the store lock against a running build, `kiln history`
//! and `kiln inspect` against the Dockerfile built, shell completions and the man page.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Tmp, busybox, kiln, tool, write_files};
use serde_json::Value;

/// `du -sb DIR`: apparent bytes, hard links once.
fn du_sb(dir: &Path) -> u64 {
    let out = tool("du", &["-sb", dir.to_str().unwrap()]).ok();
    out.stdout
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Runs kiln without `--root` (for subcommands that have no store).
fn kiln_bare(args: &[&str]) -> common::Run {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    common::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn du_json(root: &Path) -> Value {
    serde_json::from_str(&kiln(root, &["du", "--format", "json"]).ok().stdout).unwrap()
}

fn du_row(du: &Value, kind: &str) -> Value {
    du["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} row in {du}"))
        .clone()
}

/// Checks `kiln du` adds up and agrees with `du -sb` within 1%.
fn check_du(root: &Path) -> u64 {
    let du = du_json(root);
    let total = du["total"].as_u64().unwrap();
    let sum: u64 = du["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["size"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, total, "rows do not add up to the total: {du}");
    let real = du_sb(root);
    let diff = total.abs_diff(real);
    assert!(
        diff * 100 <= real,
        "kiln du says {total}, du -sb says {real}: more than 1% apart"
    );
    total
}

fn inspect(root: &Path, image: &str) -> Value {
    let v: Value = serde_json::from_str(&kiln(root, &["inspect", image]).ok().stdout).unwrap();
    v[0].clone()
}

/// Every blob of an image: manifest, config, layers.
fn blobs_of(image: &Value) -> Vec<String> {
    let mut blobs = vec![
        image["Id"].as_str().unwrap().to_owned(),
        image["Manifest"]["config"]["digest"]
            .as_str()
            .unwrap()
            .to_owned(),
    ];
    for l in image["Manifest"]["layers"].as_array().unwrap() {
        blobs.push(l["digest"].as_str().unwrap().to_owned());
    }
    blobs
}

fn blob_present(root: &Path, digest: &str) -> bool {
    root.join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
        .is_file()
}

fn build(root: &Path, ctx: &Path, tag: &str) -> common::Run {
    kiln(root, &["build", "-t", tag, ctx.to_str().unwrap()]).ok()
}

fn prune(root: &Path, extra: &[&str]) -> (u64, String) {
    let mut args = vec!["prune", "-f"];
    args.extend_from_slice(extra);
    let out = kiln(root, &args).ok().stdout;
    let line = out
        .lines()
        .find(|l| l.starts_with("Total reclaimed space:"))
        .unwrap_or_else(|| panic!("no total in {out}"));
    let bytes = line
        .rsplit_once('(')
        .and_then(|(_, b)| b.strip_suffix(" bytes)"))
        .unwrap()
        .parse()
        .unwrap();
    (bytes, out)
}

/// Reads the image `digest` straight out of the store's blobs with skopeo (every blob read
/// and digest-checked) into a fresh layout, which oci-image-tool then validates.
fn check_readable(t: &Tmp, root: &Path, image: &Value, name: &str) {
    let layout = t.join(&format!("view-{name}"));
    std::fs::create_dir_all(&layout).unwrap();
    std::os::unix::fs::symlink(root.join("blobs"), layout.join("blobs")).unwrap();
    let id = image["Id"].as_str().unwrap();
    let size = std::fs::metadata(root.join("blobs/sha256").join(&id[7..]))
        .unwrap()
        .len();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": id,
            "size": size,
            "annotations": {"org.opencontainers.image.ref.name": name},
        }],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    let copy = t.join(&format!("copy-{name}"));
    tool(
        "skopeo",
        &[
            "copy",
            &format!("oci:{}:{name}", layout.display()),
            &format!("oci:{}:{name}", copy.display()),
        ],
    )
    .ok();
    tool(
        "oci-image-tool",
        &[
            "validate",
            "--type",
            "image",
            "--ref",
            &format!("name={name}"),
            copy.to_str().unwrap(),
        ],
    )
    .ok();
}

#[test]
fn du_matches_du_and_prune_frees_what_rmi_let_go() {
    let t = Tmp::new("store-prune");
    let root = t.join("root");
    busybox(&root, &t);
    let keep_ctx = t.join("keep");
    write_files(
        &keep_ctx,
        &[
            (
                "Dockerfile",
                "FROM busybox\nRUN echo kept > /kept\nCOPY f /f\n",
            ),
            ("f", "keep me"),
        ],
    );
    // The app's RUN writes 400 kB of random bytes: a layer that is easy to see go.
    let app_ctx = t.join("app");
    write_files(
        &app_ctx,
        &[(
            "Dockerfile",
            "FROM busybox\nRUN dd if=/dev/urandom of=/big bs=1024 count=400 2>/dev/null\nRUN echo app > /app\n",
        )],
    );
    build(&root, &keep_ctx, "keep:1");
    build(&root, &app_ctx, "app:1");
    check_du(&root);
    let keep = inspect(&root, "keep:1");
    let app = inspect(&root, "app:1");
    let app_big_layer = app["Manifest"]["layers"][1]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(blob_present(&root, &app_big_layer));
    // Every blob is some tagged image's: nothing to reclaim.
    let du = du_json(&root);
    assert_eq!(du_row(&du, "images")["count"], 3);
    assert!(du["reclaimable"].as_u64().unwrap() < 64 * 1024, "{du}");

    // rmi, then a default prune: the app's manifest and config go, its layers stay as cache.
    kiln(&root, &["rmi", "app:1"]).ok();
    let du = du_json(&root);
    assert_eq!(du_row(&du, "images")["count"], 2);
    assert!(du["reclaimable"].as_u64().unwrap() >= 400 * 1024, "{du}");
    let before = check_du(&root);
    let (freed, out) = prune(&root, &[]);
    let after = check_du(&root);
    assert!(
        after < before,
        "du did not shrink: {before} -> {after}\n{out}"
    );
    assert!(freed > 0);
    assert!(!blob_present(&root, app["Id"].as_str().unwrap()));
    assert!(blob_present(&root, &app_big_layer));
    for blob in blobs_of(&keep) {
        assert!(blob_present(&root, &blob), "kept image lost {blob}");
    }
    let rebuilt = build(&root, &app_ctx, "app:1");
    assert_eq!(
        rebuilt.counts().1,
        0,
        "the cache should have survived:\n{}",
        rebuilt.stderr
    );

    // A filter spares everything younger than a day: all of it, here.
    kiln(&root, &["rmi", "app:1"]).ok();
    let (freed, _) = prune(&root, &["--all", "--filter", "until=24h"]);
    assert_eq!(freed, 0);
    assert!(blob_present(&root, &app_big_layer));

    // --all drops the cache no tagged image needs: the app's layers go.
    let before = check_du(&root);
    let (freed, out) = prune(&root, &["--all"]);
    let after = check_du(&root);
    assert!(
        before - after >= 400 * 1024,
        "--all freed too little: {before} -> {after}\n{out}"
    );
    // What prune reports is what du sees go (the metadata database may move a page or two).
    assert!(
        (before - after).abs_diff(freed) <= (before - after) / 100 + 64 * 1024,
        "reported {freed}, du lost {}",
        before - after
    );
    assert!(!blob_present(&root, &app_big_layer));
    for blob in blobs_of(&keep) {
        assert!(blob_present(&root, &blob), "kept image lost {blob}");
    }
    let reclaimable = du_json(&root)["reclaimable"].as_u64().unwrap();
    assert!(
        reclaimable < 64 * 1024,
        "still reclaimable after --all: {reclaimable}"
    );
    check_readable(&t, &root, &keep, "keep");

    // The next builds work: the app reruns its steps, the kept image is fully cached.
    let rebuilt = build(&root, &app_ctx, "app:1");
    assert_eq!(rebuilt.counts().1, 2, "{}", rebuilt.stderr);
    let rebuilt = build(&root, &keep_ctx, "keep:1");
    assert_eq!(rebuilt.counts().1, 0, "{}", rebuilt.stderr);
    check_readable(&t, &root, &inspect(&root, "app:1"), "app");
    check_du(&root);
}

#[test]
fn cache_mounts_go_only_when_asked() {
    let t = Tmp::new("store-cache-mounts");
    let root = t.join("root");
    busybox(&root, &t);
    let ctx = t.join("ctx");
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --mount=type=cache,target=/cache dd if=/dev/zero of=/cache/blob bs=1024 count=100 2>/dev/null\n",
        )],
    );
    build(&root, &ctx, "cm:1");
    let du = du_json(&root);
    let mounts = du_row(&du, "cache-mounts");
    assert_eq!(mounts["count"], 1);
    assert!(mounts["size"].as_u64().unwrap() >= 100 * 1024);
    prune(&root, &["--all"]);
    assert_eq!(du_row(&du_json(&root), "cache-mounts")["count"], 1);
    let (freed, _) = prune(&root, &["--cache-mounts"]);
    assert!(freed >= 100 * 1024);
    assert_eq!(du_row(&du_json(&root), "cache-mounts")["count"], 0);
    check_du(&root);
}

#[test]
fn prune_waits_for_a_build_holding_the_store() {
    let t = Tmp::new("store-lock");
    let root = t.join("root");
    busybox(&root, &t);
    // What `kiln build` holds for its whole run.
    let build = kiln_solver::store::StoreLock::shared(&root).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["prune", "-f", "--all", "--root", root.to_str().unwrap()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "prune ran while a build held the store"
    );
    drop(build);
    let start = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(start.elapsed() < Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("waiting for running builds"), "{stderr}");
    // The tagged base image is untouched.
    let busybox = inspect(&root, "busybox");
    for blob in blobs_of(&busybox) {
        assert!(blob_present(&root, &blob));
    }
}

#[test]
fn history_and_inspect_describe_the_dockerfile() {
    let t = Tmp::new("store-history");
    let root = t.join("root");
    busybox(&root, &t);
    let ctx = t.join("ctx");
    let long_run = "echo a-rather-long-command-line-that-docker-would-truncate > /long";
    write_files(
        &ctx,
        &[
            (
                "Dockerfile",
                &format!(
                    "FROM busybox\nLABEL team=kiln\nRUN {long_run}\nENV GREETING=hello\nCOPY hello.txt /hello.txt\nCMD [\"cat\", \"/hello.txt\"]\n"
                ),
            ),
            ("hello.txt", "hello\n"),
        ],
    );
    let iid = t.join("iid");
    kiln(
        &root,
        &[
            "build",
            "-t",
            "hist:1",
            "-t",
            "hist:latest",
            "--iidfile",
            iid.to_str().unwrap(),
            ctx.to_str().unwrap(),
        ],
    )
    .ok();
    let id = std::fs::read_to_string(&iid).unwrap();

    // inspect: the id, both names, the manifest and config as stored.
    let img = inspect(&root, "hist:1");
    assert_eq!(img["Id"], id.as_str());
    assert_eq!(
        img["RepoTags"],
        serde_json::json!(["hist:1", "hist:latest"])
    );
    let config = &img["Config"];
    assert_eq!(config["config"]["Labels"]["team"], "kiln");
    assert!(
        config["config"]["Env"]
            .as_array()
            .unwrap()
            .contains(&Value::from("GREETING=hello"))
    );
    assert_eq!(
        config["config"]["Cmd"],
        serde_json::json!(["cat", "/hello.txt"])
    );
    let layers = img["Manifest"]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3, "busybox's layer, the RUN, the COPY");
    assert_eq!(
        config["rootfs"]["diff_ids"].as_array().unwrap().len(),
        layers.len()
    );
    // The config in the output is the one the manifest names.
    let cfg_digest = img["Manifest"]["config"]["digest"].as_str().unwrap();
    let cfg_blob = std::fs::read(root.join("blobs/sha256").join(&cfg_digest[7..])).unwrap();
    assert_eq!(&serde_json::from_slice::<Value>(&cfg_blob).unwrap(), config);
    // By short id too, and by digest; an unknown name is an error naming it.
    let short = &id[7..19];
    assert_eq!(inspect(&root, short)["Id"], id.as_str());
    assert_eq!(inspect(&root, &id)["Id"], id.as_str());
    let missing = kiln(&root, &["inspect", "nope:1"]).failed();
    assert!(missing.stderr.contains("nope:1"), "{}", missing.stderr);

    // history: newest first, one row per history entry, layer sizes from the manifest.
    let hist = kiln(&root, &["history", "hist:1"]).ok().stdout;
    let lines: Vec<&str> = hist.lines().collect();
    let history = config["history"].as_array().unwrap();
    assert_eq!(lines.len(), history.len() + 1, "{hist}");
    assert!(lines[0].starts_with("IMAGE") && lines[0].contains("CREATED BY"));
    assert!(lines[1].starts_with(short), "{hist}");
    // BuildKit writes exec-form CMD as Go prints a slice.
    assert!(lines[1].contains("CMD [\"cat\" \"/hello.txt\"]"), "{hist}");
    assert!(lines[2].starts_with("<missing>") && lines[2].contains("COPY hello.txt /hello.txt"));
    assert!(lines[3].contains("ENV GREETING=hello") && lines[3].contains(" 0B "));
    assert!(lines[4].contains("RUN /bin/sh -c echo a-rather") && lines[4].contains('…'));
    assert!(!hist.contains(long_run));
    assert!(lines[5].contains("LABEL team=kiln"));
    assert!(lines[1].contains("ago"));
    let full = kiln(&root, &["history", "--no-trunc", "hist:1"])
        .ok()
        .stdout;
    assert!(full.contains(long_run), "{full}");
    assert!(full.contains(&id));

    let json: Value = serde_json::from_str(
        &kiln(&root, &["history", "--format", "json", "hist"])
            .ok()
            .stdout,
    )
    .unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), history.len());
    assert_eq!(rows[0]["id"], id.as_str());
    let with_layer: Vec<&Value> = rows.iter().filter(|r| !r["layer"].is_null()).collect();
    assert_eq!(with_layer.len(), layers.len());
    // Newest first: the COPY's layer is the manifest's last.
    assert_eq!(with_layer[0]["layer"], layers[2]["digest"]);
    assert_eq!(with_layer[0]["size"], layers[2]["size"]);
    assert_eq!(rows[2]["created_by"], "ENV GREETING=hello");
    assert_eq!(rows[2]["empty_layer"], true);
}

#[test]
fn completions_and_man_page() {
    let t = Tmp::new("store-completion");
    let root = t.join("root");
    for shell in ["bash", "zsh", "fish"] {
        let out = kiln_bare(&["completion", shell]).ok().stdout;
        assert!(out.len() > 1000, "{shell}: {out}");
        for sub in ["build", "prune", "history", "inspect", "du"] {
            assert!(out.contains(sub), "{shell} completion lacks {sub}");
        }
        assert!(
            out.contains("keep-storage"),
            "{shell} completion lacks prune's flags"
        );
    }
    let bad = kiln_bare(&["completion", "tcsh"]);
    assert_ne!(bad.code, 0);

    let man = kiln_bare(&["man"]).ok().stdout;
    assert!(man.lines().any(|l| l.starts_with(".TH kiln 1")), "{man}");
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH SUBCOMMANDS"] {
        assert!(man.contains(section), "man page lacks {section}");
    }
    // Roff: every request line starts with a dot and a known macro or request.
    for line in man.lines().filter(|l| l.starts_with('.')) {
        let name = line[1..].split_whitespace().next().unwrap_or("");
        assert!(
            [
                "TH", "SH", "SS", "TP", "PP", "IP", "RS", "RE", "B", "I", "BR", "IR", "br", "ie",
                "el", "ds", "nf", "fi", "sp", "in",
            ]
            .contains(&name),
            "unexpected roff request {line:?}"
        );
    }
    let dir = t.join("man");
    kiln_bare(&["man", "--dir", dir.to_str().unwrap()]).ok();
    for page in ["kiln.1", "kiln-prune.1", "kiln-du.1", "kiln-history.1"] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(text.contains(".TH"), "{page}");
    }
    // `man` is hidden from the help.
    let help = kiln_bare(&["--help"]).ok().stdout;
    assert!(!help.contains("\n  man "), "{help}");
    // Inspecting commands never create a store.
    let du = kiln(&root, &["du"]).failed();
    assert!(du.stderr.contains("no kiln store"), "{}", du.stderr);
    assert!(!root.exists());
}

#[test]
fn prune_refuses_without_a_terminal_or_with_bad_flags() {
    let t = Tmp::new("store-refuse");
    let root = t.join("root");
    std::fs::create_dir_all(&root).unwrap();
    kiln(&root, &["images"]).ok();
    let run = kiln(&root, &["prune"]).failed();
    assert!(run.stderr.contains("-f"), "{}", run.stderr);
    let run = kiln(&root, &["prune", "-f", "--keep-storage", "10XB"]).failed();
    assert!(run.stderr.contains("--keep-storage") && run.stderr.contains("10XB"));
    let run = kiln(&root, &["prune", "-f", "--filter", "label=x"]).failed();
    assert!(run.stderr.contains("until=DURATION"), "{}", run.stderr);
    kiln(&root, &["prune", "-f", "--keep-storage", "1GiB"]).ok();
}

/// A store written before layers were kept as plain tars (`testdata/store-v1`, made by
/// commit db48630's kiln: every layer a gzip blob, in images and in the cache index) is read
/// as it is: its images list and validate, a build of the same context is answered by its
/// cache, a changed build runs on it, and an image built there exports and unpacks.
#[test]
fn a_store_written_before_plain_layers_is_read_and_built_on() {
    let t = Tmp::new("store-v1");
    let root = t.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/store-v1");
    tool(
        "tar",
        &[
            "-xzf",
            fixture.join("store.tar.gz").to_str().unwrap(),
            "-C",
            root.to_str().unwrap(),
        ],
    )
    .ok();
    let listed = kiln(&root, &["images"]).ok().stdout;
    assert!(
        listed.contains("app") && listed.contains("busybox"),
        "{listed}"
    );
    let old = inspect(&root, "app:1");
    // The old store's layers are gzip blobs: what this test is about.
    let layers = old["Manifest"]["layers"].as_array().unwrap();
    let gzip = layers
        .iter()
        .filter(|l| l["mediaType"].as_str().unwrap_or("").ends_with("gzip"))
        .count();
    assert_eq!(gzip, layers.len(), "{old:#}");
    check_readable(&t, &root, &old, "app-1");

    // The same context, elsewhere: every step is answered by the old cache.
    let ctx = t.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    for name in ["Dockerfile", "hello.txt"] {
        std::fs::copy(fixture.join("context").join(name), ctx.join(name)).unwrap();
    }
    let cached = build(&root, &ctx, "app:2");
    assert_eq!(
        cached.counts().1,
        0,
        "nothing should run:\n{}",
        cached.stderr
    );
    assert!(cached.counts().0 >= 2, "{}", cached.stderr);

    // A changed input runs its steps on the old base layers.
    write_files(&ctx, &[("hello.txt", "changed\n")]);
    let changed = build(&root, &ctx, "app:3");
    assert!(changed.counts().1 >= 2, "{}", changed.stderr);
    let oci = t.join("oci");
    kiln(
        &root,
        &[
            "build",
            "-q",
            "-o",
            &format!("type=oci,tar=false,dest={}", oci.display()),
            "-t",
            "app:3",
            ctx.to_str().unwrap(),
        ],
    )
    .ok();
    let rootfs = common::tree::unpack(&oci, "3", &t.join("bundle"), 0).rootfs;
    let built = std::fs::read_to_string(rootfs.join("built.txt")).unwrap();
    assert_eq!(built, "built\nchanged\n");
    assert!(rootfs.join("bin/busybox").exists());
    check_readable(&t, &root, &inspect(&root, "app:3"), "app-3");
    check_du(&root);
}
