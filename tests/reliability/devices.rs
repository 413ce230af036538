//! The sandbox: no RUN reads a host device it made or a layer carries, /dev holds Docker's
//! standard set only, no RUN makes a new namespace, and a fork bomb fails its step, not the
//! machine. In both executors, on busybox and on Debian.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Bench;
use crate::common::layout::Layout;
use crate::common::{Tmp, kiln, tool};
use crate::support::{RUNTIMES, leftovers, note, serial};

/// What the loop device holds: a RUN that prints it has read the host's disk.
const CANARY: &str = "KILN-LOOP-CANARY";

/// A loop device of the host over a file of [`CANARY`]s, detached when dropped.
struct LoopDevice {
    dev: String,
    major: u32,
    minor: u32,
}

impl LoopDevice {
    /// Sets one up, or says why the kernel cannot.
    fn setup(t: &Tmp) -> Result<LoopDevice, String> {
        if !Path::new("/dev/loop-control").exists() {
            return Err("no /dev/loop-control: this kernel has no loop device support".into());
        }
        let backing = t.join("loop-backing");
        std::fs::write(&backing, CANARY.repeat(65536)).unwrap();
        let out = std::process::Command::new("losetup")
            .args(["--find", "--show"])
            .arg(&backing)
            .output()
            .map_err(|e| format!("losetup: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "losetup could not attach a loop device: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let meta = std::fs::metadata(&dev).unwrap();
        let rdev = std::os::unix::fs::MetadataExt::rdev(&meta);
        let device = LoopDevice {
            dev,
            major: rustix::fs::major(rdev),
            minor: rustix::fs::minor(rdev),
        };
        // The probe only means something if the host itself can read it.
        let head = std::fs::read(&device.dev).map_err(|e| format!("{}: {e}", device.dev))?;
        assert!(
            head.starts_with(CANARY.as_bytes()),
            "{} unreadable",
            device.dev
        );
        Ok(device)
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = std::process::Command::new("losetup")
            .args(["-d", &self.dev])
            .output();
    }
}

/// A shell loop making block device `major:minor` in the rootfs, /tmp and /dev and reading it.
fn block_probe(major: u32, minor: u32) -> String {
    format!(
        "for p in /lb /tmp/lb /dev/lb; do \
           mknod $p b {major} {minor} 2>/dev/null || echo \"probe: mknod $p refused\"; \
           if head -c 16 $p 2>/dev/null | grep -q {CANARY}; then echo \"probe: READ $p\"; \
           else echo \"probe: denied $p\"; fi; \
         done"
    )
}

/// Lists /dev's device nodes as `probe: dev <b|c> <major hex>:<minor hex> <path>`, and uses
/// the standard ones.
const DEVICE_LIST: &str = "for d in $(find /dev -type c -o -type b); do \
       if [ -b $d ]; then k=b; else k=c; fi; \
       echo \"probe: dev $k $(stat -c '%t:%T' $d) $d\"; \
     done; \
     echo x > /dev/null && echo \"probe: zero=$(head -c 3 /dev/zero | od -An -tx1 | tr -d ' ')\" \
     && echo \"probe: urandom=$(head -c 8 /dev/urandom | wc -c)\"";

/// Tries each namespace `unshare(1)` can make.
const NAMESPACES: &str = "for f in -U -m -n -p -i -u; do \
       if unshare $f true 2>/dev/null; then echo \"probe: unshare $f ALLOWED\"; \
       else echo \"probe: unshare $f refused\"; fi; \
     done";

/// The `probe: ` lines a step printed, without the step prefix (`#3 probe: …`; not the step's
/// title, which quotes the command).
fn probe_lines(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.split_once("probe: "))
        .filter(|(prefix, _)| !prefix.contains("RUN"))
        .map(|(_, rest)| rest.trim().to_owned())
        .collect()
}

/// Char devices a step may have, as `stat -c %t:%T` prints them: null, zero, full, random,
/// urandom, tty, console, ptmx, and the pts (major 136).
fn allowed_device(major_minor: &str) -> bool {
    const STANDARD: [&str; 8] = ["1:3", "1:5", "1:7", "1:8", "1:9", "5:0", "5:1", "5:2"];
    STANDARD.contains(&major_minor) || major_minor.starts_with("88:")
}

/// Runs the block-device, device-list and namespace probes on `base` under every runtime;
/// the failures, each naming its runtime.
fn sandbox_probes(
    bench: &Bench,
    base: &str,
    device: Option<&LoopDevice>,
    label: &str,
) -> Vec<String> {
    let mut failures = Vec::new();
    let mut runs = vec![format!("RUN {DEVICE_LIST}"), format!("RUN {NAMESPACES}")];
    if let Some(d) = device {
        runs.push(format!("RUN {}", block_probe(d.major, d.minor)));
    }
    let dockerfile = format!("FROM {base}\n{}\n", runs.join("\n"));
    for runtime in RUNTIMES {
        let ctx = bench.context(&format!("probe-{label}-{runtime}"), &dockerfile, &[]);
        let run = bench.build(&ctx, runtime, &["--no-cache"]);
        if run.code != 0 {
            failures.push(format!("{label}/{runtime}: build failed:\n{}", run.stderr));
            continue;
        }
        let lines = probe_lines(&run.stderr);
        let mut devices = 0;
        for line in &lines {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                ["dev", "b", mm, path] => {
                    failures.push(format!(
                        "{label}/{runtime}: block device {path} ({mm}) in /dev"
                    ));
                }
                ["dev", "c", mm, path] => {
                    devices += 1;
                    if !allowed_device(mm) {
                        failures.push(format!("{label}/{runtime}: {path} ({mm}) is not standard"));
                    }
                }
                ["READ", path] => failures.push(format!(
                    "{label}/{runtime}: read the host's loop device through {path}"
                )),
                ["unshare", flag, "ALLOWED"] => failures.push(format!(
                    "{label}/{runtime}: unshare {flag} succeeded inside RUN"
                )),
                _ => {}
            }
        }
        let expect = |what: &str, failures: &mut Vec<String>| {
            if !lines.iter().any(|l| l == what) {
                failures.push(format!(
                    "{label}/{runtime}: no `{what}` in:\n{}",
                    lines.join("\n")
                ));
            }
        };
        expect("zero=000000", &mut failures);
        expect("urandom=8", &mut failures);
        for flag in ["-U", "-m", "-n", "-p", "-i", "-u"] {
            expect(&format!("unshare {flag} refused"), &mut failures);
        }
        if device.is_some() {
            for p in ["/lb", "/tmp/lb", "/dev/lb"] {
                expect(&format!("denied {p}"), &mut failures);
            }
        }
        if devices < 6 {
            failures.push(format!(
                "{label}/{runtime}: only {devices} devices:\n{}",
                lines.join("\n")
            ));
        }
    }
    failures
}

#[test]
fn busybox_steps_cannot_reach_devices_or_make_namespaces() {
    let _serial = serial();
    let bench = Bench::new("rel-devices");
    let device = match LoopDevice::setup(&bench.t) {
        Ok(d) => Some(d),
        Err(why) => {
            note(&format!("block-device read probe SKIPPED: {why}"));
            None
        }
    };
    let failures = sandbox_probes(&bench, "busybox", device.as_ref(), "busybox");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_device_node_a_layer_carries_is_unreadable() {
    let _serial = serial();
    let t = Tmp::new("rel-layer-device");
    let device = match LoopDevice::setup(&t) {
        Ok(d) => d,
        Err(why) => {
            note(&format!("layer device probe SKIPPED: {why}"));
            return;
        }
    };
    // A busybox rootfs with the host's loop device in it, archived by GNU tar.
    let ctx = t.join("base");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/busybox/make-context.sh");
    tool("bash", &[script.to_str().unwrap(), ctx.to_str().unwrap()]).ok();
    let rootfs = ctx.join("rootfs");
    let node = format!("{}/lbdev", rootfs.display());
    let (major, minor) = (device.major.to_string(), device.minor.to_string());
    tool("mknod", &["-m", "666", &node, "b", &major, &minor]).ok();
    let tar = t.join("layer.tar");
    tool(
        "tar",
        &[
            "--numeric-owner",
            "-C",
            rootfs.to_str().unwrap(),
            "-cf",
            tar.to_str().unwrap(),
            ".",
        ],
    )
    .ok();
    let layout = Layout::new(&t.join("layout"));
    let layer = layout.layer(&std::fs::read(&tar).unwrap());
    let config = serde_json::json!({
        "architecture": host_arch(),
        "os": "linux",
        "config": {"Env": ["PATH=/bin"]},
    });
    let manifest = layout.image(&[layer], config);
    layout.tag(&[("latest", manifest)]);

    let root = t.join("root");
    let mut failures = Vec::new();
    for runtime in RUNTIMES {
        let dockerfile = format!(
            "FROM oci-layout://{}:latest\n\
             RUN if head -c 16 /lbdev 2>/dev/null | grep -q {CANARY}; then echo 'probe: READ /lbdev'; \
                 else echo 'probe: denied /lbdev'; fi\n",
            layout.dir.display()
        );
        let dir = t.join(&format!("ctx-{runtime}"));
        crate::common::write_files(&dir, &[("Dockerfile", &dockerfile)]);
        let run = kiln(
            &root,
            &[
                "build",
                "--no-cache",
                "--progress",
                "plain",
                "--runtime",
                runtime,
                dir.to_str().unwrap(),
            ],
        );
        let lines = probe_lines(&run.stderr);
        if run.code != 0 || lines != ["denied /lbdev"] {
            failures.push(format!("{runtime}: {lines:?}\n{}", run.stderr));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn debian_steps_cannot_reach_devices_or_make_namespaces() {
    let _serial = serial();
    let bench = Bench::new("rel-debian");
    let debian = bench.t.join("debian");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/debian/make-debian.py");
    tool(
        "python3",
        &[script.to_str().unwrap(), debian.to_str().unwrap()],
    )
    .ok();
    let layout: PathBuf = debian.join("layouts/debian-gotar");
    let device = match LoopDevice::setup(&bench.t) {
        Ok(d) => Some(d),
        Err(why) => {
            note(&format!("block-device read probe on Debian SKIPPED: {why}"));
            None
        }
    };
    let base = format!("oci-layout://{}:latest", layout.display());
    let failures = sandbox_probes(&bench, &base, device.as_ref(), "debian");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_fork_bomb_fails_its_step_not_the_machine() {
    let _serial = serial();
    let bench = Bench::new("rel-forkbomb");
    let mut failures = Vec::new();
    for runtime in RUNTIMES {
        let ctx = bench.context(
            &format!("bomb-{runtime}"),
            "FROM busybox\nRUN bomb() { bomb | bomb & }; bomb; sleep 60\n",
            &[],
        );
        let started = Instant::now();
        let run = bench.build(&ctx, runtime, &["-t", "bombed"]);
        let took = started.elapsed();
        if run.code == 0 || !run.stderr.contains("4096 processes") {
            failures.push(format!(
                "{runtime}: code {}, stderr:\n{}",
                run.code, run.stderr
            ));
        }
        if took > Duration::from_secs(50) {
            failures.push(format!(
                "{runtime}: the step ran {took:?} before it was stopped"
            ));
        }
        let left = leftovers(&bench.root);
        if !left.is_empty() {
            failures.push(format!("{runtime}: left behind: {left:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The OCI name of this machine's architecture.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}
