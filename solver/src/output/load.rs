//! `--load` and `type=docker` without `dest=`: the docker archive streamed into
//! `docker load`, or `podman load` where that is what is installed.

use std::io::{Read as _, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use super::OutputError;

/// The first of `docker`, `podman` on `PATH`.
fn loader() -> Option<&'static str> {
    let path = std::env::var_os("PATH")?;
    ["docker", "podman"].into_iter().find(|tool| {
        std::env::split_paths(&path).any(|dir| {
            let candidate = dir.join(tool);
            std::fs::metadata(&candidate).is_ok_and(|m| m.is_file())
        })
    })
}

/// Runs `<tool> load`, hands `write` its stdin, and returns what the tool printed
/// (`Loaded image: app:1.0`).
pub(super) fn load(
    write: impl FnOnce(&mut dyn Write, &Path) -> Result<(), OutputError>,
) -> Result<String, OutputError> {
    let Some(tool) = loader() else {
        return Err(OutputError::Load(
            "neither docker nor podman is on PATH: install one, or write the archive with \
             -o type=docker,dest=FILE"
                .into(),
        ));
    };
    let mut child = Command::new(tool)
        .arg("load")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| OutputError::Load(format!("starting `{tool} load`: {e}")))?;
    let label = format!("`{tool} load`");
    let written = match child.stdin.take() {
        Some(mut stdin) => {
            let result = write(&mut stdin, Path::new(&label));
            // Closing stdin is what tells the tool the archive is complete.
            drop(stdin);
            result
        }
        None => Err(OutputError::Load(format!("{label} has no stdin"))),
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut stdout);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    let status = child
        .wait()
        .map_err(|e| OutputError::Load(format!("waiting for {label}: {e}")))?;
    if !status.success() {
        return Err(OutputError::Load(format!(
            "{label} failed ({status}): {}",
            stderr.trim()
        )));
    }
    written?;
    Ok(stdout.trim().to_owned())
}
