//! Ctrl-C: SIGINT and SIGTERM are blocked in every thread and received by one waiting
//! thread, which cancels the build (killing running steps) so that it unwinds normally:
//! mounts, temp dirs and half-written blobs are cleaned up by their guards and no image is
//! tagged. A second signal exits at once with 130.

use nix::sys::signal::{SigSet, Signal};

/// Blocks the signals in this thread (threads spawned later inherit the mask; child
/// processes get a clean mask from `std::process::Command`) and starts the waiter.
pub(crate) fn install() {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    if set.thread_block().is_err() {
        return;
    }
    let _ = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut seen = 0;
            while let Ok(sig) = set.wait() {
                seen += 1;
                if seen > 1 {
                    std::process::exit(130);
                }
                crate::stderr::line(&format!("\n{sig}: cancelling the build (again to force)"));
                kiln_solver::cancel::cancel();
            }
        });
}
