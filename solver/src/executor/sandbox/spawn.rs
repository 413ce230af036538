//! Starting the container process: the pipes, `clone` into a new PID namespace, and the guard
//! that kills and reaps it whatever happens to the parent's code afterwards.

#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::libc;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, pthread_sigmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::child;
use super::plan::ChildPlan;
use crate::executor::ExecError;

/// The parent's ends of the child's pipes.
#[derive(Debug)]
pub(super) struct ParentEnds {
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    pub status: OwnedFd,
}

/// The child's ends; closed in the parent once the child has its copies.
#[derive(Debug)]
pub(super) struct ChildEnds {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    pub status: OwnedFd,
}

/// Creates the pipes (all close-on-exec, so concurrent steps never inherit each other's)
/// and opens /dev/null for stdin.
pub(super) fn pipes() -> Result<(ParentEnds, ChildEnds), ExecError> {
    let pipe = |what: &str| {
        nix::unistd::pipe2(OFlag::O_CLOEXEC)
            .map_err(|e| ExecError::Setup(format!("creating the {what} pipe: {e}")))
    };
    let (out_r, out_w) = pipe("stdout")?;
    let (err_r, err_w) = pipe("stderr")?;
    let (st_r, st_w) = pipe("status")?;
    let stdin = nix::fcntl::open(
        c"/dev/null",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| ExecError::Setup(format!("opening /dev/null: {e}")))?;
    Ok((
        ParentEnds {
            stdout: out_r,
            stderr: err_r,
            status: st_r,
        },
        ChildEnds {
            stdin,
            stdout: out_w,
            stderr: err_w,
            status: st_w,
        },
    ))
}

/// A running (or exited, not yet reaped) container process. Dropping it kills and reaps it.
#[derive(Debug)]
pub(super) struct Child {
    pid: Pid,
    pidfd: Option<OwnedFd>,
    status: Option<WaitStatus>,
}

impl Child {
    /// A pidfd that polls readable when the process has exited (None on kernels before 5.3).
    pub(super) fn pidfd(&self) -> Option<&OwnedFd> {
        self.pidfd.as_ref()
    }

    /// The process id (the container's init).
    pub(super) fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// SIGKILL: as the PID namespace's init, its death takes every process of the step.
    pub(super) fn kill(&self) {
        if self.status.is_none() {
            let _ = kill(self.pid, Signal::SIGKILL);
        }
    }

    /// Reaps the process if it has exited; true once it has.
    pub(super) fn try_wait(&mut self) -> Result<bool, ExecError> {
        if self.status.is_some() {
            return Ok(true);
        }
        match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => Ok(false),
            Ok(status) => {
                self.status = Some(status);
                Ok(true)
            }
            Err(nix::errno::Errno::EINTR) => Ok(false),
            Err(e) => Err(ExecError::Setup(format!(
                "waiting for process {}: {e}",
                self.pid
            ))),
        }
    }

    /// Waits for the process to exit and returns how it ended.
    pub(super) fn wait(&mut self) -> Result<WaitStatus, ExecError> {
        loop {
            if let Some(status) = self.status {
                return Ok(status);
            }
            match waitpid(self.pid, None) {
                Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(status) => self.status = Some(status),
                Err(e) => {
                    return Err(ExecError::Setup(format!(
                        "waiting for process {}: {e}",
                        self.pid
                    )));
                }
            }
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.status.is_none() {
            self.kill();
            let _ = self.wait();
        }
    }
}

/// Clones the container process into a new PID namespace and runs `plan` in it.
///
/// A raw `clone` (fork semantics, no new stack) rather than `fork` so the child is born in
/// the new PID namespace as its init; the other namespaces are unshared by the child itself.
/// All signals are blocked around the call so none is handled in the child by a copy of the
/// parent's handlers before it resets them.
pub(super) fn spawn(plan: &mut ChildPlan, ends: ChildEnds) -> Result<Child, ExecError> {
    let mut old_mask = SigSet::empty();
    pthread_sigmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut old_mask),
    )
    .map_err(|e| ExecError::Setup(format!("blocking signals: {e}")))?;
    let flags = (libc::CLONE_NEWPID | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: with a NULL stack, clone behaves like fork: the child continues on a private
    // copy of this stack. The child only runs `child::main`, which never returns, does not
    // allocate or lock, and ends in execve or _exit.
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if ret == 0 {
        child::main(plan, ends.status.as_raw_fd());
    }
    let clone_error = nix::errno::Errno::last();
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old_mask), None);
    drop(ends);
    if ret < 0 {
        let hint = if clone_error == nix::errno::Errno::EPERM {
            crate::executor::rootless::NAMESPACES_REFUSED
        } else {
            ""
        };
        return Err(ExecError::Setup(format!(
            "clone(CLONE_NEWPID): {clone_error}{hint}"
        )));
    }
    let pid = Pid::from_raw(ret as libc::pid_t);
    // Not fatal when missing (kernels before 5.3): the output loop then polls with a timeout.
    let pidfd = rustix::process::Pid::from_raw(pid.as_raw())
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok());
    Ok(Child {
        pid,
        pidfd,
        status: None,
    })
}
