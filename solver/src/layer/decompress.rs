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
const BLOCK: usize = 512;

/// The compression a stream starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Gzip,
    Bzip2,
    Xz,
    Zstd,
    Plain,
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

/// Whether the file at `path` is a tar archive, possibly compressed: true when its
/// (decompressed) first 512 bytes are a tar header with a valid checksum. A file that merely
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
    let Ok(mut reader) = decompress_reader(BufReader::new(file)) else {
        return Ok(false);
    };
    let mut block = [0u8; BLOCK];
    let mut filled = 0;
    while filled < BLOCK {
        match reader.read(&mut block[filled..]) {
            Ok(0) => return Ok(false),
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            // Corrupt compressed data: not an archive we could extract.
            Err(_) => return Ok(false),
        }
    }
    Ok(is_tar_header(&block))
}

/// A tar header block: not all zeros (an empty archive has nothing to add) and its checksum
/// field matches the sum of its bytes, counted unsigned or, as old tars did, signed.
fn is_tar_header(block: &[u8; BLOCK]) -> bool {
    if block.iter().all(|&b| b == 0) {
        return false;
    }
    let Some(stored) = parse_octal(&block[148..156]) else {
        return false;
    };
    let in_sum = |i: usize| !(148..156).contains(&i);
    let unsigned: u64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if in_sum(i) {
                u64::from(b)
            } else {
                u64::from(b' ')
            }
        })
        .sum();
    let signed: i64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if in_sum(i) {
                i64::from(b as i8)
            } else {
                i64::from(b' ')
            }
        })
        .sum();
    u64::try_from(signed).is_ok_and(|s| s == stored) || unsigned == stored
}

/// An octal header field: optional leading spaces, digits, then NUL or space padding.
fn parse_octal(field: &[u8]) -> Option<u64> {
    let text = field
        .iter()
        .skip_while(|&&b| b == b' ')
        .take_while(|&&b| b != 0 && b != b' ')
        .copied()
        .collect::<Vec<u8>>();
    if text.is_empty() {
        return None;
    }
    text.iter().try_fold(0u64, |acc, &b| {
        if (b'0'..=b'7').contains(&b) {
            acc.checked_mul(8)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}
