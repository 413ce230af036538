//! Driving the runc binary: `runc run` with the step's output streamed as it arrives, the
//! mapping of its exit status, `runc kill` when the build is cancelled, and `runc delete
//! --force`.
//!
//! runc passes its own stdout/stderr straight to the container (no terminal), so the step's
//! bytes never go through runc — but runc's own fatal message is printed on that same stderr
//! too. It also goes to `--log` as JSON, and that is how a runc failure (exit 1 plus an
//! `error` entry) is told apart from a step that exits 1 (no entry).

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::bundle::Bundle;
use crate::executor::{ExecError, ExitStatus, OutputSink};

/// What runc prefixes to an exec failure inside the container (runc 1.1).
const EXEC_FAILED: &str = "unable to start container process: exec: ";

/// The highest signal number; runc reports death by signal `n` as exit status 128 + n.
const SIGRTMAX: i32 = 64;

/// Runs the bundle's container to completion with runtime binary `runtime`, forwarding its
/// output to `sink`.
pub(super) fn run(
    runtime: &Path,
    bundle: &Bundle,
    command: &str,
    sink: &dyn OutputSink,
    cgroup: &str,
) -> Result<ExitStatus, ExecError> {
    let mut child = Command::new(runtime)
        .arg("--root")
        .arg(bundle.state())
        .arg("--log")
        .arg(bundle.log())
        .args(["--log-format", "json", "run", "--bundle"])
        .arg(bundle.dir())
        .arg(bundle.id())
        .current_dir(bundle.dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| runtime_error(runtime, spawn_message(&e)))?;
    // A cancelled build (Ctrl-C, see crate::cancel) must not wait for the step: runc only
    // forwards signals to the container's PID 1, which ignores them, so kill it through runc.
    let mut killed = false;
    let mut pids_exhausted = false;
    let streamed = forward(&mut child, sink, || {
        if !killed && crate::cancel::is_cancelled() {
            // Fails until runc has created the container; the next tick tries again.
            killed = kill(runtime, bundle).is_ok();
        }
        // A fork refused for the pids limit ends the step, as in the sandbox.
        if !killed && crate::executor::cgroup::pids_exhausted_at(cgroup) {
            killed = kill(runtime, bundle).is_ok();
            pids_exhausted = true;
        }
    });
    if streamed.is_err() {
        // Cannot happen short of a broken pipe; stop runc rather than block on it. The
        // container it leaves is removed by `runc delete --force` in the caller's cleanup.
        let _ = child.kill();
    }
    let status = child
        .wait()
        .map_err(|e| runtime_error(runtime, format!("waiting for runc: {e}")))?;
    streamed.map_err(|e| runtime_error(runtime, format!("reading the step's output: {e}")))?;
    if pids_exhausted {
        return Err(ExecError::Setup(format!(
            "the step reached its limit of {} processes and was stopped (a fork bomb?)",
            crate::executor::cgroup::PIDS_LIMIT
        )));
    }
    let log = std::fs::read_to_string(bundle.log()).unwrap_or_default();
    classify(status, &log, command, runtime)
}

/// `runc kill <id> KILL`: the container's PID 1 dies, and its PID namespace with it; `runc
/// run` then reports 137 and removes the container as usual.
fn kill(runtime: &Path, bundle: &Bundle) -> Result<(), ExecError> {
    let out = Command::new(runtime)
        .arg("--root")
        .arg(bundle.state())
        .arg("kill")
        .arg(bundle.id())
        .arg("KILL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| runtime_error(runtime, spawn_message(&e)))?;
    if out.success() {
        Ok(())
    } else {
        Err(runtime_error(
            runtime,
            format!("kill {}: {out}", bundle.id()),
        ))
    }
}

/// `runc delete --force`: kills the container if it still runs and removes its state.
pub(super) fn delete(runtime: &Path, bundle: &Bundle) -> Result<(), ExecError> {
    let out = Command::new(runtime)
        .arg("--root")
        .arg(bundle.state())
        .args(["delete", "--force"])
        .arg(bundle.id())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| runtime_error(runtime, spawn_message(&e)))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(runtime_error(
            runtime,
            format!(
                "delete --force {}: {}",
                bundle.id(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ))
    }
}

/// How often [`forward`] wakes up to look for a cancelled build when the step is quiet.
const TICK_MS: u16 = 100;

/// Copies the child's stdout and stderr to `sink` as they arrive, until both are closed —
/// which happens when the container's last process exits (the PID namespace ends with it).
/// Calls `tick` at least every [`TICK_MS`].
fn forward(child: &mut Child, sink: &dyn OutputSink, mut tick: impl FnMut()) -> io::Result<()> {
    let mut streams: [(u8, Option<File>); 2] = [
        (1, child.stdout.take().map(|s| File::from(OwnedFd::from(s)))),
        (2, child.stderr.take().map(|s| File::from(OwnedFd::from(s)))),
    ];
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let ready: Vec<usize> = {
            let (open, mut fds): (Vec<usize>, Vec<PollFd<'_>>) = streams
                .iter()
                .enumerate()
                .filter_map(|(i, (_, f))| {
                    f.as_ref()
                        .map(|f| (i, PollFd::new(f.as_fd(), PollFlags::POLLIN)))
                })
                .unzip();
            if open.is_empty() {
                return Ok(());
            }
            let polled = poll(&mut fds, PollTimeout::from(TICK_MS));
            tick();
            match polled {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            open.into_iter()
                .zip(&fds)
                .filter(|(_, fd)| fd.revents().is_some_and(|r| !r.is_empty()))
                .map(|(i, _)| i)
                .collect()
        };
        for i in ready {
            let (stream, slot) = &mut streams[i];
            let Some(file) = slot else { continue };
            match file.read(&mut buf) {
                Ok(0) => *slot = None,
                Ok(n) => sink.write(*stream, &buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Maps how runc ended. An `error` entry in its log means runc itself failed (exec of the
/// command included); otherwise its status is the step's: `n` for exit code `n`, 128 + `s`
/// for death by signal `s` — runc cannot say which, so 129..=192 read as signals, the way a
/// shell reports them.
pub(super) fn classify(
    status: std::process::ExitStatus,
    log: &str,
    command: &str,
    runtime: &Path,
) -> Result<ExitStatus, ExecError> {
    let Some(code) = status.code() else {
        let signal = status.signal().unwrap_or_default();
        return Err(runtime_error(runtime, format!("killed by signal {signal}")));
    };
    if code == 0 {
        return Ok(ExitStatus::Code(0));
    }
    let errors = log_errors(log);
    if !errors.is_empty() {
        let message = errors.join("; ");
        if let Some(at) = message.find(EXEC_FAILED) {
            return Err(ExecError::Start {
                command: command.to_owned(),
                message: message[at + EXEC_FAILED.len()..].to_owned(),
            });
        }
        return Err(runtime_error(runtime, message));
    }
    if (129..=128 + SIGRTMAX).contains(&code) {
        Ok(ExitStatus::Signal(code - 128))
    } else {
        Ok(ExitStatus::Code(code))
    }
}

/// The messages of runc's `error`-or-worse log entries (one JSON object a line).
fn log_errors(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|entry| {
            matches!(
                entry.get("level").and_then(|l| l.as_str()),
                Some("error" | "fatal" | "panic")
            )
        })
        .filter_map(|entry| entry.get("msg").and_then(|m| m.as_str()).map(str::to_owned))
        .collect()
}

/// Why spawning the runtime failed, with the usual cause spelled out.
fn spawn_message(e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::NotFound {
        "not found (install runc, or give --runtime a path)".to_owned()
    } else {
        e.to_string()
    }
}

/// An [`ExecError::Runtime`] for `runtime`.
fn runtime_error(runtime: &Path, message: String) -> ExecError {
    ExecError::Runtime {
        runtime: runtime.display().to_string(),
        message,
    }
}
