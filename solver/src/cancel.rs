//! Build cancellation (Ctrl-C). The binary turns SIGINT/SIGTERM into [`cancel`]; whoever
//! starts a process registers it with [`track`], so cancelling kills it (a container's init,
//! whose death ends its whole PID namespace), its `run` returns, and every temp dir and mount
//! is released by the normal unwinding of guards, with the store left consistent.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

static CANCELLED: AtomicBool = AtomicBool::new(false);
static CHILDREN: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Whether the build was cancelled.
pub fn is_cancelled() -> bool {
    CANCELLED.load(Ordering::SeqCst)
}

/// Cancels the build: kills every tracked process; later [`track`] calls kill at once.
pub fn cancel() {
    CANCELLED.store(true, Ordering::SeqCst);
    let pids: Vec<i32> = CHILDREN.lock().map(|c| c.clone()).unwrap_or_default();
    for pid in pids {
        kill(pid);
    }
}

fn kill(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// Keeps `pid` killable by [`cancel`] until the guard is dropped.
#[derive(Debug)]
pub struct Tracked(i32);

/// Tracks a started process.
pub fn track(pid: i32) -> Tracked {
    if let Ok(mut c) = CHILDREN.lock() {
        c.push(pid);
    }
    // Cancelled between spawn and track: do not let it run on.
    if is_cancelled() {
        kill(pid);
    }
    Tracked(pid)
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Ok(mut c) = CHILDREN.lock() {
            c.retain(|&p| p != self.0);
        }
    }
}
