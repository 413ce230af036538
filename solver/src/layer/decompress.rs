//! Reading possibly-compressed tars: compression is sniffed from magic bytes, never trusted
//! from a file name or a media type, as Docker does for layers and for `ADD`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::Path;

use super::LayerError;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const BZIP2_MAGIC: &[u8] = b"BZh";
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
/// Enough bytes to tell every format above apart.
const MAGIC_LEN: usize = 6;

/// The compression a stream starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Gzip,
    Bzip2,
    Xz,
    Zstd,
    Plain,
}

/// The OCI layer media type for a blob starting with `start`: what its bytes are, whatever a
/// manifest called them (registries serve plain tars labelled gzip, from `docker save`
/// archives pushed as they are); `None` for compressions OCI has no layer type for.
pub fn layer_media_type(start: &[u8]) -> Option<&'static str> {
    match sniff(start) {
        Format::Gzip => Some(super::MEDIA_TYPE_TAR_GZIP),
        Format::Zstd => Some(super::MEDIA_TYPE_TAR_ZSTD),
        Format::Plain => Some(super::MEDIA_TYPE_TAR),
        Format::Bzip2 | Format::Xz => None,
    }
}

fn sniff(start: &[u8]) -> Format {
    if start.starts_with(GZIP_MAGIC) {
        Format::Gzip
    } else if start.starts_with(BZIP2_MAGIC) {
        Format::Bzip2
    } else if start.starts_with(XZ_MAGIC) {
        Format::Xz
    } else if start.starts_with(ZSTD_MAGIC) {
        Format::Zstd
    } else {
        Format::Plain
    }
}

/// Wraps `reader` in the decompressor its first bytes call for (gzip, bzip2, xz, zstd), or
/// hands it back as is when it starts with none of their magic numbers.
pub fn decompress_reader<'a, R: BufRead + 'a>(
    mut reader: R,
) -> Result<Box<dyn Read + 'a>, LayerError> {
    let buffered = reader
        .fill_buf()
        .map_err(|source| LayerError::Input { source })?;
    if buffered.len() >= MAGIC_LEN || buffered.is_empty() {
        let format = sniff(buffered);
        return Ok(wrap(format, reader));
    }
    // A short first read (a pipe, a tiny buffer) cannot be trusted to hold the whole magic:
    // read it out for real and put it back in front.
    let mut start = Vec::with_capacity(MAGIC_LEN);
    (&mut reader)
        .take(MAGIC_LEN as u64)
        .read_to_end(&mut start)
        .map_err(|source| LayerError::Input { source })?;
    let format = sniff(&start);
    Ok(wrap(
        format,
        BufReader::new(Cursor::new(start).chain(reader)),
    ))
}

fn wrap<'a, R: BufRead + 'a>(format: Format, reader: R) -> Box<dyn Read + 'a> {
    // The multi-stream decoders read concatenated members, which parallel compressors
    // (pigz, gzp, pbzip2) produce.
    match format {
        Format::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
        Format::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(reader)),
        Format::Xz => Box::new(xz2::bufread::XzDecoder::new_multi_decoder(reader)),
        Format::Zstd => match zstd::stream::read::Decoder::with_buffer(reader) {
            Ok(decoder) => Box::new(decoder),
            // Only a failed context allocation lands here; surface it on first read.
            Err(error) => Box::new(FailingReader(Some(error))),
        },
        Format::Plain => Box::new(reader),
    }
}

/// A reader whose first read reports an error found while setting it up.
struct FailingReader(Option<io::Error>);

impl Read for FailingReader {
    fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        Err(self
            .0
            .take()
            .unwrap_or_else(|| io::Error::other("decoder setup failed")))
    }
}

/// Whether the file at `path` is a tar archive, possibly compressed: BuildKit's
/// `isArchivePath`, true when the (decompressed) stream yields a first entry. A file that merely
/// looks compressed but does not decompress to a tar is not an archive (`ADD` copies it as is).
pub fn is_archive(path: &Path) -> Result<bool, LayerError> {
    let sniff_error = |source| LayerError::Sniff {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(sniff_error)?;
    if !file.metadata().map_err(sniff_error)?.is_file() {
        return Ok(false);
    }
    let Ok(reader) = decompress_reader(BufReader::new(file)) else {
        return Ok(false);
    };
    Ok(matches!(
        super::read::TarReader::new(reader).next_entry(),
        Ok(Some(_))
    ))
}
