//! What the probes share: kiln run in the background with a deadline, signals, the store's
//! temp areas and its blobs checked against their digests, peak memory of a run.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use sha2::Digest as _;

/// The probes run one at a time: a fork bomb, a 20-kill crash loop and the "within 10 s of the
/// signal" deadlines must not share two cores with each other.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The kiln under test (KILN_TEST_BIN runs the probes against another build, to compare).
pub fn bin() -> PathBuf {
    std::env::var_os("KILN_TEST_BIN")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_kiln")), PathBuf::from)
}

/// Where a background kiln's standard error goes.
pub enum Stderr {
    /// A file, read afterwards with [`Background::stderr`].
    File,
    /// A pipe whose reader has gone after one line: every later write fails (EPIPE).
    BrokenAfterFirstLine,
}

/// A kiln running in the background.
pub struct Background {
    pub child: Child,
    stderr_path: PathBuf,
    started: Instant,
}

impl Background {
    /// Starts `kiln <args> --root <root>`, output in files under `dir`.
    pub fn start(root: &Path, dir: &Path, args: &[&str], stderr: Stderr) -> Background {
        std::fs::create_dir_all(dir).unwrap();
        let stderr_path = dir.join(format!("stderr-{}", unique()));
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .arg("--root")
            .arg(root)
            .env_remove("SOURCE_DATE_EPOCH")
            .env_remove("KILN_ROOT")
            .stdin(Stdio::null())
            .stdout(File::create(dir.join(format!("stdout-{}", unique()))).unwrap());
        match stderr {
            Stderr::File => {
                cmd.stderr(File::create(&stderr_path).unwrap());
            }
            Stderr::BrokenAfterFirstLine => {
                cmd.stderr(Stdio::piped());
            }
        }
        let mut child = cmd.spawn().unwrap();
        if let Some(pipe) = child.stderr.take() {
            use std::io::BufRead as _;
            let mut line = String::new();
            let _ = std::io::BufReader::new(pipe).read_line(&mut line);
            std::fs::write(&stderr_path, line).unwrap();
            // The reader is dropped here: the pipe is broken from now on.
        }
        Background {
            child,
            stderr_path,
            started: Instant::now(),
        }
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap()
    }

    /// Sends `signal` (as `kill -<signal>` would), unless kiln has exited already.
    pub fn signal(&mut self, signal: &str) {
        if !self.running() {
            return;
        }
        let out = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success() || !self.running(),
            "kill -{signal}: {out:?}"
        );
    }

    /// Waits up to `limit` for kiln to exit; its status and how long it took, or `None` (and
    /// kiln killed) when it did not exit in time.
    pub fn wait(&mut self, limit: Duration) -> Option<(ExitStatus, Duration)> {
        let from = Instant::now();
        while from.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some((status, from.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }

    /// Waits like [`Background::wait`], sampling kiln's peak resident memory (VmHWM) until it
    /// exits; the status and the peak in bytes.
    pub fn wait_sampling_rss(&mut self, limit: Duration) -> (Option<ExitStatus>, u64) {
        let status_file = format!("/proc/{}/status", self.pid());
        let mut peak = 0;
        let from = Instant::now();
        while from.elapsed() < limit {
            if let Some(kib) = std::fs::read_to_string(&status_file)
                .ok()
                .and_then(|s| vm_hwm_kib(&s))
            {
                peak = peak.max(kib * 1024);
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                return (Some(status), peak);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        (None, peak)
    }

    /// How long ago kiln started.
    pub fn running_for(&self) -> Duration {
        self.started.elapsed()
    }

    /// Still running?
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// What kiln wrote to standard error (up to the first line when the pipe was broken).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn vm_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn unique() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::SeqCst).to_string()
}

/// Polls `ready` every 5 ms for up to `limit`; whether it became true.
pub fn wait_until(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let from = Instant::now();
    while from.elapsed() < limit {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// The names `kiln images` lists (`repository:tag`).
pub fn tags(root: &Path) -> Vec<String> {
    let run = super::common::kiln(root, &["images"]);
    assert_eq!(run.code, 0, "kiln images: {}", run.stderr);
    run.stdout
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some(format!("{}:{}", f.next()?, f.next()?))
        })
        .collect()
}

/// Every blob in the store holds what its name says, and nothing half-written sits among
/// them; returns how many were checked.
pub fn verify_blobs(root: &Path) -> usize {
    let dir = root.join("blobs/sha256");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut checked = 0;
    for entry in entries {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()),
            "a stray file among the blobs: {}",
            entry.path().display()
        );
        let mut hasher = sha2::Sha256::new();
        let mut file = File::open(entry.path()).unwrap();
        std::io::copy(&mut file, &mut hasher).unwrap();
        let actual = format!("{:x}", hasher.finalize());
        assert_eq!(actual, name, "corrupt blob {}", entry.path().display());
        checked += 1;
    }
    checked
}

/// The store's temp areas (kiln's own layout: work in progress only ever lives there).
pub fn store_temp_areas(root: &Path) -> Vec<PathBuf> {
    [
        "tmp",
        "ingest",
        "snapshots/tmp",
        "snapshots/views",
        "http-cache/urls",
    ]
    .iter()
    .map(|sub| root.join(sub))
    .collect()
}

/// What is left in the temp areas of the store at `root` and outside it: step cgroups, runc
/// bundles, sandbox temp dirs of kiln processes (none may run when this is called), and
/// mounts below the root.
pub fn leftovers(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for dir in store_temp_areas(root) {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            found.push(e.path().display().to_string());
        }
    }
    let mut kiln_dirs = vec![PathBuf::from("/run/kiln/runc")];
    for h in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        kiln_dirs.push(h.path().join("kiln"));
    }
    kiln_dirs.push(PathBuf::from("/sys/fs/cgroup/kiln"));
    for dir in kiln_dirs {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                found.push(e.path().display().to_string());
            }
        }
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root_text = root.display().to_string();
    for line in mountinfo.lines() {
        if line
            .split(' ')
            .nth(4)
            .is_some_and(|m| m.starts_with(&root_text))
        {
            found.push(format!("mount: {line}"));
        }
    }
    found
}

/// Bytes under `dir` (apparent sizes, each file once).
pub fn tree_size(dir: &Path) -> u64 {
    let out = Command::new("du").args(["-sb"]).arg(dir).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// `n` bytes no compressor can shrink (a counter through sha256), fast to make.
pub fn incompressible(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 32);
    let mut block = [0u8; 32];
    let mut i = 0u64;
    while out.len() < n {
        let mut hasher = sha2::Sha256::new();
        hasher.update(block);
        hasher.update(i.to_le_bytes());
        block = hasher.finalize().into();
        out.extend_from_slice(&block);
        i += 1;
    }
    out.truncate(n);
    out
}

/// The runtimes a probe runs under: the built-in sandbox and runc.
pub const RUNTIMES: [&str; 2] = ["sandbox", "runc"];

/// Prints a note for the log (a skipped probe says why).
pub fn note(text: &str) {
    #[allow(clippy::print_stderr)]
    {
        eprintln!("{text}");
    }
}
