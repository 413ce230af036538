//! Destination files written under a temp name in the same directory, then renamed.
//!
//! The temp name starts with `.` so a half-written export does not look like a result, and
//! dropping an uncommitted [`AtomicFile`] deletes it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::error::ExportError;
use crate::fsutil::owner::hidden_temp_name;

const BUFFER: usize = 256 * 1024;

/// A file that appears under its final name only once complete.
#[derive(Debug)]
pub(crate) struct AtomicFile {
    writer: Option<BufWriter<File>>,
    temp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl AtomicFile {
    /// Starts writing what will become `dest`.
    pub(crate) fn create(dest: &Path) -> Result<Self, ExportError> {
        let temp = temp_beside(dest)?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|e| ExportError::io(&temp, e))?;
        Ok(Self {
            writer: Some(BufWriter::with_capacity(BUFFER, file)),
            temp,
            dest: dest.to_path_buf(),
            committed: false,
        })
    }

    /// The final name.
    pub(crate) fn dest(&self) -> &Path {
        &self.dest
    }

    /// Flushes, fsyncs and renames the file to its final name (replacing what was there).
    pub(crate) fn commit(mut self) -> Result<(), ExportError> {
        let Some(writer) = self.writer.take() else {
            return Err(ExportError::io(
                &self.temp,
                io::Error::other("file already finished"),
            ));
        };
        let file = writer
            .into_inner()
            .map_err(|e| ExportError::io(&self.temp, e.into_error()))?;
        file.sync_all()
            .map_err(|e| ExportError::io(&self.temp, e))?;
        drop(file);
        fs::rename(&self.temp, &self.dest).map_err(|e| ExportError::io(&self.dest, e))?;
        self.committed = true;
        sync_parent(&self.dest)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.writer.as_mut() {
            Some(writer) => writer.write(buf),
            None => Err(io::Error::other("file already finished")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.writer.as_mut() {
            Some(writer) => writer.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            drop(self.writer.take());
            // Nothing to report to; at worst a dot-file stays behind.
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// Writes `bytes` to `dest` atomically.
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    let mut file = AtomicFile::create(dest)?;
    file.write_all(bytes)
        .map_err(|e| ExportError::io(dest, e))?;
    file.commit()
}

/// A fresh hidden name in `dest`'s directory (same filesystem, so the rename is atomic),
/// `.kiln-tmp-<owner>-<n>.<dest's name>`; the temps an interrupted export left there go first.
pub(crate) fn temp_beside(dest: &Path) -> Result<PathBuf, ExportError> {
    let name = dest.file_name().ok_or_else(|| {
        ExportError::io(
            dest,
            io::Error::new(io::ErrorKind::InvalidInput, "destination has no file name"),
        )
    })?;
    crate::reclaim::beside(dest);
    Ok(dest.with_file_name(hidden_temp_name(&name.to_string_lossy())))
}

/// Makes a rename into `path`'s directory durable.
pub(crate) fn sync_parent(path: &Path) -> Result<(), ExportError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(|e| ExportError::io(parent, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_dir::TestDir;

    #[test]
    fn appears_only_on_commit() {
        let dir = TestDir::new("atomic-commit");
        let dest = dir.path().join("out.tar");
        let mut file = AtomicFile::create(&dest).unwrap();
        file.write_all(b"data").unwrap();
        assert!(!dest.exists());
        file.commit().unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"data");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn dropped_leaves_nothing() {
        let dir = TestDir::new("atomic-drop");
        let dest = dir.path().join("out.tar");
        fs::write(&dest, b"old").unwrap();
        let mut file = AtomicFile::create(&dest).unwrap();
        file.write_all(b"half").unwrap();
        drop(file);
        assert_eq!(fs::read(&dest).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
