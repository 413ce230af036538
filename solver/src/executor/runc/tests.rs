//! Tests of the runc executor. Those that run containers need root, Debian's `runc` in `PATH`
//! and a static `/bin/busybox` (as in `.ci/run`); each builds a tiny busybox lower layer in a
//! temp dir of its own and removes it afterwards.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use oci_spec::runtime::Spec;
use serde_json::{Value, json};

use super::Runc;
use super::bundle::Bundle;
use super::config::{self, BundleFiles};
use super::process::classify;
use super::watchdog::Watchdog;
use crate::executor::{ExecError, ExecSpec, Executor, ExitStatus, MountSpec, Network, OutputSink};

/// The busybox applets the scripts below use (ash builtins need no link).
const APPLETS: &[&str] = &[
    "sh", "cat", "ls", "rm", "touch", "grep", "id", "hostname", "sleep", "true", "mkdir", "wc",
    "pwd",
];

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A temp dir with a busybox lower layer, an empty upperdir and workdir, and a bundle root.
struct Fixture {
    base: PathBuf,
    lower: PathBuf,
    upper: PathBuf,
    work: PathBuf,
    bundles: PathBuf,
}

impl Fixture {
    fn new(name: &str) -> Self {
        let base = std::env::temp_dir().join(format!(
            "kiln-runc-test-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let lower = base.join("lower");
        let f = Fixture {
            lower: lower.clone(),
            upper: base.join("upper"),
            work: base.join("work"),
            bundles: base.join("bundles"),
            base,
        };
        fs::create_dir_all(lower.join("bin")).unwrap();
        fs::create_dir_all(lower.join("data")).unwrap();
        fs::create_dir(&f.upper).unwrap();
        fs::create_dir(&f.work).unwrap();
        fs::copy("/bin/busybox", lower.join("bin/busybox")).unwrap();
        for applet in APPLETS {
            symlink("busybox", lower.join("bin").join(applet)).unwrap();
        }
        fs::write(lower.join("data/file"), "from the lower layer\n").unwrap();
        f
    }

    fn runc(&self) -> Runc {
        Runc::default().with_bundle_root(&self.bundles)
    }

    /// A root step running `script` with `sh -c` on the busybox layer.
    fn spec(&self, script: &str) -> ExecSpec {
        ExecSpec {
            lowerdirs: vec![self.lower.clone()],
            upperdir: self.upper.clone(),
            workdir: self.work.clone(),
            args: vec!["sh".into(), "-c".into(), script.into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            hostname: "kiln-test".into(),
            network: Network::None,
            mounts: vec![],
        }
    }

    /// Runs `spec` and returns its status and output.
    fn run(&self, spec: &ExecSpec) -> (ExitStatus, Capture) {
        let sink = Capture::default();
        let status = self.runc().run(spec, &sink).unwrap();
        self.assert_clean();
        (status, sink)
    }

    /// Nothing of a finished run is left on disk or mounted, in any mount namespace.
    fn assert_clean(&self) {
        let left: Vec<_> = fs::read_dir(&self.bundles)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "bundles left behind: {left:?}");
        let base = self.base.to_string_lossy().into_owned();
        for entry in fs::read_dir("/proc").unwrap().flatten() {
            if let Ok(mounts) = fs::read_to_string(entry.path().join("mountinfo")) {
                assert!(
                    !mounts.contains(&base),
                    "{} still has a mount under {base}",
                    entry.path().display()
                );
            }
        }
    }

    /// The upperdir's entries, as relative paths.
    fn diff(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut todo = vec![self.upper.clone()];
        while let Some(dir) = todo.pop() {
            for e in fs::read_dir(&dir).unwrap() {
                let e = e.unwrap();
                let rel = e.path().strip_prefix(&self.upper).unwrap().to_owned();
                if e.file_type().unwrap().is_dir() {
                    todo.push(e.path());
                }
                out.insert(rel.to_string_lossy().into_owned());
            }
        }
        out
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.base);
    }
}

/// Keeps every chunk with the time it arrived.
#[derive(Default)]
struct Capture {
    chunks: Mutex<Vec<(u8, Vec<u8>, Instant)>>,
}

impl OutputSink for Capture {
    fn write(&self, stream: u8, data: &[u8]) {
        self.chunks
            .lock()
            .unwrap()
            .push((stream, data.to_vec(), Instant::now()));
    }
}

impl Capture {
    fn text(&self, stream: u8) -> String {
        let chunks = self.chunks.lock().unwrap();
        let bytes: Vec<u8> = chunks
            .iter()
            .filter(|(s, _, _)| *s == stream)
            .flat_map(|(_, d, _)| d.clone())
            .collect();
        String::from_utf8(bytes).unwrap()
    }

    fn stdout(&self) -> String {
        self.text(1)
    }

    fn stderr(&self) -> String {
        self.text(2)
    }

    /// When the chunk containing `needle` arrived.
    fn arrival(&self, needle: &str) -> Instant {
        let chunks = self.chunks.lock().unwrap();
        chunks
            .iter()
            .find(|(_, d, _)| String::from_utf8_lossy(d).contains(needle))
            .map(|(_, _, t)| *t)
            .unwrap()
    }
}

/// The value of `key:` in `/proc/self/status`-style output.
fn field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key} in {out}"))
}

#[test]
fn streams_output_and_returns_the_exit_code() {
    let f = Fixture::new("stream");
    let spec = f.spec("echo first; sleep 1; echo second; echo oops >&2; exit 7");
    let (status, out) = f.run(&spec);
    assert_eq!(status, ExitStatus::Code(7));
    assert_eq!(out.stdout(), "first\nsecond\n");
    assert_eq!(out.stderr(), "oops\n");
    let gap = out.arrival("second") - out.arrival("first");
    assert!(
        gap >= Duration::from_millis(800),
        "output was buffered: {gap:?}"
    );
}

#[test]
fn writes_land_in_the_upperdir_and_rm_leaves_a_whiteout() {
    let f = Fixture::new("diff");
    let spec = f.spec("mkdir /out && echo hi > /out/f && rm /data/file");
    let (status, out) = f.run(&spec);
    assert_eq!(status, ExitStatus::Code(0), "{}", out.stderr());
    assert_eq!(fs::read_to_string(f.upper.join("out/f")).unwrap(), "hi\n");
    let wh = fs::symlink_metadata(f.upper.join("data/file")).unwrap();
    assert!(wh.file_type().is_char_device());
    assert_eq!((wh.rdev(), wh.uid(), wh.gid()), (0, 0, 0));
    assert!(
        f.lower.join("data/file").exists(),
        "the lower layer was modified"
    );
    // No mount point litter: /proc, /dev, /sys, /etc/hosts came from the stub layer.
    let diff = f.diff();
    let expected: BTreeSet<String> = ["out", "out/f", "data", "data/file"]
        .map(String::from)
        .into();
    assert_eq!(diff, expected);
}

#[test]
fn an_idle_step_leaves_an_empty_diff() {
    let f = Fixture::new("idle");
    let mut spec = f.spec("true");
    spec.network = Network::Host;
    let (status, _) = f.run(&spec);
    assert_eq!(status, ExitStatus::Code(0));
    assert!(f.diff().is_empty(), "{:?}", f.diff());
}

/// The interface names in a `/proc/net/dev`.
fn interfaces(net_dev: &str) -> BTreeSet<String> {
    net_dev
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(name, _)| name.trim().to_owned())
        .collect()
}

#[test]
fn mount_points_runc_had_to_create_leave_the_diff() {
    let f = Fixture::new("hidden");
    // A layer that deleted /etc/hosts hides the stub layer's: runc creates the mount point in
    // the upperdir, and the cleanup takes it out again.
    let top = f.base.join("top");
    fs::create_dir_all(top.join("etc")).unwrap();
    nix::sys::stat::mknod(
        &top.join("etc/hosts"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .unwrap();
    let mut spec = f.spec("cat /etc/hosts");
    spec.lowerdirs.insert(0, top);
    let (status, out) = f.run(&spec);
    assert_eq!(status, ExitStatus::Code(0), "{}", out.stderr());
    assert!(
        out.stdout().contains("localhost kiln-test"),
        "{}",
        out.stdout()
    );
    assert!(!f.upper.join("etc/hosts").exists(), "{:?}", f.diff());
}

#[test]
fn isolation_matches_the_sandbox() {
    let f = Fixture::new("isolation");
    // A masked /proc file this kernel has and shows to the host.
    let masked = ["/proc/timer_list", "/proc/keys", "/proc/sched_debug"]
        .into_iter()
        .find(|p| fs::read(p).is_ok_and(|c| !c.is_empty()))
        .unwrap();
    let spec = f.spec(&format!(
        "hostname; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; \
         echo \"masked: $(wc -c < {masked})\"; cat /etc/hosts; echo ---; cat /proc/net/dev"
    ));
    let (status, out) = f.run(&spec);
    assert_eq!(status, ExitStatus::Code(0), "{}", out.stderr());
    let text = out.stdout();
    let (head, net_dev) = text.split_once("---\n").unwrap();
    assert_eq!(head.lines().next(), Some("kiln-test"));
    assert_eq!(interfaces(net_dev), BTreeSet::from(["lo".to_owned()]));
    assert_eq!(field(head, "CapEff"), "00000000a80425fb");
    assert_eq!(field(head, "NoNewPrivs"), "1");
    assert_eq!(field(head, "Seccomp"), "2");
    assert_eq!(
        field(head, "masked"),
        "0",
        "{masked} is not masked: {}",
        out.stderr()
    );
    assert!(head.contains("127.0.0.1\tlocalhost kiln-test\n"), "{head}");
}

#[test]
fn host_network_sees_the_host() {
    let f = Fixture::new("hostnet");
    let mut spec = f.spec("cat /proc/net/dev");
    spec.network = Network::Host;
    let (status, out) = f.run(&spec);
    assert_eq!(status, ExitStatus::Code(0), "{}", out.stderr());
    let host = fs::read_to_string("/proc/net/dev").unwrap();
    assert_eq!(interfaces(&out.stdout()), interfaces(&host));
}

#[test]
fn user_groups_and_working_directory_are_applied() {
    let f = Fixture::new("user");
    let mut spec = f.spec("id -u; id -g; id -G; pwd; grep CapEff /proc/self/status");
    spec.uid = 1000;
    spec.gid = 1001;
    spec.additional_gids = vec![5, 6];
    spec.cwd = "/work/../made/here".into();
    let (status, out) = f.run(&spec);
    assert_eq!(status, ExitStatus::Code(0), "{}", out.stderr());
    let text = out.stdout();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[..4], ["1000", "1001", "1001 5 6", "/made/here"]);
    assert_eq!(field(&text, "CapEff"), "0000000000000000");
    let made = fs::metadata(f.upper.join("made/here")).unwrap();
    assert_eq!((made.uid(), made.permissions().mode() & 0o7777), (0, 0o755));
}

#[test]
fn the_working_directory_is_made_through_symlinks_inside_the_rootfs() {
    let f = Fixture::new("cwd");
    // Absolute: resolved against the host it would point at the host's /data.
    symlink("/data", f.lower.join("link")).unwrap();
    let mut spec = f.spec("pwd; ls /data");
    spec.cwd = "/link/sub".into();
    let (status, out) = f.run(&spec);
    assert_eq!(status, ExitStatus::Code(0), "{}", out.stderr());
    assert_eq!(out.stdout(), "/data/sub\nfile\nsub\n");
    assert!(f.upper.join("data/sub").is_dir(), "{:?}", f.diff());
}

#[test]
fn bind_and_tmpfs_mounts() {
    let f = Fixture::new("mounts");
    let ro = f.base.join("ro");
    let rw = f.base.join("rw");
    fs::create_dir(&ro).unwrap();
    fs::create_dir(&rw).unwrap();
    fs::write(ro.join("f"), "read me\n").unwrap();
    let mut spec = f.spec(
        "cat /mnt/ro/f; if touch /mnt/ro/x; then echo WROTE; fi; echo w > /mnt/rw/x; \
         grep -E ' /(mnt/ro|tmp) ' /proc/mounts",
    );
    spec.mounts = vec![
        MountSpec::Bind {
            source: ro.clone(),
            target: "/mnt/ro".into(),
            readonly: true,
        },
        MountSpec::Bind {
            source: rw.clone(),
            target: "/mnt/rw".into(),
            readonly: false,
        },
        MountSpec::Tmpfs {
            target: "/tmp".into(),
            size: Some(1 << 20),
        },
    ];
    let (status, out) = f.run(&spec);
    assert_eq!(status, ExitStatus::Code(0), "{}", out.stderr());
    let text = out.stdout();
    assert!(text.starts_with("read me\n"), "{text}");
    assert!(!text.contains("WROTE"), "{text}");
    assert!(
        out.stderr().contains("Read-only file system"),
        "{}",
        out.stderr()
    );
    assert!(!ro.join("x").exists());
    assert_eq!(fs::read_to_string(rw.join("x")).unwrap(), "w\n");
    let line = |target: &str| {
        text.lines()
            .find(|l| l.split(' ').nth(1) == Some(target))
            .unwrap_or_else(|| panic!("{target} not mounted: {text}"))
            .to_owned()
    };
    assert!(line("/mnt/ro").contains(" ro,"), "{text}");
    let tmp = line("/tmp");
    assert!(tmp.starts_with("tmpfs /tmp tmpfs rw,nosuid,nodev"), "{tmp}");
    assert!(tmp.contains("size=1024k"), "{tmp}");
    assert!(
        f.diff().is_empty(),
        "mount points leaked into the diff: {:?}",
        f.diff()
    );
}

#[test]
fn many_long_lowerdirs_fit() {
    let f = Fixture::new("layers");
    // 150 layers named with 100 bytes each: 15 KB of absolute paths, beyond overlay's page.
    let mut lowers = Vec::new();
    for i in 0..150 {
        let dir = f.base.join(format!("layer-{i:03}-{}", "x".repeat(90)));
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join(format!("only-{i}")), "").unwrap();
        fs::write(dir.join("marker"), format!("{i}\n")).unwrap();
        lowers.push(dir);
    }
    lowers.push(f.lower.clone());
    let mut spec = f.spec("cat /marker; ls / | grep -c only-");
    spec.lowerdirs = lowers;
    let (status, out) = f.run(&spec);
    assert_eq!(status, ExitStatus::Code(0), "{}", out.stderr());
    assert_eq!(out.stdout(), "0\n150\n");
}

#[test]
fn a_missing_command_is_a_start_error() {
    let f = Fixture::new("missing");
    let mut spec = f.spec("");
    spec.args = vec!["no-such-command".into()];
    let err = f.runc().run(&spec, &Capture::default()).unwrap_err();
    match &err {
        ExecError::Start { command, message } => {
            assert_eq!(command, "no-such-command");
            assert!(message.contains("not found"), "{message}");
        }
        other => panic!("expected a start error, got {other:?}"),
    }
    f.assert_clean();
    assert!(f.diff().is_empty(), "{:?}", f.diff());
}

#[test]
fn a_missing_runtime_is_a_runtime_error() {
    let f = Fixture::new("noruntime");
    let runc = Runc::new("/nonexistent/runc").with_bundle_root(&f.bundles);
    let err = runc.run(&f.spec("true"), &Capture::default()).unwrap_err();
    assert!(
        matches!(&err, ExecError::Runtime { runtime, message }
            if runtime == "/nonexistent/runc" && message.contains("not found")),
        "{err:?}"
    );
    f.assert_clean();
}

#[test]
fn the_watchdog_cleans_up_when_kiln_dies() {
    let f = Fixture::new("watchdog");
    let bundle = Bundle::create(&f.bundles, &f.spec("true")).unwrap();
    // A stand-in runtime that records how it was called.
    let calls = f.base.join("calls");
    let fake = f.base.join("fake-runc");
    fs::write(
        &fake,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", calls.display()),
    )
    .unwrap();
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    let dog = Watchdog::arm(&fake, &bundle).unwrap();
    dog.abandon();
    assert_eq!(
        fs::read_to_string(&calls).unwrap(),
        format!(
            "--root {} delete --force {}\n",
            bundle.state().display(),
            bundle.id()
        )
    );
    assert!(!bundle.dir().exists());
    // Stood down normally, it does nothing.
    let bundle = Bundle::create(&f.bundles, &f.spec("true")).unwrap();
    drop(Watchdog::arm(&fake, &bundle));
    assert!(bundle.dir().exists());
    bundle.remove().unwrap();
}

/// Set for the child process of `cancelling_the_build_kills_the_step`.
const CANCEL_CHILD: &str = "KILN_RUNC_TEST_CANCELLED_RUN";

#[test]
fn cancelling_the_build_kills_the_step() {
    // crate::cancel is process-wide: cancelling here would kill every other test's step, so
    // the cancelled run happens in a process of its own: this test binary, running only this
    // test, which then takes the child's part.
    if std::env::var_os(CANCEL_CHILD).is_some() {
        cancelled_run();
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "executor::runc::tests::cancelling_the_build_kills_the_step",
            "--nocapture",
        ])
        .env(CANCEL_CHILD, "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The child's part of `cancelling_the_build_kills_the_step`.
fn cancelled_run() {
    let f = Fixture::new("cancel");
    let spec = f.spec("echo started; sleep 30; echo finished");
    let sink = Capture::default();
    let start = Instant::now();
    let status = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(500));
            crate::cancel::cancel();
        });
        f.runc().run(&spec, &sink)
    });
    assert_eq!(status.unwrap(), ExitStatus::Signal(9));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(sink.stdout(), "started\n");
    f.assert_clean();
}

#[test]
fn runc_statuses_are_classified() {
    let runtime = Path::new("runc");
    let exited = |code: i32| std::process::ExitStatus::from_raw(code << 8);
    assert_eq!(
        classify(exited(0), "", "sh", runtime).unwrap(),
        ExitStatus::Code(0)
    );
    assert_eq!(
        classify(exited(1), "", "sh", runtime).unwrap(),
        ExitStatus::Code(1)
    );
    assert_eq!(
        classify(exited(137), "", "sh", runtime).unwrap(),
        ExitStatus::Signal(9)
    );
    let warning = r#"{"level":"warning","msg":"unknown syscall","time":"t"}"#;
    assert_eq!(
        classify(exited(2), warning, "sh", runtime).unwrap(),
        ExitStatus::Code(2)
    );
    let failed = r#"{"level":"error","msg":"runc run failed: cgroup busy","time":"t"}"#;
    assert!(matches!(
        classify(exited(1), failed, "sh", runtime),
        Err(ExecError::Runtime { message, .. }) if message == "runc run failed: cgroup busy"
    ));
    assert!(matches!(
        classify(std::process::ExitStatus::from_raw(9), "", "sh", runtime),
        Err(ExecError::Runtime { message, .. }) if message == "killed by signal 9"
    ));
}

#[test]
fn median_of_ten_true_runs() {
    let f = Fixture::new("timing");
    let runc = f.runc();
    let spec = {
        let mut s = f.spec("");
        s.args = vec!["true".into()];
        s
    };
    let mut times: Vec<Duration> = (0..10)
        .map(|_| {
            let start = Instant::now();
            let status = runc.run(&spec, &Capture::default()).unwrap();
            assert_eq!(status, ExitStatus::Code(0));
            start.elapsed()
        })
        .collect();
    times.sort();
    eprintln!("runc executor: median of 10 `true` runs: {:?}", times[5]);
    f.assert_clean();
}

#[test]
fn config_json_for_a_spec() {
    let spec = ExecSpec {
        lowerdirs: vec!["/l/1".into(), "/l/0".into()],
        upperdir: "/u".into(),
        workdir: "/w".into(),
        args: vec!["sh".into(), "-c".into(), "make".into()],
        env: vec!["PATH=/usr/bin:/bin".into(), "A=b".into()],
        cwd: "src/../app".into(),
        uid: 1000,
        gid: 1001,
        additional_gids: vec![5],
        hostname: "builder".into(),
        network: Network::None,
        mounts: vec![
            MountSpec::Bind {
                source: "/host/ctx".into(),
                target: "/ctx".into(),
                readonly: true,
            },
            MountSpec::Tmpfs {
                target: "/tmp".into(),
                size: Some(1 << 20),
            },
        ],
    };
    let files = BundleFiles {
        hosts: Path::new("/b/hosts"),
        resolv_conf: Path::new("/b/resolv.conf"),
    };
    let generated = config::runtime_spec(&spec, files, "/kiln/step").unwrap();
    let v = serde_json::to_value(&generated).unwrap();

    assert_eq!(v["ociVersion"], "1.0.2");
    assert_eq!(v["root"], json!({"path": "rootfs", "readonly": false}));
    assert_eq!(v["hostname"], "builder");
    assert!(v.get("annotations").is_none());

    let p = &v["process"];
    assert_eq!(p["terminal"], false);
    assert_eq!(p["args"], json!(["sh", "-c", "make"]));
    assert_eq!(p["env"], json!(["PATH=/usr/bin:/bin", "A=b"]));
    assert_eq!(p["cwd"], "/app");
    assert_eq!(
        p["user"],
        json!({"uid": 1000, "gid": 1001, "umask": 18, "additionalGids": [5]})
    );
    assert_eq!(p["noNewPrivileges"], true);
    assert!(p.get("rlimits").is_none(), "rlimits must be inherited");
    let docker: BTreeSet<&str> = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ]
    .into();
    let set = |name: &str| -> BTreeSet<&str> {
        p["capabilities"][name]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect()
    };
    for name in ["bounding", "effective", "permitted"] {
        assert_eq!(set(name), docker, "{name}");
    }
    assert!(set("inheritable").is_empty());
    assert!(p["capabilities"].get("ambient").is_none());

    let l = &v["linux"];
    let namespaces: Vec<&str> = l["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert_eq!(namespaces, ["pid", "ipc", "uts", "mount", "network"]);
    assert_eq!(
        l["maskedPaths"],
        json!([
            "/proc/acpi",
            "/proc/asound",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/sys/firmware",
            "/proc/scsi"
        ])
    );
    assert_eq!(
        l["readonlyPaths"],
        json!([
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger"
        ])
    );
    assert_eq!(
        l["resources"],
        json!({"devices": [{"allow": false, "access": "rwm"}],
               "pids": {"limit": crate::executor::cgroup::PIDS_LIMIT}})
    );
    assert_eq!(l["cgroupsPath"], "/kiln/step");
    // The sandbox's policy: the denied syscalls, then clone3 → ENOSYS, then per-flag rules for
    // clone and unshare, personality and AF_VSOCK.
    let seccomp = &l["seccomp"];
    assert_eq!(seccomp["defaultAction"], "SCMP_ACT_ALLOW");
    let rules = seccomp["syscalls"].as_array().unwrap();
    let names: Vec<&str> = rules[0]["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    let policy: Vec<&str> = crate::executor::seccomp_policy::always_denied()
        .iter()
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(names, policy);
    assert!(names.contains(&"mount") && names.contains(&"setns") && names.contains(&"bpf"));
    assert_eq!(
        rules[1],
        json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38})
    );
    let newuser = nix::libc::CLONE_NEWUSER as u64;
    for syscall in ["clone", "unshare"] {
        assert!(
            rules.iter().any(|r| r["names"] == json!([syscall])
                && r["args"]
                    == json!([{"index": 0, "value": newuser, "valueTwo": newuser,
                                         "op": "SCMP_CMP_MASKED_EQ"}])),
            "{syscall}"
        );
    }
    assert_eq!(
        rules
            .iter()
            .filter(|r| r["names"] == json!(["personality"]))
            .count(),
        31
    );

    let mounts = v["mounts"].as_array().unwrap();
    let destinations: Vec<&str> = mounts
        .iter()
        .map(|m| m["destination"].as_str().unwrap())
        .collect();
    assert_eq!(
        destinations,
        [
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
            "/etc/hosts",
            "/etc/resolv.conf",
            "/ctx",
            "/tmp"
        ]
    );
    assert_eq!(
        mounts[5],
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]})
    );
    assert_eq!(
        mounts[6],
        json!({"destination": "/etc/hosts", "type": "bind", "source": "/b/hosts",
               "options": ["bind", "ro", "nodev"]})
    );
    assert_eq!(
        mounts[8],
        json!({"destination": "/ctx", "type": "bind", "source": "/host/ctx",
               "options": ["rbind", "ro", "nodev"]})
    );
    assert_eq!(
        mounts[9],
        json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "nodev", "size=1048576"]})
    );

    // What runc reads back is what was generated.
    let parsed: Spec = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(parsed, generated);

    // Host networking: no network namespace; no hostname: no hostname key.
    let mut host = spec.clone();
    host.network = Network::Host;
    host.hostname = String::new();
    let v: Value =
        serde_json::to_value(config::runtime_spec(&host, files, "/kiln/step").unwrap()).unwrap();
    assert!(v.get("hostname").is_none());
    assert!(
        !v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "network")
    );
}
