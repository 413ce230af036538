//! End-to-end tests of the sandbox: real namespaces, overlay and seccomp over a tiny root
//! filesystem holding busybox. They need root (as CI has); without it they say so and pass.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{RootfsMode, Sandbox, SandboxOptions};
use crate::executor::{ExecError, ExecSpec, Executor, ExitStatus, MountSpec, Network, OutputSink};

const BUSYBOX: &str = "/bin/busybox";
const APPLETS: &[&str] = &[
    "sh", "cat", "echo", "ls", "id", "ps", "hostname", "mkdir", "rm", "touch", "unshare", "mount",
    "nsenter", "sleep", "grep", "true", "false", "wc", "pwd", "ln", "chmod", "chown", "mknod",
    "mkfifo", "cut", "tr",
];

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A scratch area under the temp dir: a busybox lower layer, an upper, a work dir, and a
/// private temp root for the sandbox (so leftovers can be checked). Removed on drop.
struct Fixture {
    base: PathBuf,
    lower: PathBuf,
    upper: PathBuf,
    work: PathBuf,
    temp: PathBuf,
}

impl Fixture {
    fn new(name: &str) -> Option<Fixture> {
        // Never skipped: CI runs as root and `.ci/setup` installs busybox-static.
        assert!(
            nix::unistd::geteuid().is_root() && Path::new(BUSYBOX).exists(),
            "sandbox test {name} needs root and {BUSYBOX} (run `bash .ci/setup` as root)"
        );
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let base = std::env::temp_dir().join(format!(
            "kiln-sandbox-test-{name}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&base);
        let f = Fixture {
            lower: base.join("lower"),
            upper: base.join("upper"),
            work: base.join("work"),
            temp: base.join("tmp"),
            base,
        };
        for dir in [&f.lower, &f.upper, &f.work, &f.temp] {
            std::fs::create_dir_all(dir).unwrap();
        }
        let bin = f.lower.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
        for applet in APPLETS {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
        let data = f.lower.join("data");
        std::fs::create_dir_all(data.join("dir/sub")).unwrap();
        std::fs::write(data.join("file"), "lower\n").unwrap();
        std::fs::write(data.join("dir/sub/deep"), "deep\n").unwrap();
        std::fs::write(data.join("dir/other"), "other\n").unwrap();
        std::fs::create_dir_all(data.join("keep")).unwrap();
        std::fs::write(data.join("keep/mod"), "before\n").unwrap();
        std::fs::write(data.join("keep/gone"), "gone\n").unwrap();
        Some(f)
    }

    fn spec(&self, script: &str) -> ExecSpec {
        ExecSpec {
            lowerdirs: vec![self.lower.clone()],
            upperdir: self.upper.clone(),
            workdir: self.work.clone(),
            args: vec!["sh".into(), "-c".into(), script.into()],
            env: vec!["PATH=/bin".into(), "HOME=/root".into()],
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            hostname: "kiln-test".into(),
            network: Network::None,
            mounts: vec![],
        }
    }

    fn sandbox(&self, rootfs: RootfsMode) -> Sandbox {
        Sandbox::with_options(SandboxOptions {
            temp_dir: Some(self.temp.clone()),
            rootfs,
        })
    }

    /// Runs and checks that nothing was left behind: no temp dir, no mount under `base`.
    fn run_with(&self, sandbox: &Sandbox, spec: &ExecSpec) -> Result<Output, ExecError> {
        let sink = Collect::default();
        let result = sandbox.run(spec, &sink);
        self.assert_clean();
        result.map(|status| sink.output(status))
    }

    fn run(&self, spec: &ExecSpec) -> Output {
        self.run_with(&self.sandbox(RootfsMode::Overlay), spec)
            .unwrap()
    }

    fn sh(&self, script: &str) -> Output {
        self.run(&self.spec(script))
    }

    fn assert_clean(&self) {
        let leftovers: Vec<_> = std::fs::read_dir(&self.temp)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(leftovers.is_empty(), "temp dirs left: {leftovers:?}");
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let base = self.base.to_string_lossy();
        assert!(
            !mountinfo.contains(&*base),
            "mounts left under {base}:\n{mountinfo}"
        );
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// What a step printed, and how it ended.
#[derive(Debug)]
struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Output {
    fn ok(self) -> Self {
        assert_eq!(self.status, ExitStatus::Code(0), "step failed: {self:?}");
        self
    }
}

#[derive(Default)]
struct Collect {
    chunks: Mutex<Vec<(u8, Vec<u8>)>>,
}

impl OutputSink for Collect {
    fn write(&self, stream: u8, data: &[u8]) {
        self.chunks.lock().unwrap().push((stream, data.to_vec()));
    }
}

impl Collect {
    fn output(&self, status: ExitStatus) -> Output {
        let chunks = self.chunks.lock().unwrap();
        let text = |id: u8| {
            let bytes: Vec<u8> = chunks
                .iter()
                .filter(|(s, _)| *s == id)
                .flat_map(|(_, d)| d.clone())
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        };
        Output {
            status,
            stdout: text(1),
            stderr: text(2),
        }
    }
}

#[test]
fn output_and_exit_code() {
    let Some(f) = Fixture::new("output") else {
        return;
    };
    let out = f.sh("echo out; echo err >&2; exit 3");
    assert_eq!(out.status, ExitStatus::Code(3));
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
}

/// Prints the median wall time of 20 `true` steps (not asserted: speed is measured, not
/// tested). "bare root" is the minimal busybox layer, where /proc, /dev, /sys and the /etc
/// files are mount stubs made and removed on every step; "image root" has them, as real
/// base images do.
#[test]
fn timing_of_true() {
    let Some(f) = Fixture::new("timing") else {
        return;
    };
    let sandbox = f.sandbox(RootfsMode::Overlay);
    let measure = |label: &str, network: Network| {
        let mut spec = f.spec("");
        spec.args = vec!["true".into()];
        spec.network = network;
        let mut times = Vec::new();
        for _ in 0..20 {
            let start = Instant::now();
            let status = sandbox.run(&spec, &Collect::default()).unwrap();
            times.push(start.elapsed());
            assert_eq!(status, ExitStatus::Code(0));
            f.assert_clean();
            std::fs::remove_dir_all(&f.upper).unwrap();
            std::fs::create_dir(&f.upper).unwrap();
        }
        times.sort();
        println!(
            "sandbox `true` ({label}, network {network:?}): median {:?}, min {:?}, max {:?}",
            times[10], times[0], times[19]
        );
    };
    measure("bare root", Network::None);
    for dir in ["proc", "dev", "sys", "etc"] {
        std::fs::create_dir_all(f.lower.join(dir)).unwrap();
    }
    std::fs::write(f.lower.join("etc/hosts"), "").unwrap();
    std::fs::write(f.lower.join("etc/resolv.conf"), "").unwrap();
    measure("image root", Network::None);
    measure("image root", Network::Host);
}

/// Describes every entry under `root` (type, mode, owner, size or target, opaque marker,
/// link count, content), keyed by relative path: two upperdirs compare equal when they hold
/// the same diff.
fn listing(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let kind = meta.file_type();
        let owner = format!("{:o} {}:{}", meta.mode() & 0o7777, meta.uid(), meta.gid());
        let text = if kind.is_dir() {
            let mut value = [0u8; 4];
            let opaque = matches!(
                rustix::fs::lgetxattr(entry.path(), "trusted.overlay.opaque", &mut value[..]),
                Ok(1)
            );
            format!("dir {owner} opaque={opaque}")
        } else if kind.is_symlink() {
            format!(
                "symlink -> {}",
                std::fs::read_link(entry.path()).unwrap().display()
            )
        } else if kind.is_char_device() {
            format!("char {owner} {:x}", meta.rdev())
        } else if kind.is_fifo() {
            format!("fifo {owner}")
        } else {
            let content = std::fs::read_to_string(entry.path()).unwrap_or_default();
            format!("file {owner} nlink={} {content:?}", meta.nlink())
        };
        out.insert(rel, text);
    }
    out
}

fn is_whiteout(path: &Path) -> bool {
    let meta = std::fs::symlink_metadata(path).unwrap();
    meta.file_type().is_char_device() && meta.rdev() == 0 && meta.uid() == 0 && meta.gid() == 0
}

#[test]
fn exit_by_signal() {
    let Some(f) = Fixture::new("signal") else {
        return;
    };
    // A PID namespace's init ignores signals from inside it unless it has a handler (as in
    // Docker), but not the kernel's: the CPU-time hard limit sends SIGKILL.
    let out = f.sh("ulimit -t 1; while :; do :; done");
    assert_eq!(
        out.status,
        ExitStatus::Signal(nix::libc::SIGKILL),
        "{out:?}"
    );
}

/// The sink sees the first line while the step still runs: the step waits for a file the
/// sink creates on seeing it.
#[test]
fn output_is_streamed() {
    let Some(f) = Fixture::new("stream") else {
        return;
    };
    let signal_dir = f.base.join("signal");
    std::fs::create_dir(&signal_dir).unwrap();
    struct Trigger(PathBuf, Collect);
    impl OutputSink for Trigger {
        fn write(&self, stream: u8, data: &[u8]) {
            if data.windows(5).any(|w| w == b"first") {
                std::fs::write(self.0.join("go"), "").unwrap();
            }
            self.1.write(stream, data);
        }
    }
    let mut spec = f.spec(
        "echo first; i=0; while [ ! -e /signal/go ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; \
         [ -e /signal/go ] && echo second || echo timeout",
    );
    spec.mounts = vec![MountSpec::Bind {
        source: signal_dir.clone(),
        target: "/signal".into(),
        readonly: true,
    }];
    let sink = Trigger(signal_dir, Collect::default());
    let status = f.sandbox(RootfsMode::Overlay).run(&spec, &sink).unwrap();
    let out = sink.1.output(status).ok();
    assert_eq!(out.stdout, "first\nsecond\n");
    f.assert_clean();
}

const LAYER_SCRIPT: &str = "set -e
echo new > /data/new
rm /data/file
rm -rf /data/dir && mkdir /data/dir && echo y > /data/dir/y
echo changed > /data/keep/mod
rm /data/keep/gone
mkdir -p /data/a/b && echo deep > /data/a/b/c
chown 12:34 /data/a/b/c
touch -d '2001-01-01 00:00:00' /data/a/b/c
ln /data/new /data/new-link
chmod 4755 /data/new
ln -s ../new /data/a/sym
mkfifo /data/fifo
mknod /data/null c 1 3";

fn check_layer(f: &Fixture, rootfs: RootfsMode) -> BTreeMap<String, String> {
    let lower_before = listing(&f.lower);
    f.run_with(&f.sandbox(rootfs), &f.spec(LAYER_SCRIPT))
        .unwrap()
        .ok();
    assert_eq!(listing(&f.lower), lower_before, "the lower layer changed");
    let up = &f.upper;
    assert_eq!(
        std::fs::read_to_string(up.join("data/new")).unwrap(),
        "new\n"
    );
    assert!(
        is_whiteout(&up.join("data/file")),
        "rm of a lower file gives a whiteout"
    );
    assert!(is_whiteout(&up.join("data/keep/gone")));
    let dir = listing(up).remove("data/dir").unwrap();
    assert!(
        dir.ends_with("opaque=true"),
        "rm -rf && mkdir gives an opaque dir: {dir}"
    );
    assert!(!up.join("data/dir/other").exists() && !up.join("data/dir/sub").exists());
    assert!(listing(up)["data"].ends_with("opaque=false"));
    let c = std::fs::symlink_metadata(up.join("data/a/b/c")).unwrap();
    assert_eq!((c.uid(), c.gid(), c.mtime()), (12, 34, 978_307_200));
    let new = std::fs::metadata(up.join("data/new")).unwrap();
    assert_eq!(
        new.ino(),
        std::fs::metadata(up.join("data/new-link")).unwrap().ino(),
        "hard link kept"
    );
    assert_eq!(new.mode() & 0o7777, 0o4755);
    // Mount targets the child had to create are gone again; nothing else is there.
    let top: Vec<String> = std::fs::read_dir(up)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(top, ["data"], "only the step's changes are in the upperdir");
    listing(up)
}

#[test]
fn overlay_upperdir_is_the_diff() {
    let Some(f) = Fixture::new("overlay-diff") else {
        return;
    };
    check_layer(&f, RootfsMode::Overlay);
}

#[test]
fn copy_fallback_writes_the_same_diff() {
    let Some(overlay) = Fixture::new("diff-overlay") else {
        return;
    };
    let Some(copy) = Fixture::new("diff-copy") else {
        return;
    };
    let from_overlay = check_layer(&overlay, RootfsMode::Overlay);
    let from_copy = check_layer(&copy, RootfsMode::Copy);
    assert_eq!(from_copy, from_overlay);
}

#[test]
fn copy_fallback_reads_layers_in_overlay_form() {
    let Some(f) = Fixture::new("copy-layers") else {
        return;
    };
    // A second layer on top: deletes /data/file, hides /data/dir's old content, adds a file.
    let top = f.base.join("top");
    std::fs::create_dir_all(top.join("data/dir")).unwrap();
    std::fs::write(top.join("data/dir/fresh"), "fresh\n").unwrap();
    rustix::fs::lsetxattr(
        top.join("data/dir"),
        "trusted.overlay.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        top.join("data/file"),
        rustix::fs::FileType::CharacterDevice,
        0.into(),
        0,
    )
    .unwrap();
    for rootfs in [RootfsMode::Overlay, RootfsMode::Copy] {
        let mut spec = f.spec("ls /data; ls /data/dir");
        spec.lowerdirs = vec![top.clone(), f.lower.clone()];
        let out = f.run_with(&f.sandbox(rootfs), &spec).unwrap().ok();
        assert_eq!(out.stdout, "dir\nkeep\nfresh\n", "{rootfs:?}");
    }
}

#[test]
fn scratch_root_with_a_bound_shell() {
    let Some(f) = Fixture::new("scratch") else {
        return;
    };
    let mut spec = f.spec("echo hi > /x; cat /x");
    spec.lowerdirs.clear();
    spec.args[0] = "/bin/sh".into();
    spec.mounts = vec![MountSpec::Bind {
        source: BUSYBOX.into(),
        target: "/bin/sh".into(),
        readonly: true,
    }];
    let out = f.run(&spec).ok();
    assert_eq!(out.stdout, "hi\n");
    // /bin/sh, /bin, /etc, /proc, /dev, /sys were mount stubs: only /x remains.
    assert_eq!(listing(&f.upper).keys().collect::<Vec<_>>(), ["x"]);
}

#[test]
fn pid_namespace_shows_only_the_step() {
    let Some(f) = Fixture::new("pid") else { return };
    let out = f.sh("echo $$; tr '\\0' ' ' < /proc/1/cmdline; echo; ls /proc | grep -cE '^[0-9]+$'; ps -o pid,comm").ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "1", "the step's shell is PID 1");
    assert!(lines[1].starts_with("sh -c echo $$"), "{out:?}");
    let processes: usize = lines[2].parse().unwrap();
    assert!(
        processes <= 4,
        "only the step's processes are visible: {out:?}"
    );
    assert!(
        lines[3..]
            .iter()
            .all(|l| l.contains("PID") || l.contains("sh") || l.contains("ps")),
        "{out:?}"
    );
}

#[test]
fn hostname_and_etc_files() {
    let Some(f) = Fixture::new("hostname") else {
        return;
    };
    let out = f
        .sh("hostname; grep kiln-test /etc/hosts; cat /etc/resolv.conf | grep -c nameserver")
        .ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "kiln-test");
    assert_eq!(lines[1], "127.0.0.1\tlocalhost kiln-test");
    assert_ne!(lines[2], "0");
    // Read-only, and not in the layer.
    let out = f.sh("echo x >> /etc/hosts");
    assert_ne!(out.status, ExitStatus::Code(0));
    assert!(!f.upper.join("etc").exists());
}

#[test]
fn network_none_has_only_loopback_up() {
    let Some(f) = Fixture::new("net") else { return };
    let out = f
        .sh("grep : /proc/net/dev; cat /sys/class/net/lo/flags")
        .ok();
    let lines: Vec<&str> = out.stdout.lines().map(str::trim).collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    assert!(lines[0].starts_with("lo:"), "{out:?}");
    let flags = u32::from_str_radix(lines[1].trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is up");

    let host_interfaces = std::fs::read_to_string("/proc/net/dev")
        .unwrap()
        .lines()
        .filter(|l| l.contains(':'))
        .count();
    let mut spec = f.spec("grep -c : /proc/net/dev");
    spec.network = Network::Host;
    let out = f.run(&spec).ok();
    assert_eq!(
        out.stdout.trim(),
        host_interfaces.to_string(),
        "host network shares the host's interfaces"
    );
}

#[test]
fn docker_default_hardening() {
    let Some(f) = Fixture::new("hardening") else {
        return;
    };
    let out = f
        .sh("grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status")
        .ok();
    let status: BTreeMap<&str, &str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k, v.trim()))
        .collect();
    assert_eq!(status["CapEff"], "00000000a80425fb");
    assert_eq!(status["CapPrm"], "00000000a80425fb");
    assert_eq!(status["CapBnd"], "00000000a80425fb");
    assert_eq!(status["CapInh"], "0000000000000000");
    assert_eq!(status["CapAmb"], "0000000000000000");
    assert_eq!(status["NoNewPrivs"], "1");
    assert_eq!(status["Seccomp"], "2");
}

#[test]
fn masked_and_readonly_paths() {
    let Some(f) = Fixture::new("masked") else {
        return;
    };
    let out = f
        .sh("for p in /proc/keys /proc/timer_list /proc/kcore /proc/interrupts /proc/latency_stats \
                      /proc/sched_debug; do [ -e $p ] && echo \"size $p $(wc -c < $p)\"; done; \
             for d in /sys/firmware /proc/acpi /proc/scsi; do [ -d $d ] && echo \"entries $d $(ls -A $d | wc -l)\"; done; \
             grep -E ' /proc/(sys|bus|fs|irq) ' /proc/self/mountinfo | cut -d' ' -f5,6; \
             echo 1 > /proc/sysrq-trigger 2>/dev/null && echo sysrq-writable; true")
        .ok();
    let sizes: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("size "))
        .collect();
    assert!(sizes.len() >= 2, "{out:?}");
    for line in sizes {
        assert!(line.ends_with(" 0"), "masked: {line}");
    }
    let dirs: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("entries "))
        .collect();
    assert!(!dirs.is_empty(), "{out:?}");
    for line in dirs {
        assert!(line.ends_with(" 0"), "masked directories are empty: {line}");
    }
    for p in ["/proc/sys", "/proc/bus", "/proc/fs", "/proc/irq"] {
        assert!(
            out.stdout.contains(&format!("{p} ro,")),
            "{p} is read-only: {out:?}"
        );
    }
    assert!(!out.stdout.contains("sysrq-writable"));
}

#[test]
fn seccomp_blocks_namespaces_and_mounts() {
    let Some(f) = Fixture::new("seccomp") else {
        return;
    };
    let out = f.sh(
        "unshare -U true; echo unshare=$?; mount -t tmpfs none /data; echo mount=$?; \
                    nsenter -t 1 -u true; echo nsenter=$?",
    );
    assert!(out.stdout.contains("unshare=1"), "{out:?}");
    assert!(!out.stdout.contains("mount=0"), "{out:?}");
    assert!(!out.stdout.contains("nsenter=0"), "{out:?}");
    assert!(out.stderr.contains("Operation not permitted"), "{out:?}");
}

#[test]
fn host_filesystem_is_invisible() {
    let Some(f) = Fixture::new("hostfs") else {
        return;
    };
    let marker = std::env::temp_dir().join(format!("kiln-sandbox-marker-{}", std::process::id()));
    std::fs::write(&marker, "host").unwrap();
    let script = format!(
        "[ -e {m} ] && echo visible; [ -e /tmp ] && echo has-tmp; grep -c . /proc/self/mountinfo >/dev/null; \
         cut -d' ' -f5 /proc/self/mountinfo | grep -vE '^/(proc|dev|sys|etc)?' ; echo done",
        m = marker.display()
    );
    let out = f.sh(&script).ok();
    std::fs::remove_file(&marker).unwrap();
    assert_eq!(out.stdout, "done\n", "{out:?}");
}

#[test]
fn bind_and_tmpfs_mounts() {
    let Some(f) = Fixture::new("mounts") else {
        return;
    };
    let ro = f.base.join("ro");
    let rw = f.base.join("rw");
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::create_dir_all(&rw).unwrap();
    std::fs::write(ro.join("hello"), "hello\n").unwrap();
    let mut spec = f.spec(
        "cat /mnt/ro/hello; touch /mnt/ro/x 2>/dev/null && echo ro-writable; \
         touch /mnt/rw/y && echo rw-ok; echo t > /mnt/tmp/t && cat /mnt/tmp/t; \
         grep ' /mnt/tmp ' /proc/self/mountinfo | grep -o 'size=[0-9]*k'",
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
            target: "/mnt/tmp".into(),
            size: Some(1024 * 1024),
        },
    ];
    let out = f.run(&spec).ok();
    assert_eq!(out.stdout, "hello\nrw-ok\nt\nsize=1024k\n");
    assert!(rw.join("y").exists());
    assert!(!ro.join("x").exists());
    assert!(
        !f.upper.join("mnt").exists(),
        "mount stubs are not in the layer"
    );
}

#[test]
fn identity_and_working_directory() {
    let Some(f) = Fixture::new("identity") else {
        return;
    };
    let mut spec = f.spec("id -u; id -g; id -G; pwd; grep CapEff /proc/self/status");
    spec.uid = 1000;
    spec.gid = 1001;
    spec.additional_gids = vec![2000];
    spec.cwd = "/work/dir".into();
    let out = f.run(&spec).ok();
    assert_eq!(
        out.stdout,
        "1000\n1001\n1001 2000\n/work/dir\nCapEff:\t0000000000000000\n"
    );
    let cwd = std::fs::metadata(f.upper.join("work/dir")).unwrap();
    assert_eq!(
        (cwd.uid(), cwd.gid(), cwd.mode() & 0o7777),
        (0, 0, 0o755),
        "cwd created, owned by root"
    );
}

#[test]
fn missing_command_is_a_start_error() {
    let Some(f) = Fixture::new("missing") else {
        return;
    };
    let mut spec = f.spec("");
    spec.args = vec!["no-such-command".into()];
    match f.run_with(&f.sandbox(RootfsMode::Overlay), &spec) {
        Err(ExecError::Start { command, message }) => {
            assert_eq!(command, "no-such-command");
            assert!(message.contains("not found in PATH (/bin)"), "{message}");
        }
        other => panic!("expected a start error, got {other:?}"),
    }
    spec.args = vec!["/data/file".into()];
    match f.run_with(&f.sandbox(RootfsMode::Overlay), &spec) {
        Err(ExecError::Start { message, .. }) => {
            assert!(message.contains("ermission denied"), "{message}")
        }
        other => panic!("expected a start error, got {other:?}"),
    }
}

#[test]
fn setup_errors_name_the_path() {
    let Some(f) = Fixture::new("setup-error") else {
        return;
    };
    let mut spec = f.spec("true");
    spec.lowerdirs.push(f.base.join("no-such-layer"));
    match f.run_with(&f.sandbox(RootfsMode::Overlay), &spec) {
        Err(ExecError::Setup(message)) => assert!(message.contains("no-such-layer"), "{message}"),
        other => panic!("expected a setup error, got {other:?}"),
    }
}

#[test]
fn long_layer_chains_fit() {
    let Some(f) = Fixture::new("chain") else {
        return;
    };
    // 40 layers under a long common path (the relative form fits), 200 with long names (only
    // the bind form fits).
    for (count, name_len) in [(40, 20), (200, 64)] {
        let root = f.base.join(format!("layers-{}", "x".repeat(90)));
        let mut lowers = Vec::new();
        for i in 0..count {
            let layer = root.join(format!("{i:0name_len$}"));
            std::fs::create_dir_all(layer.join("layers")).unwrap();
            std::fs::write(layer.join("layers").join(i.to_string()), format!("{i}\n")).unwrap();
            lowers.push(layer);
        }
        lowers.push(f.lower.clone());
        let mut spec = f.spec("ls /layers | wc -l; cat /layers/0 /layers/$LAST");
        spec.env.push(format!("LAST={}", count - 1));
        spec.lowerdirs = lowers;
        let out = f.run(&spec).ok();
        assert_eq!(out.stdout, format!("{count}\n0\n{}\n", count - 1));
        std::fs::remove_dir_all(&root).unwrap();
    }
}

#[test]
fn concurrent_steps_do_not_mix() {
    let fixtures: Vec<Fixture> = (0..4)
        .filter_map(|i| Fixture::new(&format!("concurrent{i}")))
        .collect();
    std::thread::scope(|scope| {
        for (i, f) in fixtures.iter().enumerate() {
            scope.spawn(move || {
                for round in 0..5 {
                    let mut spec = f.spec("echo $STEP; echo err$STEP >&2; hostname");
                    spec.env.push(format!("STEP={i}-{round}"));
                    spec.hostname = format!("host{i}");
                    let out = f.run(&spec).ok();
                    assert_eq!(out.stdout, format!("{i}-{round}\nhost{i}\n"));
                    assert_eq!(out.stderr, format!("err{i}-{round}\n"));
                }
            });
        }
    });
}

/// Ctrl-C during a step: kiln (here a child test process) dies of the signal, and leaves no
/// mount, process or temp dir.
#[test]
fn interrupt_cleans_up() {
    // The interrupted build is this test binary running only this test again, which then
    // takes the helper's part (a SIGINT must not hit the other tests' process).
    if std::env::var_os(HELPER_ENV).is_some() {
        interrupt_helper();
        return;
    }
    let Some(f) = Fixture::new("interrupt") else {
        return;
    };
    let out = f.base.join("out");
    std::fs::create_dir(&out).unwrap();
    let mut helper = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "executor::sandbox::tests::interrupt_cleans_up",
            "--exact",
            "--nocapture",
        ])
        .env(HELPER_ENV, &f.base)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !out.join("started").exists() {
        assert!(Instant::now() < deadline, "the helper's step did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    while sleepers() == 0 {
        assert!(
            Instant::now() < deadline,
            "the step's process is not visible from the host"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(helper.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = helper.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(nix::libc::SIGINT),
        "kiln dies of the signal after cleaning up: {status:?}"
    );
    assert_eq!(sleepers(), 0, "the step's processes are gone");
    f.assert_clean();
}

const HELPER_ENV: &str = "KILN_SANDBOX_INTERRUPT_HELPER";
const HELPER_SLEEP: &str = "4711.5";

/// Processes on the host running the helper's step.
fn sleepers() -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| c == format!("sleep\0{HELPER_SLEEP}\0").as_bytes())
        })
        .count()
}

/// Run by `interrupt_cleans_up` in a process of its own; does nothing otherwise.
/// The helper's part of `interrupt_cleans_up`: runs a long step until interrupted.
fn interrupt_helper() {
    let Some(base) = std::env::var_os(HELPER_ENV).map(PathBuf::from) else {
        return;
    };
    let spec = ExecSpec {
        lowerdirs: vec![base.join("lower")],
        upperdir: base.join("upper"),
        workdir: base.join("work"),
        args: vec![
            "sh".into(),
            "-c".into(),
            format!("touch /out/started; sleep {HELPER_SLEEP}"),
        ],
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        uid: 0,
        gid: 0,
        additional_gids: vec![],
        hostname: "helper".into(),
        network: Network::None,
        mounts: vec![MountSpec::Bind {
            source: base.join("out"),
            target: "/out".into(),
            readonly: false,
        }],
    };
    let sandbox = Sandbox::with_options(SandboxOptions {
        temp_dir: Some(base.join("tmp")),
        rootfs: RootfsMode::Overlay,
    });
    let result = sandbox.run(&spec, &Collect::default());
    // Only reached when the interrupt did not end the process.
    eprintln!("helper: run returned {result:?}");
    std::process::exit(3);
}

/// Overlay refuses a workdir on another filesystem than its upperdir: `Overlay` reports the
/// mount failure, `Auto` falls back to the copy and still produces the diff.
#[test]
fn auto_falls_back_to_copy_when_overlay_refuses() {
    let Some(f) = Fixture::new("fallback") else {
        return;
    };
    let shm = Path::new("/dev/shm");
    if std::fs::metadata(shm).map(|m| m.dev()).ok()
        == std::fs::metadata(&f.work).map(|m| m.dev()).ok()
    {
        eprintln!("skipping: /dev/shm is on the same filesystem as the temp dir");
        return;
    }
    let upper = shm.join(format!("kiln-sandbox-test-upper-{}", std::process::id()));
    std::fs::create_dir_all(&upper).unwrap();
    let mut spec = f.spec("echo hi > /data/new; rm /data/file; cat /data/keep/mod");
    spec.upperdir = upper.clone();
    let refused = f.run_with(&f.sandbox(RootfsMode::Overlay), &spec);
    let fallback = f.run_with(&f.sandbox(RootfsMode::Auto), &spec);
    let new = std::fs::read_to_string(upper.join("data/new"));
    let whiteout = upper.join("data/file").exists() && is_whiteout(&upper.join("data/file"));
    std::fs::remove_dir_all(&upper).unwrap();
    match refused {
        Err(ExecError::Setup(message)) => {
            assert!(message.contains("mounting overlay"), "{message}")
        }
        other => panic!("expected overlay to refuse, got {other:?}"),
    }
    assert_eq!(fallback.unwrap().ok().stdout, "before\n");
    assert_eq!(new.unwrap(), "hi\n");
    assert!(whiteout);
}

/// A layer whose whiteout hides the skeleton's /etc/hosts: the child makes a mount point
/// itself, and it is removed from the result afterwards.
#[test]
fn stub_mount_points_are_removed() {
    let Some(f) = Fixture::new("stubs") else {
        return;
    };
    let top = f.base.join("top");
    std::fs::create_dir_all(top.join("etc")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        top.join("etc/hosts"),
        rustix::fs::FileType::CharacterDevice,
        0.into(),
        0,
    )
    .unwrap();
    for rootfs in [RootfsMode::Overlay, RootfsMode::Copy] {
        let mut spec = f.spec("head -1 /etc/hosts");
        spec.lowerdirs = vec![top.clone(), f.lower.clone()];
        let out = f.run_with(&f.sandbox(rootfs), &spec).unwrap().ok();
        assert_eq!(out.stdout, "127.0.0.1\tlocalhost kiln-test\n", "{rootfs:?}");
        let entries = listing(&f.upper);
        assert!(
            !entries.contains_key("etc/hosts"),
            "{rootfs:?}: {entries:?}"
        );
        std::fs::remove_dir_all(&f.upper).unwrap();
        std::fs::create_dir(&f.upper).unwrap();
    }
}
