//! Reading a Dockerfile from a path or standard input, with errors that name the path.

use std::io::Read as _;
use std::path::Path;

use anyhow::{Context as _, Result, bail};

/// A Dockerfile's display name and text.
pub(crate) struct DockerfileSource {
    pub(crate) name: String,
    pub(crate) text: String,
}

/// Reads `path`, or standard input for `-`. Invalid UTF-8 is an error naming the line.
pub(crate) fn read_dockerfile(path: &Path) -> Result<DockerfileSource> {
    let (name, bytes) = if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading the Dockerfile from standard input")?;
        ("<stdin>".to_owned(), buf)
    } else {
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading Dockerfile {}", path.display()))?;
        (path.display().to_string(), bytes)
    };
    match String::from_utf8(bytes) {
        Ok(text) => Ok(DockerfileSource { name, text }),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let bytes = e.as_bytes();
            let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
            let col = at
                - bytes[..at]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1)
                + 1;
            bail!(
                "{name}:{line}:{col}: the Dockerfile is not valid UTF-8 (byte 0x{:02x})",
                bytes[at]
            )
        }
    }
}
