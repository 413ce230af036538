//! The compressing end of a layer stream.

use std::io::{self, Write};

use super::Compression;
use super::pargz::ParGzEncoder;

/// zstd's own default level; `0` asks libzstd for it.
const ZSTD_DEFAULT_LEVEL: i32 = 0;

/// A writer compressing into `W` as a [`Compression`] says.
pub(crate) enum Compressor<W: Write> {
    Gzip(ParGzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    None(W),
}

impl<W: Write> Compressor<W> {
    pub(crate) fn new(compression: Compression, inner: W) -> io::Result<Self> {
        Self::with_level(compression, None, inner)
    }

    /// A compressor at `level` (gzip 0–9, zstd 1–22; `None`: the algorithm's default).
    pub(crate) fn with_level(
        compression: Compression,
        level: Option<i32>,
        inner: W,
    ) -> io::Result<Self> {
        Ok(match compression {
            // Parallel, and still deterministic: the bytes depend on the input alone.
            Compression::Gzip => Self::Gzip(ParGzEncoder::new(
                inner,
                level.map_or_else(flate2::Compression::default, |l| {
                    flate2::Compression::new(l.clamp(0, 9).unsigned_abs())
                }),
            )?),
            Compression::Zstd => Self::Zstd(zstd::stream::write::Encoder::new(
                inner,
                level.unwrap_or(ZSTD_DEFAULT_LEVEL),
            )?),
            Compression::None => Self::None(inner),
        })
    }

    /// Writes the compressor's trailer and hands back the inner writer.
    pub(crate) fn finish(self) -> io::Result<W> {
        match self {
            Self::Gzip(encoder) => encoder.finish(),
            Self::Zstd(encoder) => encoder.finish(),
            Self::None(inner) => Ok(inner),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Gzip(encoder) => encoder.write(buf),
            Self::Zstd(encoder) => encoder.write(buf),
            Self::None(inner) => inner.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Gzip(encoder) => encoder.flush(),
            Self::Zstd(encoder) => encoder.flush(),
            Self::None(inner) => inner.flush(),
        }
    }
}
