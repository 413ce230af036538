//! The parent's side of a running step: forwards stdout and stderr to the sink as they arrive,
//! collects the status records, notices interrupts, and waits for the container to exit.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::wait::WaitStatus;

use super::interrupt;
use super::spawn::{Child, ParentEnds};
use super::status::Record;
use crate::executor::{ExecError, OutputSink};

/// How a step's process ended, as seen from the parent.
#[derive(Debug)]
pub(super) struct Outcome {
    /// The init process's wait status.
    pub status: WaitStatus,
    /// What the child reported before exec (stubs made, or the failure).
    pub records: Vec<Record>,
    /// The signal that interrupted kiln meanwhile, if any (the step was then killed).
    pub interrupted: Option<i32>,
    /// The step hit its cgroup's pids limit (it was then killed).
    pub pids_exhausted: bool,
}

/// How often the pids limit is looked at while a step runs.
const LIMIT_TICK_MS: u16 = 200;

/// Poll timeout when the kernel has no pidfd to tell us the child exited.
const NO_PIDFD_TICK_MS: u16 = 50;

struct Stream {
    fd: OwnedFd,
    /// 1 or 2 for output; 0 for the status pipe.
    id: u8,
    open: bool,
}

/// Runs the parent's loop until the container exits.
pub(super) fn pump(
    child: &mut Child,
    ends: ParentEnds,
    sink: &dyn OutputSink,
    cgroup: Option<&crate::executor::cgroup::StepCgroup>,
) -> Result<Outcome, ExecError> {
    let mut streams = [
        Stream {
            fd: ends.stdout,
            id: 1,
            open: true,
        },
        Stream {
            fd: ends.stderr,
            id: 2,
            open: true,
        },
        Stream {
            fd: ends.status,
            id: 0,
            open: true,
        },
    ];
    for s in &streams {
        set_nonblocking(s.fd.as_fd())?;
    }
    let mut status_bytes = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut killed = false;
    let mut interrupted = None;
    let mut pids_exhausted = false;
    loop {
        if !killed && let Some(sig) = interrupt::interrupted() {
            child.kill();
            killed = true;
            interrupted = Some(sig);
        }
        // A fork refused for the pids limit ends the step: what hits it is a runaway.
        if !killed && cgroup.is_some_and(|c| c.pids_exhausted()) {
            child.kill();
            killed = true;
            pids_exhausted = true;
        }
        let exited = wait_ready(child, &streams, !killed, cgroup.is_some())?;
        for s in streams.iter_mut().filter(|s| s.open) {
            drain(s, &mut buf, sink, &mut status_bytes)?;
        }
        if exited || child.try_wait()? {
            // Every process of the step is gone (the namespace's init dies last), so what
            // is left in the pipes is all there is; the write ends may still be held briefly
            // by a concurrent step's child before its exec, so do not wait for EOF.
            for s in streams.iter_mut().filter(|s| s.open) {
                drain(s, &mut buf, sink, &mut status_bytes)?;
            }
            break;
        }
    }
    let status = child.wait()?;
    Ok(Outcome {
        status,
        records: Record::decode_all(&status_bytes),
        interrupted,
        pids_exhausted,
    })
}

/// Blocks until a pipe, the pidfd or the interrupt pipe is ready; true if the child exited.
fn wait_ready(
    child: &Child,
    streams: &[Stream; 3],
    watch_interrupts: bool,
    watch_limit: bool,
) -> Result<bool, ExecError> {
    let mut fds: Vec<PollFd<'_>> = streams
        .iter()
        .filter(|s| s.open)
        .map(|s| PollFd::new(s.fd.as_fd(), PollFlags::POLLIN))
        .collect();
    let pipes = fds.len();
    let pidfd = child.pidfd().map(|fd| fd.as_fd());
    if let Some(fd) = pidfd {
        fds.push(PollFd::new(fd, PollFlags::POLLIN));
    }
    if watch_interrupts && let Some(fd) = interrupt::wake_fd() {
        fds.push(PollFd::new(fd, PollFlags::POLLIN));
    }
    let timeout = if pidfd.is_none() {
        PollTimeout::from(NO_PIDFD_TICK_MS)
    } else if watch_limit {
        PollTimeout::from(LIMIT_TICK_MS)
    } else {
        PollTimeout::NONE
    };
    match poll(&mut fds, timeout) {
        Ok(_) | Err(Errno::EINTR) => {}
        Err(e) => return Err(ExecError::Setup(format!("polling the step's output: {e}"))),
    }
    Ok(pidfd.is_some() && fds[pipes].any().unwrap_or(false))
}

/// Reads what is available; closes the stream at end-of-file.
fn drain(
    s: &mut Stream,
    buf: &mut [u8],
    sink: &dyn OutputSink,
    status: &mut Vec<u8>,
) -> Result<(), ExecError> {
    loop {
        match nix::unistd::read(s.fd.as_fd(), buf) {
            Ok(0) => {
                s.open = false;
                return Ok(());
            }
            Ok(n) if s.id == 0 => status.extend_from_slice(&buf[..n]),
            Ok(n) => sink.write(s.id, &buf[..n]),
            Err(Errno::EAGAIN) => return Ok(()),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(ExecError::Setup(format!("reading the step's output: {e}"))),
        }
    }
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> Result<(), ExecError> {
    let flags =
        fcntl(fd, FcntlArg::F_GETFL).map_err(|e| ExecError::Setup(format!("fcntl: {e}")))?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(fd, FcntlArg::F_SETFL(flags)).map_err(|e| ExecError::Setup(format!("fcntl: {e}")))?;
    Ok(())
}
