//! Writing archive entries with fixed metadata (root-owned, mtime 0), so exporting the same
//! image twice gives the same archive bytes.

use std::collections::HashSet;
use std::io::{self, Read, Write};

use tar::{Builder, EntryType, Header};

/// A tar stream of exported files; parent directories get their own entries, once each.
pub(crate) struct TarOut<W: Write> {
    builder: Builder<W>,
    dirs: HashSet<String>,
}

impl<W: Write> std::fmt::Debug for TarOut<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TarOut").field("dirs", &self.dirs).finish()
    }
}

impl<W: Write> TarOut<W> {
    pub(crate) fn new(out: W) -> Self {
        Self {
            builder: Builder::new(out),
            dirs: HashSet::new(),
        }
    }

    /// Adds a small file from memory.
    pub(crate) fn bytes(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        self.stream(path, data.len() as u64, data)
    }

    /// Adds a file of `size` bytes streamed from `data` (never buffered whole).
    pub(crate) fn stream(&mut self, path: &str, size: u64, data: impl Read) -> io::Result<()> {
        self.parents(path)?;
        let mut header = header(EntryType::Regular, 0o644, size);
        let mut exact = data.take(size);
        self.builder.append_data(&mut header, path, &mut exact)?;
        // A source shorter than announced would shift every later entry; refuse it instead.
        if exact.limit() != 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{path}: source ended {} bytes early", exact.limit()),
            ));
        }
        Ok(())
    }

    /// Writes the end-of-archive marker and hands back the writer.
    pub(crate) fn finish(self) -> io::Result<W> {
        self.builder.into_inner()
    }

    fn parents(&mut self, path: &str) -> io::Result<()> {
        let mut end = 0;
        while let Some(slash) = path[end..].find('/') {
            end += slash + 1;
            let dir = &path[..end];
            if self.dirs.insert(dir.to_owned()) {
                let mut header = header(EntryType::Directory, 0o755, 0);
                self.builder.append_data(&mut header, dir, io::empty())?;
            }
        }
        Ok(())
    }
}

fn header(kind: EntryType, mode: u32, size: u64) -> Header {
    let mut header = Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(size);
    header
}
