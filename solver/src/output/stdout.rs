//! Tar streams on standard output (`-o -`, `dest=-`): never to a terminal, buffered, flushed.

use std::io::{BufWriter, IsTerminal as _, Write};
use std::path::Path;

use super::OutputError;

/// How stdout is named in errors.
pub(super) const STDOUT: &str = "<stdout>";

/// Runs `write` on a buffered stdout, refused when stdout is a terminal.
pub(super) fn to_stdout<T>(
    write: impl FnOnce(&mut dyn Write) -> Result<T, OutputError>,
) -> Result<T, OutputError> {
    let stdout = std::io::stdout();
    if stdout.is_terminal() {
        return Err(OutputError::Terminal);
    }
    let mut out = BufWriter::with_capacity(256 * 1024, stdout.lock());
    let value = write(&mut out)?;
    out.flush().map_err(|e| {
        OutputError::Export(crate::export::ExportError::Io {
            path: Path::new(STDOUT).to_path_buf(),
            source: e,
        })
    })?;
    Ok(value)
}
