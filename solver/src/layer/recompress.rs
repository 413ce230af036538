//! A layer blob in another compression: decompressed (whatever it was), checked against its
//! diff id, and compressed again, streamed end to end.

use std::io::{self, BufReader, Read, Write};

use oci_spec::image::Digest;

use super::compress::Compressor;
use super::hash::{HashWriter, tapped};
use super::{Compression, LayerError, decompress_reader};

/// Copies the layer `blob` into `out` compressed as `to` (at `level`); the digest of the
/// uncompressed tar must be `diff_id`, so a blob that is not that layer is never passed on.
pub fn recompress<W: Write>(
    blob: impl Read,
    diff_id: &Digest,
    to: Compression,
    level: Option<i32>,
    out: W,
) -> Result<W, LayerError> {
    let write = |source: io::Error| LayerError::Write { source };
    let mut tar = decompress_reader(BufReader::new(blob))?;
    let compressor = Compressor::with_level(to, level, out).map_err(write)?;
    let mut tap = HashWriter::new(compressor);
    io::copy(&mut tar, &mut tap).map_err(|source| LayerError::Input { source })?;
    let (compressor, hasher, _) = tap.finish();
    let out = compressor.finish().map_err(write)?;
    let got = tapped(hasher)?;
    if &got != diff_id {
        return Err(LayerError::DiffIdMismatch {
            expected: Box::new(diff_id.clone()),
            got: Box::new(got),
        });
    }
    Ok(out)
}

/// Copies the plain-tar layer `blob` into `out` compressed as `to` (at `level`). No digest is
/// taken: the content store verified the blob against its digest — its diff id — when it
/// was stored, which is what [`recompress`] would check again at the cost of a full hash.
pub fn compress_tar<W: Write>(
    blob: impl Read,
    to: Compression,
    level: Option<i32>,
    out: W,
) -> Result<W, LayerError> {
    let write = |source: io::Error| LayerError::Write { source };
    let mut compressor = Compressor::with_level(to, level, out).map_err(write)?;
    let mut blob = BufReader::with_capacity(1 << 20, blob);
    io::copy(&mut blob, &mut compressor).map_err(|source| LayerError::Input { source })?;
    compressor.finish().map_err(write)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::Write as _;

    use super::*;

    fn tar_of(data: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "f", data).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn gzip_to_zstd_keeps_the_tar_and_checks_the_diff_id() {
        let tar = tar_of(b"hello");
        let diff_id = crate::store::sha256_digest(&tar).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        let zst = recompress(&gz[..], &diff_id, Compression::Zstd, Some(3), Vec::new()).unwrap();
        assert_eq!(zstd::decode_all(&zst[..]).unwrap(), tar);
        let plain = recompress(&zst[..], &diff_id, Compression::None, None, Vec::new()).unwrap();
        assert_eq!(plain, tar);

        let other = crate::store::sha256_digest(b"other").unwrap();
        let err = recompress(&gz[..], &other, Compression::Zstd, None, Vec::new()).unwrap_err();
        assert!(matches!(err, LayerError::DiffIdMismatch { .. }), "{err}");
        assert!(err.to_string().contains(&other.to_string()), "{err}");
    }

    #[test]
    fn a_plain_tar_compresses_to_the_bytes_a_checked_conversion_makes() {
        let tar = tar_of(b"hello plain");
        let diff_id = crate::store::sha256_digest(&tar).unwrap();
        for to in [Compression::Gzip, Compression::Zstd] {
            let fast = compress_tar(&tar[..], to, None, Vec::new()).unwrap();
            let checked = recompress(&tar[..], &diff_id, to, None, Vec::new()).unwrap();
            assert_eq!(fast, checked, "{to:?}");
        }
    }
}
