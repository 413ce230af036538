//! Ctrl-C and SIGTERM while steps run: kill the containers, clean up, then let the signal do
//! what it would have done.
//!
//! The first run installs a SIGINT/SIGTERM handler (never over SIG_IGN) that records the
//! signal and writes a byte to a wake-up pipe every running step polls. Each step then kills
//! its container (SIGKILL to the PID-namespace init takes the whole tree down), reaps it,
//! removes its temp dir, and returns an error. The handler chains to whatever handler was
//! installed before; if there was none (SIG_DFL), the last step to finish its cleanup restores
//! the default action and re-raises the signal, so kiln dies of it as it would have without
//! us, only later. With no step running, the signal acts at once.
//!
//! What a signal cannot cover: SIGKILL of kiln. The container then dies through its
//! parent-death signal and the kernel removes its mounts with its mount namespace; only the
//! temp dir stays, and the next run's sweep removes it (see `tempdir`).

#![allow(unsafe_code)]

use std::os::fd::{BorrowedFd, IntoRawFd, RawFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering::SeqCst};

use nix::fcntl::OFlag;
use nix::libc;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

use crate::executor::ExecError;

/// The first interrupting signal, or 0.
static INTERRUPTED: AtomicI32 = AtomicI32::new(0);
/// Steps between [`ActiveRun::enter`] and its drop.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
/// The wake-up pipe's write end (the handler's) and read end (the steps'), or -1.
static WAKE_WRITE: AtomicI32 = AtomicI32::new(-1);
static WAKE_READ: AtomicI32 = AtomicI32::new(-1);
/// The actions in place before ours, for SIGINT and SIGTERM.
static PREVIOUS: [OnceLock<SigAction>; 2] = [OnceLock::new(), OnceLock::new()];
static INSTALLED: OnceLock<Result<(), HandlerError>> = OnceLock::new();

const SIGNALS: [Signal; 2] = [Signal::SIGINT, Signal::SIGTERM];

/// Marks a step as running for the signal handler; see the module docs.
#[derive(Debug)]
pub(super) struct ActiveRun(());

impl ActiveRun {
    /// Installs the handler (once per process) and counts this step in. Refuses to start a
    /// step once an interrupt has been seen.
    pub(super) fn enter() -> Result<Self, ExecError> {
        (*INSTALLED.get_or_init(install)).map_err(|e| ExecError::Setup(e.to_string()))?;
        ACTIVE.fetch_add(1, SeqCst);
        let guard = ActiveRun(());
        if let Some(sig) = interrupted() {
            return Err(ExecError::Setup(format!(
                "not starting the step: interrupted by {}",
                name(sig)
            )));
        }
        Ok(guard)
    }
}

impl Drop for ActiveRun {
    fn drop(&mut self) {
        if ACTIVE.fetch_sub(1, SeqCst) == 1
            && let Some(sig) = interrupted()
            && previous_is_default(sig)
        {
            die(sig);
        }
    }
}

/// The interrupting signal, once one arrived.
pub(super) fn interrupted() -> Option<i32> {
    match INTERRUPTED.load(SeqCst) {
        // kiln's binary blocks SIGINT/SIGTERM in every thread and turns them into
        // `cancel::cancel()` instead, which kills the tracked container init: report that
        // as the interrupt it is.
        0 if crate::cancel::is_cancelled() => Some(libc::SIGINT),
        0 => None,
        sig => Some(sig),
    }
}

/// The descriptor that becomes readable when a signal arrives.
pub(super) fn wake_fd() -> Option<BorrowedFd<'static>> {
    match WAKE_READ.load(SeqCst) {
        -1 => None,
        // SAFETY: the read end is created once and never closed for the life of the process.
        fd => Some(unsafe { BorrowedFd::borrow_raw(fd) }),
    }
}

/// A signal's name for messages.
pub(super) fn name(sig: i32) -> String {
    Signal::try_from(sig).map_or_else(|_| format!("signal {sig}"), |s| s.as_str().to_owned())
}

/// Why the interrupt handler could not be put in place.
#[derive(Debug, Clone, Copy, thiserror::Error)]
enum HandlerError {
    /// The wake-up pipe.
    #[error("creating the interrupt pipe: {0}")]
    Pipe(nix::errno::Errno),
    /// `sigaction` for a signal.
    #[error("installing a {0} handler: {1}")]
    Install(Signal, nix::errno::Errno),
    /// Putting back an ignored signal's action.
    #[error("restoring {0}: {1}")]
    Restore(Signal, nix::errno::Errno),
}

fn install() -> Result<(), HandlerError> {
    let (read, write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(HandlerError::Pipe)?;
    // Both ends live for the rest of the process: the handler may run at any time.
    WAKE_READ.store(read.into_raw_fd(), SeqCst);
    WAKE_WRITE.store(write.into_raw_fd(), SeqCst);
    let ours = SigAction::new(
        SigHandler::SigAction(on_signal),
        SaFlags::SA_RESTART | SaFlags::SA_SIGINFO,
        SigSet::empty(),
    );
    for (slot, sig) in PREVIOUS.iter().zip(SIGNALS) {
        // SAFETY: `on_signal` only does async-signal-safe work (atomics, write, sigaction,
        // raise, and the previous handler, which was itself installed as a signal handler).
        let previous =
            unsafe { sigaction(sig, &ours) }.map_err(|e| HandlerError::Install(sig, e))?;
        let _ = slot.set(previous);
        if matches!(previous.handler(), SigHandler::SigIgn) {
            // An ignored signal stays ignored: kiln was told not to stop on it.
            // SAFETY: puts back the action that was in place.
            unsafe { sigaction(sig, &previous) }.map_err(|e| HandlerError::Restore(sig, e))?;
        }
    }
    Ok(())
}

fn previous(sig: i32) -> Option<&'static SigAction> {
    let index = SIGNALS.iter().position(|s| *s as i32 == sig)?;
    PREVIOUS[index].get()
}

fn previous_is_default(sig: i32) -> bool {
    previous(sig).is_some_and(|a| matches!(a.handler(), SigHandler::SigDfl))
}

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let saved_errno = nix::errno::Errno::last_raw();
    let _ = INTERRUPTED.compare_exchange(0, sig, SeqCst, SeqCst);
    let fd: RawFd = WAKE_WRITE.load(SeqCst);
    if fd >= 0 {
        // SAFETY: writes one byte from a static buffer to our own non-blocking pipe; a full
        // pipe (EAGAIN) is fine: it is readable already.
        unsafe { libc::write(fd, b"!".as_ptr().cast(), 1) };
    }
    match previous(sig).map(SigAction::handler) {
        Some(SigHandler::Handler(f)) => f(sig),
        Some(SigHandler::SigAction(f)) => f(sig, info, context),
        Some(SigHandler::SigDfl) if ACTIVE.load(SeqCst) == 0 => die(sig),
        _ => {}
    }
    nix::errno::Errno::set_raw(saved_errno);
}

/// Restores the default action and raises the signal: the process ends as the signal says.
fn die(sig: i32) {
    // SAFETY: an all-zero `sigaction` is SIG_DFL with an empty mask; `raise` is
    // async-signal-safe. Inside the handler the signal is blocked, so it is delivered (with
    // the default action) when the handler returns.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(sig, &action, std::ptr::null_mut());
        libc::raise(sig);
    }
}
