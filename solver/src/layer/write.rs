//! `write_layer`: a diff directory to a deterministic layer tar, streamed through the
//! compressor with both digests computed on the way.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use walkdir::WalkDir;

use super::compress::Compressor;
use super::hash::{HashWriter, sha256_digest, tapped};
use super::header::{END_OF_ARCHIVE, EntryHeader, padding, write_header};
use super::source::{Hardlinks, describe};
use super::{LayerError, LayerInfo, LayerOptions};

/// Large enough that compression, not syscalls, is the cost.
const IO_BUFFER: usize = 256 * 1024;

/// Archives `diff_root` (overlay-diff conventions: 0:0 character devices are deletions, the
/// opaque xattr marks opaque directories) as a layer written to `out`.
///
/// Entries come in the order of a depth-first walk with each directory's children sorted by
/// name, so parents precede children; with the same tree and `source_date_epoch` the output is
/// byte-identical. The root directory itself is not an entry.
pub fn write_layer<W: Write>(
    diff_root: &Path,
    out: W,
    opts: &LayerOptions,
) -> Result<LayerInfo, LayerError> {
    if !std::fs::metadata(diff_root).is_ok_and(|m| m.is_dir()) {
        return Err(LayerError::NotADirectory {
            path: diff_root.to_path_buf(),
        });
    }
    let mut tar = TarStream::new(out, opts)?;
    let mut hardlinks = Hardlinks::new();
    for entry in WalkDir::new(diff_root)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1)
    {
        let entry = entry.map_err(|error| LayerError::Read {
            path: error.path().unwrap_or(diff_root).to_path_buf(),
            source: error.into(),
        })?;
        let path = entry.path();
        let meta = entry.metadata().map_err(|error| LayerError::Read {
            path: path.to_path_buf(),
            source: error.into(),
        })?;
        let rel = path
            .strip_prefix(diff_root)
            .map_err(|_| LayerError::Read {
                path: path.to_path_buf(),
                source: std::io::Error::other("walked outside the diff root"),
            })?
            .as_os_str()
            .as_bytes();
        let Some(described) = describe(path, rel, &meta, &mut hardlinks, opts.source_date_epoch)?
        else {
            continue;
        };
        let content = if described.has_content {
            Content::File(path)
        } else {
            Content::None
        };
        tar.entry(&described.header, content)?;
        if let Some(marker) = &described.opaque_marker {
            tar.entry(marker, Content::None)?;
        }
    }
    tar.finish()
}

/// What follows an entry's header.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Content<'a> {
    /// Nothing (not a regular file, or an empty one).
    None,
    /// `header.size` bytes read from this file.
    File(&'a Path),
    /// These bytes (exactly `header.size` of them).
    Bytes(&'a [u8]),
}

/// A layer tar being written: entries in, both digests out. Whoever feeds it decides the
/// entries and their order; it owns the encoding, the compression and the hashing, so every
/// way of making a layer (a diff directory, a planned COPY) writes the same bytes for the
/// same entries.
pub(crate) struct TarStream<W: Write> {
    tar: BufWriter<HashWriter<Compressor<HashWriter<W>>>>,
    buf: Vec<u8>,
    compression: super::Compression,
}

impl<W: Write> TarStream<W> {
    /// Starts a layer written to `out` with `opts`' compression.
    pub(crate) fn new(out: W, opts: &LayerOptions) -> Result<Self, LayerError> {
        // A plain tar's blob is the tar itself: its digest is the diff id, hashed once.
        let blob_tap = match opts.compression {
            super::Compression::None => HashWriter::counting(out),
            _ => HashWriter::new(out),
        };
        let compressor = Compressor::new(opts.compression, blob_tap)
            .map_err(|source| LayerError::Write { source })?;
        Ok(Self {
            tar: BufWriter::with_capacity(IO_BUFFER, HashWriter::new(compressor)),
            buf: vec![0u8; IO_BUFFER],
            compression: opts.compression,
        })
    }

    /// Writes one entry: its header(s), then its content and padding.
    pub(crate) fn entry(
        &mut self,
        header: &EntryHeader,
        content: Content<'_>,
    ) -> Result<(), LayerError> {
        // A cancelled build stops writing at once rather than finishing a layer nobody will
        // tag.
        if crate::cancel::is_cancelled() {
            return Err(LayerError::Cancelled);
        }
        write_header(&mut self.tar, header).map_err(|source| LayerError::Write { source })?;
        match content {
            Content::None => Ok(()),
            Content::File(path) => copy_content(path, header.size, &mut self.tar, &mut self.buf),
            Content::Bytes(bytes) => {
                let write_error = |source| LayerError::Write { source };
                self.tar.write_all(bytes).map_err(write_error)?;
                self.tar
                    .write_all(padding(header.size))
                    .map_err(write_error)
            }
        }
    }

    /// Ends the archive and returns its digests.
    pub(crate) fn finish(self) -> Result<LayerInfo, LayerError> {
        let write_error = |source| LayerError::Write { source };
        let mut tar = self.tar;
        tar.write_all(&END_OF_ARCHIVE).map_err(write_error)?;
        let uncompressed = tar.into_inner().map_err(|e| write_error(e.into_error()))?;
        let (compressor, diff_hasher, _) = uncompressed.finish();
        let compressed = compressor.finish().map_err(write_error)?;
        let (mut out, blob_hasher, size) = compressed.finish();
        out.flush().map_err(write_error)?;
        let diff_id = tapped(diff_hasher)?;
        let digest = match blob_hasher {
            Some(hasher) => sha256_digest(hasher)?,
            None => diff_id.clone(),
        };
        Ok(LayerInfo {
            diff_id,
            digest,
            size,
            media_type: self.compression.media_type().to_owned(),
        })
    }
}

/// Streams exactly `size` bytes of `path` and the block padding. A file that grew is cut at
/// the size its header announced; one that shrank fails, since its header would lie.
fn copy_content<W: Write>(
    path: &Path,
    size: u64,
    out: &mut W,
    buf: &mut [u8],
) -> Result<(), LayerError> {
    let read_error = |source| LayerError::Read {
        path: path.to_path_buf(),
        source,
    };
    let write_error = |source| LayerError::Write { source };
    // O_NOFOLLOW: the walk saw a regular file; if a symlink replaced it since, do not archive
    // whatever it points at.
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| read_error(errno.into()))?;
    let mut file = File::from(fd).take(size);
    let mut left = size;
    while left > 0 {
        if crate::cancel::is_cancelled() {
            return Err(LayerError::Cancelled);
        }
        let n = match file.read(buf) {
            Ok(0) => {
                return Err(LayerError::FileChanged {
                    path: path.to_path_buf(),
                    expected: size,
                });
            }
            Ok(n) => n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(read_error(error)),
        };
        out.write_all(&buf[..n]).map_err(write_error)?;
        left -= n as u64;
    }
    out.write_all(padding(size)).map_err(write_error)
}
