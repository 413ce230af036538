//! The OCI-runtime executor: runs a step with `runc` (or any runc-compatible binary) fed a
//! runtime-spec bundle generated with oci-spec.
//!
//! One run: make a private bundle directory with a stub layer and the bind-mounted `/etc`
//! files (bundle.rs) and `config.json` (config.rs); arm a watchdog that cleans up should kiln
//! die (watchdog.rs); on a fresh thread, enter a private mount namespace, mount the overlay
//! rootfs and create the working directory (overlay.rs), and run `runc run`, streaming the
//! step's output and killing the container if the build is cancelled (process.rs); then, back
//! in kiln's namespace, `runc delete --force` if runc left state behind, drop mount points
//! runc had to create in the upperdir, and remove the bundle. It must not know about layers,
//! caches or Dockerfiles: an [`ExecSpec`] is all it sees.
//!
//! Needs root (overlay, mount namespaces) and a runc-compatible binary; tested with Debian
//! 12's runc 1.1.5.

mod bundle;
mod config;
mod overlay;
mod paths;
mod process;
mod watchdog;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use bundle::Bundle;
use config::BundleFiles;
use watchdog::Watchdog;

use super::{ExecError, ExecSpec, Executor, ExitStatus, OutputSink};

/// Runs steps with an OCI runtime binary (runc's command line).
#[derive(Debug, Clone)]
pub struct Runc {
    runtime: PathBuf,
    bundle_root: PathBuf,
}

impl Runc {
    /// An executor using `runtime`: a binary name looked up in `PATH` (`runc`) or a path.
    /// Bundles and runc state go under `/run/kiln/runc` when `/run` is a tmpfs (as runc keeps
    /// its own state in `/run/runc`), else under the system temp directory.
    pub fn new(runtime: impl Into<PathBuf>) -> Self {
        Runc {
            runtime: runtime.into(),
            bundle_root: default_bundle_root(),
        }
    }

    /// Puts bundles and runc state under `dir` (created if missing) instead of the temp dir.
    #[must_use]
    pub fn with_bundle_root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.bundle_root = dir.into();
        self
    }

    /// The runtime binary this executor runs.
    pub fn runtime(&self) -> &Path {
        &self.runtime
    }

    /// The part of a run that needs the bundle: everything up to runc's exit.
    fn run_in(
        &self,
        bundle: &Bundle,
        spec: &ExecSpec,
        command: &str,
        sink: &dyn OutputSink,
    ) -> Result<ExitStatus, ExecError> {
        let files = BundleFiles {
            hosts: &bundle.hosts(),
            resolv_conf: &bundle.resolv_conf(),
        };
        let cgroup = crate::executor::cgroup::runc_path(bundle.id());
        let config = config::runtime_spec(spec, files, &cgroup)?;
        let json = serde_json::to_vec_pretty(&config)
            .map_err(|e| ExecError::Setup(format!("encoding config.json: {e}")))?;
        std::fs::write(bundle.config(), json)
            .map_err(|e| ExecError::Setup(format!("{}: {e}", bundle.config().display())))?;
        std::thread::scope(|scope| {
            // A thread of its own because entering the private namespace cannot be undone.
            let thread = std::thread::Builder::new()
                .name("kiln-runc".to_owned())
                .spawn_scoped(scope, || {
                    overlay::enter_private_namespace()?;
                    overlay::mount_rootfs(bundle)?;
                    let ran = overlay::ensure_dir(&bundle.rootfs(), &spec.cwd)
                        .and_then(|()| process::run(&self.runtime, bundle, command, sink, &cgroup));
                    overlay::unmount_rootfs(&bundle.rootfs());
                    ran
                })
                .map_err(|e| ExecError::Setup(format!("starting the runc thread: {e}")))?;
            thread
                .join()
                .map_err(|_| ExecError::Setup("the runc thread panicked".to_owned()))?
        })
    }

    /// Undoes everything a run may have left, in kiln's own mount namespace.
    fn clean_up(&self, bundle: &Bundle, spec: &ExecSpec) -> Result<(), ExecError> {
        let mut problems = Vec::new();
        // runc run deletes its container when the step ends; state left means it did not
        // get that far (killed, or failed half-way).
        if bundle.state().join(bundle.id()).exists() {
            if let Err(e) = process::delete(&self.runtime, bundle) {
                problems.push(e.to_string());
            }
        }
        if let Err(e) = overlay::forget_volatile(&spec.workdir) {
            problems.push(format!("{}: {e}", spec.workdir.display()));
        }
        if let Err(e) = bundle.remove_stubs(&spec.upperdir) {
            problems.push(format!(
                "removing mount points from {}: {e}",
                spec.upperdir.display()
            ));
        }
        if let Err(e) = bundle.remove() {
            problems.push(format!("removing {}: {e}", bundle.dir().display()));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ExecError::Setup(format!(
                "cleaning up after the step: {}",
                problems.join("; ")
            )))
        }
    }
}

/// A bundle costs some twenty metadata operations, plus runc's own state writes: ~0.2 ms on a
/// tmpfs, ~7 ms on the ext4 of a small VM (measured), for every step.
pub(crate) fn default_bundle_root() -> PathBuf {
    use nix::sys::statfs::{TMPFS_MAGIC, statfs};
    let on_tmpfs = statfs("/run").is_ok_and(|s| s.filesystem_type() == TMPFS_MAGIC);
    if on_tmpfs && nix::unistd::geteuid().is_root() {
        PathBuf::from("/run/kiln/runc")
    } else {
        std::env::temp_dir()
    }
}

impl Default for Runc {
    /// `runc` from `PATH`.
    fn default() -> Self {
        Runc::new("runc")
    }
}

impl Executor for Runc {
    fn run(&self, spec: &ExecSpec, sink: &dyn OutputSink) -> Result<ExitStatus, ExecError> {
        let command = spec
            .args
            .first()
            .ok_or_else(|| ExecError::Setup("the step has no command".to_owned()))?;
        let bundle = Bundle::create(&self.bundle_root, spec)?;
        let watchdog = Watchdog::arm(&self.runtime, &bundle);
        let ran = self.run_in(&bundle, spec, command, sink);
        let cleaned = self.clean_up(&bundle, spec);
        // Stood down only now: until the bundle is gone, kiln dying must still clean up.
        drop(watchdog);
        let status = ran?;
        cleaned?;
        Ok(status)
    }
}
