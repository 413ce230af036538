//! Cleanup that outlives kiln.
//!
//! The terminal's Ctrl-C never reaches the step itself: runc puts the container in a session
//! of its own, and runc — in kiln's process group, so it does get the SIGINT — only forwards
//! it to the container's PID 1, which ignores it unless it installed a handler (a PID
//! namespace's init gets no default actions). A cancelled build (`crate::cancel`, set by
//! kiln's signal thread on the first Ctrl-C) is handled in process.rs with `runc kill`, and
//! the run unwinds normally. What remains is kiln dying without unwinding — a second Ctrl-C,
//! SIGKILL, a crash, a library user with SIGINT's default action — so each run arms a
//! watchdog: a `/bin/sh` in its own process group (the terminal's signals spare it) reading a
//! pipe from kiln. When kiln finishes the run it writes `done` and the watchdog exits; if kiln
//! dies first the pipe reads end-of-file and the watchdog runs `runc delete --force` —
//! killing the container and removing its state and cgroups — then removes the bundle. The
//! overlay needs nothing: it lives in a mount namespace that ends with the container (see
//! overlay.rs). Measured: ~1 ms a step to arm and stand down.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::bundle::Bundle;

/// `$1` runtime, `$2` runc root, `$3` container id, `$4` bundle.
const SCRIPT: &str = r#"trap '' INT HUP TERM QUIT
IFS= read -r line
[ "$line" = done ] && exit 0
"$1" --root "$2" delete --force "$3" >/dev/null 2>&1
rm -rf -- "$4"
"#;

/// A watchdog armed for one bundle; dropping it stands it down.
#[derive(Debug)]
pub(super) struct Watchdog {
    child: Child,
}

impl Watchdog {
    /// Arms a watchdog for `bundle`. Best effort: without `/bin/sh` the run goes on, covered
    /// by in-process cleanup only.
    pub(super) fn arm(runtime: &Path, bundle: &Bundle) -> Option<Self> {
        Command::new("/bin/sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("kiln-runc-watchdog")
            .arg(runtime)
            .arg(bundle.state())
            .arg(bundle.id())
            .arg(bundle.dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .ok()
            .map(|child| Watchdog { child })
    }
}

#[cfg(test)]
impl Watchdog {
    /// Closes the pipe without standing down, as kiln's death would, and waits for the
    /// watchdog to finish.
    pub(super) fn abandon(mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.write_all(b"done\n");
        }
        let _ = self.child.wait();
    }
}
