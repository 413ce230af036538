//! sha256 taps on a stream: a layer's digests are computed from the very bytes that pass
//! through, never by re-reading what was written.

use std::io::{self, Read, Write};

use oci_spec::image::Digest;
use sha2::{Digest as _, Sha256};

use super::LayerError;

/// Turns a finished sha256 into an OCI digest.
pub(crate) fn sha256_digest(hasher: Sha256) -> Result<Digest, LayerError> {
    let hex = hex::encode(hasher.finalize());
    Digest::try_from(format!("sha256:{hex}")).map_err(|source| LayerError::Digest { source })
}

/// The hash of a tap made with [`HashWriter::new`] (a counting tap has none).
pub(crate) fn tapped(hasher: Option<Sha256>) -> Result<Digest, LayerError> {
    let hasher = hasher.ok_or_else(|| LayerError::Write {
        source: io::Error::other("a counting tap was asked for its hash"),
    })?;
    sha256_digest(hasher)
}

/// A writer that hashes and counts what it forwards (or only counts: see
/// [`HashWriter::counting`]).
pub(crate) struct HashWriter<W> {
    inner: W,
    hasher: Option<Sha256>,
    count: u64,
}

impl<W: Write> HashWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Some(Sha256::new()),
            count: 0,
        }
    }

    /// A tap that counts without hashing: for a stream whose digest another tap already
    /// computes over the same bytes.
    pub(crate) fn counting(inner: W) -> Self {
        Self {
            inner,
            hasher: None,
            count: 0,
        }
    }

    /// The inner writer, the hash (none when only counting) and the byte count of
    /// everything written.
    pub(crate) fn finish(self) -> (W, Option<Sha256>, u64) {
        (self.inner, self.hasher, self.count)
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        // Only what the inner writer accepted is part of the stream.
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..n]);
        }
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes what it hands out.
pub(crate) struct HashReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> HashReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// Reads the rest of the stream (a tar reader stops at the end-of-archive blocks, but the
    /// digest covers every byte) and returns the hash.
    pub(crate) fn drain_and_finish(mut self) -> io::Result<Sha256> {
        io::copy(&mut self, &mut io::sink())?;
        Ok(self.hasher)
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}
