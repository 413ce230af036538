//! A cgroup per RUN step: a pids limit, so a fork bomb fails its step and not the machine
//! (hitting the limit ends the step, with a message saying so), a memory limit when one is
//! given, and on cgroup v1 hosts Docker's device whitelist (defence in depth: device nodes
//! are already unusable in a step, see the sandbox's `nodev` mounts).
//!
//! Where the hierarchy lives: cgroup v2 (`/sys/fs/cgroup/cgroup.controllers` exists) gets
//! `/sys/fs/cgroup/kiln/<step>` with the controllers enabled on the way; a v1 or hybrid host
//! gets `<controller>/kiln/<step>` in each v1 controller kiln uses. Steps are named after
//! their owner (`kiln-tmp-<pid>-<start>-<n>`, see `fsutil::owner`), so the cgroups of a kiln
//! that died are recognized as stale and removed, their processes killed, by the next one.
//! Without a writable cgroup filesystem (unprivileged, or none mounted) steps run without one.

use std::path::{Path, PathBuf};
use std::sync::Once;

use crate::fsutil::owner;

/// Processes one step may have at once: far past what builds use (`make -j`, test runners),
/// short of what takes a machine down.
pub const PIDS_LIMIT: u64 = 4096;

const ROOT: &str = "/sys/fs/cgroup";
const PARENT: &str = "kiln";

/// Docker's default device rules (v1 `devices.allow` syntax): null, zero, full, random,
/// urandom, tty, console, ptmx and the pts, plus mknod of any (which `nodev` mounts make inert).
const DEVICE_RULES: [&str; 11] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
];

/// Limits for a step's cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of memory, when limited.
    pub memory: Option<u64>,
}

/// One step's cgroup, removed (its processes killed) when dropped.
#[derive(Debug)]
pub struct StepCgroup {
    /// The step's directory in each hierarchy.
    dirs: Vec<PathBuf>,
    /// Where the pids controller counts refused forks.
    pids_events: Option<PathBuf>,
    v2: bool,
}

impl StepCgroup {
    /// Makes the cgroup of a new step; `None` when this host gives kiln no cgroups.
    pub fn create(limits: &Limits) -> Option<StepCgroup> {
        static SWEEP: Once = Once::new();
        SWEEP.call_once(|| {
            sweep_stale();
        });
        let name = owner::temp_name("step");
        let result = if Path::new(ROOT).join("cgroup.controllers").exists() {
            Self::create_v2(&name, limits)
        } else {
            Self::create_v1(&name, limits)
        };
        result.ok()
    }

    fn create_v2(name: &str, limits: &Limits) -> std::io::Result<StepCgroup> {
        let parent = Path::new(ROOT).join(PARENT);
        std::fs::create_dir_all(&parent)?;
        // Controllers reach a cgroup only when each ancestor hands them down.
        let mut wanted = vec!["+pids"];
        if limits.memory.is_some() {
            wanted.push("+memory");
        }
        for dir in [Path::new(ROOT), parent.as_path()] {
            let _ = std::fs::write(dir.join("cgroup.subtree_control"), wanted.join(" "));
        }
        let dir = parent.join(name);
        std::fs::create_dir(&dir)?;
        let cgroup = StepCgroup {
            dirs: vec![dir.clone()],
            pids_events: Some(dir.join("pids.events")),
            v2: true,
        };
        std::fs::write(dir.join("pids.max"), PIDS_LIMIT.to_string())?;
        if let Some(bytes) = limits.memory {
            std::fs::write(dir.join("memory.max"), bytes.to_string())?;
        }
        Ok(cgroup)
    }

    fn create_v1(name: &str, limits: &Limits) -> std::io::Result<StepCgroup> {
        let mut cgroup = StepCgroup {
            dirs: Vec::new(),
            pids_events: None,
            v2: false,
        };
        let pids = v1_dir("pids", name)?;
        std::fs::write(pids.join("pids.max"), PIDS_LIMIT.to_string())?;
        cgroup.pids_events = Some(pids.join("pids.events"));
        cgroup.dirs.push(pids);
        if let Ok(devices) = v1_dir("devices", name) {
            cgroup.dirs.push(devices.clone());
            std::fs::write(devices.join("devices.deny"), "a")?;
            for rule in DEVICE_RULES {
                std::fs::write(devices.join("devices.allow"), rule)?;
            }
        }
        if let Some(bytes) = limits.memory {
            let memory = v1_dir("memory", name)?;
            cgroup.dirs.push(memory.clone());
            std::fs::write(memory.join("memory.limit_in_bytes"), bytes.to_string())?;
        }
        Ok(cgroup)
    }

    /// The `cgroup.procs` files a process writes `0` to, to join the step's cgroup.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// Whether a fork was refused for the pids limit since the step started.
    pub fn pids_exhausted(&self) -> bool {
        self.pids_events
            .as_deref()
            .is_some_and(|events| std::fs::read_to_string(events).is_ok_and(|t| max_hit(&t)))
    }
}

/// Whether a fork was refused for the pids limit in the cgroup at `path` (relative to the
/// hierarchy's root, as a runtime spec's `cgroupsPath`), v2 or v1.
pub fn pids_exhausted_at(path: &str) -> bool {
    let rel = path.trim_start_matches('/');
    [
        Path::new(ROOT).join(rel).join("pids.events"),
        Path::new(ROOT).join("pids").join(rel).join("pids.events"),
    ]
    .into_iter()
    .any(|events| std::fs::read_to_string(events).is_ok_and(|t| max_hit(&t)))
}

/// Whether `pids.events` counts a refused fork.
fn max_hit(events: &str) -> bool {
    events
        .lines()
        .filter_map(|l| l.strip_prefix("max "))
        .any(|n| n.trim().parse::<u64>().is_ok_and(|n| n > 0))
}

/// The `cgroupsPath` of a runc step named `id`.
pub fn runc_path(id: &str) -> String {
    format!("/{PARENT}/{id}")
}

impl Drop for StepCgroup {
    fn drop(&mut self) {
        for dir in self.dirs.iter().rev() {
            remove(dir, self.v2);
        }
    }
}

fn v1_dir(controller: &str, name: &str) -> std::io::Result<PathBuf> {
    let hierarchy = Path::new(ROOT).join(controller);
    if !hierarchy.join("cgroup.procs").exists() {
        return Err(std::io::ErrorKind::NotFound.into());
    }
    let dir = hierarchy.join(PARENT).join(name);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Kills what is left in `dir` and removes it (a cgroup can only go once empty); whether it
/// went.
fn remove(dir: &Path, v2: bool) -> bool {
    for _ in 0..50 {
        if v2 {
            let _ = std::fs::write(dir.join("cgroup.kill"), "1");
        } else if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        match std::fs::remove_dir(dir) {
            Ok(()) => return true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
    false
}

/// Removes the step cgroups (kiln's own and runc's) of kiln processes that are gone, killing
/// what still runs in them; returns how many went.
pub(crate) fn sweep_stale() -> usize {
    let v2 = Path::new(ROOT).join("cgroup.controllers").exists();
    // The unified hierarchy, and every v1 hierarchy (runc joins them all).
    let mut parents = vec![Path::new(ROOT).join(PARENT)];
    if let Ok(hierarchies) = std::fs::read_dir(ROOT) {
        parents.extend(hierarchies.flatten().map(|h| h.path().join(PARENT)));
    }
    let mut removed = 0;
    for parent in parents {
        for dir in owner::dead_temps_in(&parent) {
            if remove(&dir, v2) {
                removed += 1;
            }
        }
    }
    removed
}
