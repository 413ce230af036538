//! Executors run one RUN step: a process tree in an isolated container over a prepared root
//! filesystem. This module owns the contract ([`Executor`], [`ExecSpec`]); the built-in
//! sandbox and the OCI-runtime (runc) executor implement it. It is the only place in kiln
//! where `unsafe` is allowed (namespaces, mounts, fork/exec), each block with a `// SAFETY:`.

pub mod cgroup;
pub mod emulation;
pub mod rootless;
pub mod runc;
pub mod sandbox;
pub(crate) mod seccomp_policy;

use std::path::PathBuf;

use sandbox::SeccompError;

/// Removes what runs of dead kiln processes left outside any store: step cgroups (their
/// processes killed), runc bundles and sandbox temp dirs in the default places. Returns how
/// many went.
pub fn sweep_stale() -> usize {
    let mut removed = cgroup::sweep_stale();
    let mut dirs = vec![runc::default_bundle_root(), std::env::temp_dir()];
    dirs.dedup();
    for dir in dirs {
        removed += crate::fsutil::leftovers::sweep_dir(&dir);
    }
    removed
}

/// How the step reaches the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// The host's network namespace (BuildKit's OCI worker without CNI does the same).
    #[default]
    Host,
    /// A fresh network namespace with only loopback, up.
    None,
}

/// An extra mount for the step (RUN --mount, /dev/shm…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSpec {
    /// A host directory or file bind-mounted at `target`.
    Bind {
        /// Host path.
        source: PathBuf,
        /// Absolute path inside the container.
        target: String,
        /// Mounted read-only.
        readonly: bool,
    },
    /// A tmpfs at `target`.
    Tmpfs {
        /// Absolute path inside the container.
        target: String,
        /// Size limit in bytes (None: the kernel default).
        size: Option<u64>,
    },
}

/// Everything a RUN step needs.
#[derive(Debug, Clone)]
pub struct ExecSpec {
    /// The read-only lower layers, top-most first (overlay `lowerdir` order); each directory
    /// holds a layer in overlay form (whiteouts as 0:0 char devices, opaque xattrs).
    /// Empty for a step on `scratch`.
    pub lowerdirs: Vec<PathBuf>,
    /// The empty directory that receives the step's changes (overlay `upperdir`); after the
    /// run it *is* the layer diff.
    pub upperdir: PathBuf,
    /// Overlay's scratch directory, on the same filesystem as `upperdir`, empty.
    pub workdir: PathBuf,
    /// The command: argv[0] is resolved against PATH from `env` inside the container.
    pub args: Vec<String>,
    /// `KEY=value` entries.
    pub env: Vec<String>,
    /// The working directory inside the container (created if missing).
    pub cwd: String,
    /// Numeric user and group the process runs as, plus supplementary groups.
    pub uid: u32,
    /// Primary group.
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// The container's hostname.
    pub hostname: String,
    /// Network mode.
    pub network: Network,
    /// Extra mounts, in order.
    pub mounts: Vec<MountSpec>,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

/// Receives the step's output as it is produced, line by line or in chunks.
pub trait OutputSink: Send + Sync {
    /// Bytes written by the process to stdout (`stream` 1) or stderr (`stream` 2).
    fn write(&self, stream: u8, data: &[u8]);
}

/// Runs RUN steps.
pub trait Executor: Send + Sync + std::fmt::Debug {
    /// Runs `spec` to completion, streaming output to `sink`. Must clean up every mount,
    /// process and temp file it made, also on error and when the build is interrupted.
    fn run(&self, spec: &ExecSpec, sink: &dyn OutputSink) -> Result<ExitStatus, ExecError>;
}

/// Why a step could not be run (as opposed to running and failing).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// Setting up the container failed.
    #[error("setting up the container: {0}")]
    Setup(String),
    /// The seccomp filters could not be compiled.
    #[error("setting up the container: {0}")]
    Seccomp(#[from] SeccompError),
    /// The command could not be started (not found, not executable…).
    #[error("starting {command}: {message}")]
    Start {
        /// argv[0].
        command: String,
        /// Why.
        message: String,
    },
    /// The OCI runtime failed.
    #[error("runtime {runtime}: {message}")]
    Runtime {
        /// The runtime binary.
        runtime: String,
        /// Why.
        message: String,
    },
}
