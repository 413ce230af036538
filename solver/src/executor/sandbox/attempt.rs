//! One try at running a step on a given kind of root (overlay, or the copy fallback):
//! prepare the root, start the container, forward its output, then turn what happened into
//! an [`ExitStatus`] or an error, after removing mount stubs from the result.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::wait::WaitStatus;
use seccompiler::BpfProgram;

use super::build::{self, Context, DEFAULT_HOSTNAME, RootSource};
use super::plan::{ChildPlan, Op};
use super::status::Record;
use super::tempdir::TempDir;
use super::{copyfs, etc_files, forward, interrupt, overlay, skeleton, spawn, stubs};
use crate::executor::{ExecError, ExecSpec, ExitStatus, MountSpec, OutputSink};

/// The kind of root to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Root {
    Overlay,
    Copy,
}

/// Why an attempt failed: the overlay could not be mounted (the copy may still work), or
/// anything else.
#[derive(Debug)]
pub(super) enum Failure {
    RootMount(ExecError, Errno),
    Other(ExecError),
}

impl Failure {
    pub(super) fn into_error(self) -> ExecError {
        match self {
            Failure::RootMount(e, _) | Failure::Other(e) => e,
        }
    }
}

impl From<ExecError> for Failure {
    fn from(e: ExecError) -> Self {
        Failure::Other(e)
    }
}

/// What a run prepares once for its attempts: the generated /etc files and the mount-point
/// skeleton layer.
#[derive(Debug)]
pub(super) struct RunFiles {
    hosts: PathBuf,
    resolv: PathBuf,
    skeleton: PathBuf,
}

impl RunFiles {
    pub(super) fn write(temp: &TempDir, spec: &ExecSpec) -> Result<Self, ExecError> {
        let hostname = if spec.hostname.is_empty() {
            DEFAULT_HOSTNAME
        } else {
            &spec.hostname
        };
        let host_resolv = std::fs::read_to_string(etc_files::HOST_RESOLV_CONF).ok();
        let skeleton = temp.path().join("skeleton");
        skeleton::create(&skeleton, spec)?;
        Ok(RunFiles {
            hosts: temp.file("hosts", &etc_files::hosts(hostname))?,
            resolv: temp.file(
                "resolv.conf",
                &etc_files::resolv_conf(host_resolv.as_deref(), spec.network),
            )?,
            skeleton,
        })
    }

    /// The step's layers with the skeleton below them all.
    fn lowers(&self, spec: &ExecSpec) -> Vec<PathBuf> {
        let mut lowers = spec.lowerdirs.clone();
        lowers.push(self.skeleton.clone());
        lowers
    }
}

/// Everything one attempt needs.
pub(super) struct Attempt<'a> {
    pub(super) spec: &'a ExecSpec,
    pub(super) sink: &'a dyn OutputSink,
    pub(super) temp: &'a TempDir,
    pub(super) files: &'a RunFiles,
    pub(super) filters: &'a [BpfProgram],
    pub(super) last_cap: u32,
    pub(super) root: Root,
}

impl Attempt<'_> {
    pub(super) fn run(self) -> Result<ExitStatus, Failure> {
        let spec = self.spec;
        let mount_point = self.temp.subdir("root")?;
        let (root, baseline) = self.prepare_root()?;

        // A cgroup of its own: a pids limit (a fork bomb ends the step, not the machine).
        let cgroup = crate::executor::cgroup::StepCgroup::create(&Default::default());
        let cgroup_procs = cgroup.as_ref().map(|c| c.procs_files()).unwrap_or_default();
        let (parent_ends, child_ends) = spawn::pipes()?;
        let ctx = Context {
            mount_point: &mount_point,
            root: &root,
            hosts: &self.files.hosts,
            resolv: &self.files.resolv,
            stdio: (
                child_ends.stdin.as_raw_fd(),
                child_ends.stdout.as_raw_fd(),
                child_ends.stderr.as_raw_fd(),
            ),
            last_cap: self.last_cap,
            filters: self.filters,
            cgroup_procs: &cgroup_procs,
        };
        let mut plan = build::build(spec, &ctx)?;
        let mut child = spawn::spawn(&mut plan, child_ends)?;
        // `cancel::cancel()` (kiln's Ctrl-C) SIGKILLs the init, which ends the whole step.
        let tracked = crate::cancel::track(child.pid());
        let outcome = forward::pump(&mut child, parent_ends, self.sink, cgroup.as_ref())?;
        drop(tracked);
        drop(child);

        // The container is gone, and with its mount namespace every mount: the result can be
        // tidied and read.
        let stubs = stubs::collect(&plan.ops, &outcome.records);
        match &root {
            RootSource::Overlay(_) => {
                stubs::remove(&spec.upperdir, &stubs);
                // `volatile` leaves a marker that would refuse a later mount of this pair.
                let _ = std::fs::remove_dir_all(spec.workdir.join("work").join("incompat"));
            }
            RootSource::Copy(rootfs) => stubs::remove(rootfs, &stubs),
        }
        if let Some(sig) = outcome.interrupted {
            let message = format!(
                "interrupted by {}: the step was killed",
                interrupt::name(sig)
            );
            return Err(Failure::Other(ExecError::Setup(message)));
        }
        if outcome.pids_exhausted {
            return Err(Failure::Other(ExecError::Setup(format!(
                "the step reached its limit of {} processes and was stopped (a fork bomb?)",
                crate::executor::cgroup::PIDS_LIMIT
            ))));
        }
        if let Some(failure) = self.child_failure(&plan, &outcome.records) {
            return Err(failure);
        }
        if let (RootSource::Copy(rootfs), Some(baseline)) = (&root, &baseline) {
            copyfs::commit(rootfs, baseline, &spec.upperdir)?;
        }
        match outcome.status {
            WaitStatus::Exited(_, code) => Ok(ExitStatus::Code(code)),
            WaitStatus::Signaled(_, sig, _) => Ok(ExitStatus::Signal(sig as i32)),
            other => Err(Failure::Other(ExecError::Setup(format!(
                "unexpected wait status {other:?}"
            )))),
        }
    }

    fn prepare_root(&self) -> Result<(RootSource, Option<copyfs::Baseline>), ExecError> {
        let spec = self.spec;
        let temp = self.temp;
        if self.root == Root::Copy {
            let rootfs = temp.path().join("rootfs");
            let baseline = copyfs::prepare(&self.files.lowers(spec), &rootfs)?;
            return Ok((RootSource::Copy(rootfs), Some(baseline)));
        }
        let plan = overlay::plan(
            &self.files.lowers(spec),
            &spec.upperdir,
            &spec.workdir,
            temp.path(),
        )
        .map_err(|e| ExecError::Setup(e.to_string()))?;
        for (_, point) in &plan.binds {
            std::fs::create_dir_all(point)
                .map_err(|e| ExecError::Setup(format!("creating {}: {e}", point.display())))?;
        }
        Ok((RootSource::Overlay(plan), None))
    }

    /// The failure the child reported before exec, if any.
    fn child_failure(&self, plan: &ChildPlan, records: &[Record]) -> Option<Failure> {
        records.iter().find_map(|record| match *record {
            Record::OpFailed { op, errno } => {
                let errno = Errno::from_raw(errno);
                let op = plan.ops.get(op as usize);
                let what = op.map_or_else(|| "setting up".to_owned(), Op::describe);
                let error = ExecError::Setup(format!("{what}: {errno}"));
                Some(match op {
                    Some(Op::RootMount { .. }) if self.root == Root::Overlay => {
                        Failure::RootMount(error, errno)
                    }
                    _ => Failure::Other(error),
                })
            }
            Record::ExecFailed { errno } => {
                Some(Failure::Other(start_error(self.spec, plan, errno)))
            }
            Record::Stub { .. } => None,
        })
    }
}

fn start_error(spec: &ExecSpec, plan: &ChildPlan, errno: i32) -> ExecError {
    let errno = Errno::from_raw(errno);
    let command = spec.args.first().cloned().unwrap_or_default();
    let message = match (&plan.exec.search_path, errno) {
        (Some(path), Errno::ENOENT) => format!("executable file not found in PATH ({path})"),
        (_, errno) => errno.desc().to_owned(),
    };
    ExecError::Start { command, message }
}

/// The spec with host paths made absolute (the child changes directory before using them)
/// and checked, so a missing layer is reported as such rather than as an overlay failure.
pub(super) fn absolute_spec(spec: &ExecSpec) -> Result<ExecSpec, ExecError> {
    let dir = |p: &Path, what: &str| -> Result<PathBuf, ExecError> {
        let abs = std::path::absolute(p)
            .map_err(|e| ExecError::Setup(format!("{what} {}: {e}", p.display())))?;
        match std::fs::metadata(&abs) {
            Ok(m) if m.is_dir() => Ok(abs),
            Ok(_) => Err(ExecError::Setup(format!(
                "{what} {} is not a directory",
                abs.display()
            ))),
            Err(e) => Err(ExecError::Setup(format!("{what} {}: {e}", abs.display()))),
        }
    };
    let mut out = spec.clone();
    out.lowerdirs = spec
        .lowerdirs
        .iter()
        .map(|l| dir(l, "lowerdir"))
        .collect::<Result<_, _>>()?;
    out.upperdir = dir(&spec.upperdir, "upperdir")?;
    out.workdir = dir(&spec.workdir, "workdir")?;
    for m in &mut out.mounts {
        if let MountSpec::Bind { source, .. } = m {
            let abs = std::path::absolute(&*source)
                .map_err(|e| ExecError::Setup(format!("bind source {}: {e}", source.display())))?;
            std::fs::metadata(&abs)
                .map_err(|e| ExecError::Setup(format!("bind source {}: {e}", abs.display())))?;
            *source = abs;
        }
    }
    Ok(out)
}
