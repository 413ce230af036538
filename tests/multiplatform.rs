//! Multi-platform builds end to end: `--platform linux/amd64,linux/arm64` over a two-platform
//! base that umoci wrote and skopeo pushed to a real registry (`fixtures/multiarch`), the
//! arm64 RUN steps through QEMU user mode (Debian's qemu-user-static, `bash .ci/setup`). What
//! kiln wrote is read back by the other tools: skopeo (the pushed index, `copy --all`), umoci
//! (each platform unpacked) and `file` (the architecture of the binaries).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;

use common::registry::Registry;
use common::{Run, Tmp, kiln, tool, write_files};
use serde_json::Value;

/// A registry serving a two-platform base.
struct Base {
    registry: Registry,
    reference: String,
}

/// `bb-multi:1`, the two-platform busybox base.
fn two_platform_base(work: &Tmp) -> Base {
    published_base(work, &[], "bb-multi:1")
}

/// `fixtures/multiarch/make-multiarch.py FLAGS`, pushed by skopeo as `name`.
fn published_base(work: &Tmp, flags: &[&str], name: &str) -> Base {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/multiarch/make-multiarch.py");
    let out = work.join("fixture");
    let made = Command::new("python3")
        .arg(&script)
        .args(flags)
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "make-multiarch.py: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let registry = Registry::start();
    let reference = format!("{}/{name}", registry.addr());
    let layout = format!("oci:{}:latest", out.join("layout").display());
    let copied = tool(
        "skopeo",
        &[
            "copy",
            "--all",
            "--dest-tls-verify=false",
            &layout,
            &format!("docker://{reference}"),
        ],
    );
    assert_eq!(copied.code, 0, "skopeo copy: {}", copied.stderr);
    Base {
        registry,
        reference,
    }
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

/// A blob of an OCI layout, as JSON.
fn layout_blob(layout: &Path, digest: &str) -> Value {
    let (algo, hex) = digest.split_once(':').unwrap();
    read_json(&layout.join("blobs").join(algo).join(hex))
}

/// The platforms an index lists, as `os/arch`.
fn platforms_of(index: &Value) -> Vec<String> {
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect()
}

/// One platform of an OCI layout's multi-platform image, picked by skopeo into a layout of
/// its own and unpacked by umoci; returns the rootfs.
fn unpack_platform(work: &Tmp, layout: &Path, tag: &str, arch: &str) -> std::path::PathBuf {
    let single = work.join(&format!("single-{arch}"));
    let bundle = work.join(&format!("bundle-{arch}"));
    let copied = tool(
        "skopeo",
        &[
            "copy",
            "--override-arch",
            arch,
            &format!("oci:{}:{tag}", layout.display()),
            &format!("oci:{}:x", single.display()),
        ],
    );
    assert_eq!(copied.code, 0, "skopeo copy {arch}: {}", copied.stderr);
    let unpacked = tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:x", single.display()),
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(unpacked.code, 0, "umoci unpack {arch}: {}", unpacked.stderr);
    bundle.join("rootfs")
}

fn file_type(path: &Path) -> String {
    tool("file", &["-b", path.to_str().unwrap()]).stdout
}

/// A two-platform build of `ctx` to `output` (an `-o` value).
fn build_both(root: &Path, output: &str, ctx: &Path) {
    kiln(
        root,
        &[
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "-o",
            output,
            ctx.to_str().unwrap(),
        ],
    )
    .ok();
}

/// The events of a `--progress rawjson` run.
fn rawjson_events(run: &Run) -> Vec<Value> {
    run.stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn steps_named<'a>(run: &'a Run, needle: &str) -> Vec<&'a str> {
    run.stderr
        .lines()
        .filter(|l| l.contains(needle))
        .collect::<Vec<_>>()
}

#[test]
fn two_platform_image_from_a_two_platform_base() {
    let work = Tmp::new("multiplatform");
    let base = two_platform_base(&work);
    let root = work.join("root");
    let ctx = work.join("ctx");
    write_files(
        &ctx,
        &[
            (
                "Dockerfile",
                &format!(
                    "FROM {}\nRUN uname -m > /arch\nCOPY input.txt /input.txt\n\
                     RUN cat /input.txt /arch > /combined\n",
                    base.reference
                ),
            ),
            ("input.txt", "one\n"),
        ],
    );
    let pushed = format!("{}/app:1", base.registry.addr());
    let out = work.join("oci");
    let build = |extra: &[&str]| {
        let mut args = vec![
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "-t",
            &pushed,
            "--progress",
            "plain",
        ];
        args.extend_from_slice(extra);
        args.push(ctx.to_str().unwrap());
        kiln(&root, &args).ok()
    };
    let first = build(&[
        "--push",
        "-o",
        &format!("type=oci,dest={},tar=false", out.display()),
    ]);
    // The step names say which platform each is for, as BuildKit's do.
    assert!(
        !steps_named(&first, "[linux/arm64 stage-0 2/4] RUN uname -m").is_empty(),
        "{}",
        first.stderr
    );

    // The OCI layout names one index, which lists both platforms.
    let top = read_json(&out.join("index.json"));
    let entry = &top["manifests"][0];
    assert_eq!(
        entry["mediaType"], "application/vnd.oci.image.index.v1+json",
        "{top}"
    );
    let index = layout_blob(&out, entry["digest"].as_str().unwrap());
    assert_eq!(platforms_of(&index), ["linux/amd64", "linux/arm64"]);
    for m in index["manifests"].as_array().unwrap() {
        let manifest = layout_blob(&out, m["digest"].as_str().unwrap());
        let config = layout_blob(&out, manifest["config"]["digest"].as_str().unwrap());
        assert_eq!(
            config["architecture"], m["platform"]["architecture"],
            "each config names its own platform"
        );
    }

    // Each platform, unpacked by umoci: the RUN ran as that machine, on its own binaries.
    for (arch, machine, elf) in [
        ("amd64", "x86_64", "x86-64"),
        ("arm64", "aarch64", "ARM aarch64"),
    ] {
        let rootfs = unpack_platform(&work, &out, "1", arch);
        assert_eq!(
            std::fs::read_to_string(rootfs.join("arch")).unwrap().trim(),
            machine
        );
        assert_eq!(
            std::fs::read_to_string(rootfs.join("combined")).unwrap(),
            format!("one\n{machine}\n")
        );
        let kind = file_type(&rootfs.join("bin/busybox"));
        assert!(kind.contains(elf), "{arch}: {kind}");
    }

    // The registry serves the index (manifests pushed first), and skopeo copies all of it.
    let raw = tool(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{pushed}"),
        ],
    );
    assert_eq!(raw.code, 0, "{}", raw.stderr);
    let served: Value = serde_json::from_str(&raw.stdout).unwrap();
    assert_eq!(platforms_of(&served), ["linux/amd64", "linux/arm64"]);
    let all = tool(
        "skopeo",
        &[
            "copy",
            "--all",
            "--src-tls-verify=false",
            &format!("docker://{pushed}"),
            &format!("oci:{}:all", work.join("copied").display()),
        ],
    );
    assert_eq!(all.code, 0, "skopeo copy --all: {}", all.stderr);

    // A pull of both platforms into another store: the name keeps each.
    let pulled_root = work.join("pulled");
    let pulled = kiln(
        &pulled_root,
        &["pull", "--platform", "linux/amd64,linux/arm64", &pushed],
    )
    .ok();
    assert_eq!(pulled.stdout.lines().count(), 2, "{}", pulled.stdout);
    let listed = kiln(&pulled_root, &["images"]).ok().stdout;
    assert!(listed.contains("linux/amd64,linux/arm64"), "{listed}");
    let arm: Value = serde_json::from_str(
        &kiln(
            &pulled_root,
            &["inspect", "--platform", "linux/arm64", &pushed],
        )
        .ok()
        .stdout,
    )
    .unwrap();
    assert_eq!(arm[0]["Config"]["architecture"], "arm64");

    // The store: one name, both platforms; inspect and history pick one.
    let images = kiln(&root, &["images"]).ok().stdout;
    assert!(
        images
            .lines()
            .any(|l| l.contains("/app") && l.ends_with("linux/amd64,linux/arm64")),
        "{images}"
    );
    let inspect = |platform: &str| -> Value {
        let out = kiln(&root, &["inspect", "--platform", platform, &pushed])
            .ok()
            .stdout;
        serde_json::from_str::<Value>(&out).unwrap()[0].clone()
    };
    assert_eq!(inspect("linux/arm64")["Config"]["architecture"], "arm64");
    assert_eq!(inspect("linux/amd64")["Config"]["architecture"], "amd64");
    let history = kiln(
        &root,
        &[
            "history",
            "--platform",
            "linux/arm64",
            "--no-trunc",
            &pushed,
        ],
    )
    .ok()
    .stdout;
    assert!(history.contains("uname -m > /arch"), "{history}");

    // Per-platform cache: everything is cached the second time, on both platforms.
    let again = build(&[]);
    assert_eq!(again.counts().1, 0, "nothing reruns:\n{}", again.stderr);
    // One changed file reruns only the steps that read it, on each platform.
    write_files(&ctx, &[("input.txt", "two\n")]);
    let changed = build(&["--explain-cache"]);
    // --explain-cache compares each platform with its own last build.
    for platform in ["linux/amd64", "linux/arm64"] {
        assert!(
            changed.stderr.contains(&format!(
                "for {platform}\n[{platform} stage-0 3/4] COPY input.txt /input.txt missed"
            )),
            "{}",
            changed.stderr
        );
    }
    let ran: Vec<&str> = changed
        .stderr
        .lines()
        .filter(|l| l.starts_with('#') && l.contains("] "))
        .collect();
    assert_eq!(
        changed.counts().1,
        4,
        "COPY and RUN cat, twice:\n{}",
        changed.stderr
    );
    for platform in ["linux/amd64", "linux/arm64"] {
        let uname = format!("[{platform} stage-0 2/4] RUN uname -m");
        assert!(ran.iter().any(|l| l.contains(&uname)), "{ran:?}");
    }
    let uname_cached = changed
        .stderr
        .split("\n\n")
        .filter(|block| block.contains("RUN uname -m") && block.contains("CACHED"))
        .count();
    assert_eq!(uname_cached, 2, "{}", changed.stderr);

    // The exported cache holds every platform's records: a fresh store that imports it
    // reruns nothing, on either platform.
    let cache = work.join("cache");
    build(&[
        "--cache-to",
        &format!("type=local,dest={},mode=max", cache.display()),
    ]);
    let fresh = kiln(
        &work.join("fresh"),
        &[
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "--progress",
            "plain",
            "--cache-from",
            &format!("type=local,src={}", cache.display()),
            ctx.to_str().unwrap(),
        ],
    )
    .ok();
    assert_eq!(fresh.counts().1, 0, "{}", fresh.stderr);
    assert!(fresh.counts().0 >= 6, "{}", fresh.stderr);
}

#[test]
fn debian_on_both_platforms() {
    // A real distribution for each platform: arm64's dynamically linked dpkg, apt and bash
    // run through QEMU, their loader and libraries the image's own.
    let work = Tmp::new("multiplatform-debian");
    let base = published_base(&work, &["--debian"], "debian-multi:12");
    let root = work.join("root");
    let ctx = work.join("ctx");
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            &format!(
                "FROM {}\n\
                 SHELL [\"/bin/bash\", \"-c\"]\n\
                 RUN dpkg --print-architecture > /arch && useradd -m builder \\\n\
                 \x20 && getent passwd builder | cut -d: -f6 > /home-dir \\\n\
                 \x20 && ls -d /usr/lib/*-linux-gnu > /multiarch\n",
                base.reference
            ),
        )],
    );
    let out = work.join("out");
    build_both(&root, &format!("type=local,dest={}", out.display()), &ctx);
    for (dir, arch, triplet, elf) in [
        ("linux_amd64", "amd64", "x86_64-linux-gnu", "x86-64"),
        ("linux_arm64", "arm64", "aarch64-linux-gnu", "ARM aarch64"),
    ] {
        let read = |p: &str| std::fs::read_to_string(out.join(dir).join(p)).unwrap();
        assert_eq!(read("arch").trim(), arch);
        assert_eq!(read("home-dir").trim(), "/home/builder");
        assert!(read("multiarch").contains(triplet), "{}", read("multiarch"));
        let kind = file_type(&out.join(dir).join("usr/bin/dpkg"));
        assert!(kind.contains(elf), "{dir}: {kind}");
    }
}

#[test]
fn cross_compile_stage_runs_natively_once() {
    let work = Tmp::new("multiplatform-cross");
    let base = two_platform_base(&work);
    let root = work.join("root");
    let ctx = work.join("ctx");
    // The usual cross-compile shape: the builder on the build platform, told the target.
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            &format!(
                "FROM --platform=$BUILDPLATFORM {base} AS build\n\
                 RUN uname -m | tee /built-on\n\
                 ARG TARGETARCH\n\
                 RUN echo \"$TARGETARCH\" > /target\n\
                 FROM {base}\n\
                 COPY --from=build /built-on /target /\n\
                 RUN uname -m > /arch\n",
                base = base.reference
            ),
        )],
    );
    let single = work.join("single");
    let run = kiln(
        &root,
        &[
            "build",
            "--platform",
            "linux/arm64",
            "--progress",
            "rawjson",
            "-t",
            "cross:arm64",
            "-o",
            &format!("type=local,dest={}", single.display()),
            ctx.to_str().unwrap(),
        ],
    )
    .ok();
    let events = rawjson_events(&run);
    let builder_logs: Vec<&str> = events
        .iter()
        .filter(|e| e["status"] == "log" && e["name"].as_str().unwrap_or("").contains("tee"))
        .filter_map(|e| e["line"].as_str())
        .collect();
    assert_eq!(builder_logs, ["x86_64"], "the builder ran natively, once");
    let read = |p: &str| std::fs::read_to_string(single.join(p)).unwrap();
    assert_eq!(read("built-on").trim(), "x86_64");
    assert_eq!(read("target").trim(), "arm64");
    assert_eq!(read("arch").trim(), "aarch64");
    let kind = file_type(&single.join("bin/busybox"));
    assert!(kind.contains("aarch64"), "{kind}");
    let inspected: Value =
        serde_json::from_str(&kiln(&root, &["inspect", "cross:arm64"]).ok().stdout).unwrap();
    assert_eq!(inspected[0]["Config"]["architecture"], "arm64");

    // Both platforms at once: the builder's `uname` step is one step for both (cached for
    // the second); its TARGETARCH step runs per platform. `type=local` writes a directory
    // per platform, as buildx does.
    let root2 = work.join("root2");
    let both = work.join("both");
    let run = kiln(
        &root2,
        &[
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "--progress",
            "rawjson",
            "-o",
            &format!("type=local,dest={}", both.display()),
            ctx.to_str().unwrap(),
        ],
    )
    .ok();
    let events = rawjson_events(&run);
    let tee = |status: &str| {
        events
            .iter()
            .filter(|e| e["status"] == status && e["name"].as_str().unwrap_or("").contains("tee"))
            .count()
    };
    assert_eq!((tee("done"), tee("cached")), (1, 1), "{}", run.stderr);
    for (dir, machine, arch) in [
        ("linux_amd64", "x86_64", "amd64"),
        ("linux_arm64", "aarch64", "arm64"),
    ] {
        let read = |p: &str| std::fs::read_to_string(both.join(dir).join(p)).unwrap();
        assert_eq!(read("built-on").trim(), "x86_64");
        assert_eq!(read("target").trim(), arch);
        assert_eq!(read("arch").trim(), machine);
    }

    // The OCI-runtime executor runs the arm64 steps through the same emulator.
    let runc = work.join("runc");
    kiln(
        &root2,
        &[
            "build",
            "--runtime",
            "runc",
            "--no-cache",
            "--platform",
            "linux/arm64",
            "-o",
            &format!("type=local,dest={}", runc.display()),
            ctx.to_str().unwrap(),
        ],
    )
    .ok();
    assert_eq!(
        std::fs::read_to_string(runc.join("arch")).unwrap().trim(),
        "aarch64"
    );
}

#[test]
fn a_docker_archive_of_two_platforms_is_refused_before_building() {
    let work = Tmp::new("multiplatform-docker");
    let root = work.join("root");
    let ctx = work.join("ctx");
    write_files(&ctx, &[("Dockerfile", "FROM scratch\nCOPY Dockerfile /\n")]);
    let dest = work.join("image.tar");
    let run = kiln(
        &root,
        &[
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "-o",
            &format!("type=docker,dest={}", dest.display()),
            ctx.to_str().unwrap(),
        ],
    )
    .failed();
    assert!(
        run.stderr.contains("docker archive") && run.stderr.contains("type=oci"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("COPY"),
        "refused before the build: {}",
        run.stderr
    );
    assert!(!dest.exists());

    // FROM scratch for two platforms: an index whose configs name each platform (the
    // platform list is no longer read as one platform string).
    let out = work.join("oci");
    kiln(
        &root,
        &[
            "build",
            "--platform",
            "linux/amd64, linux/arm64",
            "-o",
            &format!("type=oci,dest={},tar=false", out.display()),
            ctx.to_str().unwrap(),
        ],
    )
    .ok();
    let top = read_json(&out.join("index.json"));
    let index = layout_blob(&out, top["manifests"][0]["digest"].as_str().unwrap());
    assert_eq!(platforms_of(&index), ["linux/amd64", "linux/arm64"]);
    // With Docker media types, the index is a Docker manifest list.
    let docker_types = work.join("docker-types");
    build_both(
        &root,
        &format!(
            "type=oci,dest={},tar=false,oci-mediatypes=false",
            docker_types.display()
        ),
        &ctx,
    );
    let top = read_json(&docker_types.join("index.json"));
    let list = layout_blob(
        &docker_types,
        top["manifests"][0]["digest"].as_str().unwrap(),
    );
    assert_eq!(
        list["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    assert_eq!(platforms_of(&list), ["linux/amd64", "linux/arm64"]);
    // `type=tar`: one tar, a directory per platform (buildx's platform-split).
    let tar = work.join("fs.tar");
    build_both(&root, &format!("type=tar,dest={}", tar.display()), &ctx);
    let listing = tool("tar", &["-tf", tar.to_str().unwrap()]).stdout;
    for dir in ["linux_amd64", "linux_arm64"] {
        assert!(
            listing
                .lines()
                .any(|l| l.trim_start_matches("./") == format!("{dir}/Dockerfile")),
            "{listing}"
        );
    }

    let bad = kiln(
        &root,
        &["build", "--platform", "linux/amd64,", ctx.to_str().unwrap()],
    )
    .failed();
    assert!(bad.stderr.contains("empty platform"), "{}", bad.stderr);
}
