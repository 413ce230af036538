//! The built-in sandbox: runs a RUN step as a container made directly with namespaces,
//! mounts and seccomp, without a runtime binary.
//!
//! One step, as [`Sandbox`] runs it:
//! 1. The parent writes the step's /etc/hosts and /etc/resolv.conf and a layer of empty mount
//!    points (`skeleton`) into a temp dir and plans the root: an overlay of the step's layers
//!    (over the skeleton) with the spec's upperdir (see `overlay` for long layer chains), or,
//!    where overlay cannot be mounted, a copy (see `copyfs`).
//! 2. It prepares the child's whole script as data (`build`, `plan`) and `clone`s the child
//!    into a new PID namespace (`spawn`).
//! 3. The child (`child`) unshares mount, UTS, IPC (and for `Network::None` network)
//!    namespaces, makes every mount private, mounts the root in its own namespace,
//!    `pivot_root`s into it, mounts /proc, /dev, /sys, the /etc files and the spec's mounts,
//!    drops the host root, then sets hostname, working directory, identity, capabilities,
//!    no_new_privs and seccomp, and execs the command.
//! 4. The parent forwards output to the sink as it comes (`forward`), waits, removes mount
//!    stubs from the result (`stubs`), and removes the temp dir.
//!
//! Cleanup does not depend on the parent getting that far: the mounts exist only in the
//! child's mount namespace, which the kernel tears down when the step's last process
//! exits; the step's processes die with the PID namespace's init, which dies with kiln
//! (parent-death signal) or is killed on SIGINT/SIGTERM (`interrupt`) or when the run's
//! guard is dropped; only the temp dir needs the parent (or the next run's sweep).
//!
//! It knows nothing of layers' provenance, caching or Dockerfiles: only [`ExecSpec`].

mod attempt;
mod build;
mod caps;
mod child;
mod copyfs;
mod etc_files;
mod forward;
mod interrupt;
mod masks;
mod overlay;
mod plan;
mod seccomp;
pub use seccomp::SeccompError;
mod skeleton;
mod spawn;
mod status;
mod stubs;
mod tempdir;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Once, OnceLock};

use nix::errno::Errno;
use seccompiler::BpfProgram;

use self::attempt::Failure;
use self::tempdir::TempDir;
use super::{ExecError, ExecSpec, Executor, ExitStatus, OutputSink};

/// How the sandbox makes the container's root filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RootfsMode {
    /// Overlay, falling back to a copy when overlay cannot be mounted.
    #[default]
    Auto,
    /// Overlay only: a failure to mount it is an error.
    Overlay,
    /// Always the copy-based root (slow; for filesystems overlay refuses, and for tests).
    Copy,
}

/// Settings of a [`Sandbox`].
#[derive(Debug, Clone, Default)]
pub struct SandboxOptions {
    /// Parent of the per-step temp dirs (default: the system temp dir). In copy mode the
    /// whole root is copied here.
    pub temp_dir: Option<PathBuf>,
    /// How the root filesystem is made.
    pub rootfs: RootfsMode,
}

/// The built-in sandbox executor (needs root).
#[derive(Debug)]
pub struct Sandbox {
    options: SandboxOptions,
    filters: OnceLock<Result<Vec<BpfProgram>, seccomp::SeccompError>>,
    last_cap: OnceLock<u32>,
    /// Set once overlayfs turned out not to exist at all, to skip straight to the copy.
    overlay_missing: AtomicBool,
    swept: Once,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    /// A sandbox with default options.
    pub fn new() -> Self {
        Self::with_options(SandboxOptions::default())
    }

    /// A sandbox with `options`.
    pub fn with_options(options: SandboxOptions) -> Self {
        Sandbox {
            options,
            filters: OnceLock::new(),
            last_cap: OnceLock::new(),
            overlay_missing: AtomicBool::new(false),
            swept: Once::new(),
        }
    }

    fn temp_root(&self) -> PathBuf {
        self.options
            .temp_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir)
    }

    fn filters(&self) -> Result<&[BpfProgram], ExecError> {
        match self.filters.get_or_init(seccomp::filters) {
            Ok(f) => Ok(f),
            Err(e) => Err(ExecError::Seccomp(e.clone())),
        }
    }
}

impl Executor for Sandbox {
    fn run(&self, spec: &ExecSpec, sink: &dyn OutputSink) -> Result<ExitStatus, ExecError> {
        // Declared first so it is dropped last: a pending re-raised signal must wait for
        // the temp dir's removal.
        let _active = interrupt::ActiveRun::enter()?;
        let temp_root = self.temp_root();
        self.swept.call_once(|| {
            crate::fsutil::leftovers::sweep_dir(&temp_root);
        });
        let spec = &attempt::absolute_spec(spec)?;
        let temp = TempDir::create(&temp_root)?;
        let files = attempt::RunFiles::write(&temp, spec)?;
        let filters = self.filters()?;
        let last_cap = *self.last_cap.get_or_init(caps::last_cap);
        let run = |root| {
            attempt::Attempt {
                spec,
                sink,
                temp: &temp,
                files: &files,
                filters,
                last_cap,
                root,
            }
            .run()
        };

        let mode = match self.options.rootfs {
            RootfsMode::Auto if self.overlay_missing.load(Ordering::Relaxed) => RootfsMode::Copy,
            mode => mode,
        };
        let overlay_error = match mode {
            RootfsMode::Copy => None,
            RootfsMode::Overlay => return run(attempt::Root::Overlay).map_err(Failure::into_error),
            RootfsMode::Auto => match run(attempt::Root::Overlay) {
                Err(Failure::RootMount(error, errno)) => {
                    if errno == Errno::ENODEV {
                        self.overlay_missing.store(true, Ordering::Relaxed);
                    }
                    Some(error)
                }
                other => return other.map_err(Failure::into_error),
            },
        };
        run(attempt::Root::Copy).map_err(|failure| match (failure.into_error(), overlay_error) {
            (ExecError::Setup(message), Some(overlay)) => {
                ExecError::Setup(format!("{message} (after overlay failed: {overlay})"))
            }
            (error, _) => error,
        })
    }
}
