//! The fields of one 512-byte tar header block, read as every dialect in use writes them:
//! numbers in octal padded with NULs or spaces (or left empty), or in GNU's base-256; strings
//! cut at their first NUL; a checksum summed unsigned or, as some old tars did, signed.

use std::ops::Range;

/// The size of a tar block.
pub(crate) const BLOCK: usize = 512;

pub(super) const NAME: Range<usize> = 0..100;
pub(super) const MODE: Range<usize> = 100..108;
pub(super) const UID: Range<usize> = 108..116;
pub(super) const GID: Range<usize> = 116..124;
pub(super) const SIZE: Range<usize> = 124..136;
pub(super) const MTIME: Range<usize> = 136..148;
const CHECKSUM: Range<usize> = 148..156;
pub(super) const TYPEFLAG: usize = 156;
pub(super) const LINKNAME: Range<usize> = 157..257;
const MAGIC: Range<usize> = 257..263;
const VERSION: Range<usize> = 263..265;
pub(super) const DEVMAJOR: Range<usize> = 329..337;
pub(super) const DEVMINOR: Range<usize> = 337..345;
/// POSIX ustar's name prefix.
const PREFIX: Range<usize> = 345..500;
/// star's shorter prefix (it keeps atime and ctime after it).
const STAR_PREFIX: Range<usize> = 345..476;
const STAR_TRAILER: Range<usize> = 508..512;
/// GNU's sparse map in the header of an old-style (`S`) sparse file: four (offset, length)
/// pairs of 12-byte numbers, a flag saying extension blocks follow, and the file's real size.
pub(super) const GNU_SPARSE: Range<usize> = 386..482;
pub(super) const GNU_IS_EXTENDED: usize = 482;
pub(super) const GNU_REAL_SIZE: Range<usize> = 483..495;

/// Which writer's layout a header follows; it decides where the name prefix lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    /// Pre-POSIX: no magic, no prefix.
    V7,
    /// POSIX ustar (and PAX, which is ustar plus extended headers).
    Ustar,
    /// Jörg Schilling's star: ustar with a shorter prefix.
    Star,
    /// GNU tar (`gnu` and `oldgnu`), busybox: no prefix; GNU's own fields there instead.
    Gnu,
}

/// A header block, with accessors for its fields.
pub(super) struct Block<'a>(pub(super) &'a [u8; BLOCK]);

impl Block<'_> {
    pub(super) fn is_zero(&self) -> bool {
        self.0.iter().all(|&b| b == 0)
    }

    pub(super) fn format(&self) -> Format {
        let magic = &self.0[MAGIC];
        if magic == b"ustar\0" {
            if &self.0[STAR_TRAILER] == b"tar\0" {
                Format::Star
            } else {
                Format::Ustar
            }
        } else if magic == b"ustar " && &self.0[VERSION] == b" \0" {
            Format::Gnu
        } else {
            Format::V7
        }
    }

    /// Whether the stored checksum matches the block, summed unsigned or signed with the
    /// checksum field counted as spaces.
    pub(super) fn checksum_ok(&self) -> bool {
        let Ok(stored) = number(&self.0[CHECKSUM]) else {
            return false;
        };
        let mut unsigned: i64 = 0;
        let mut signed: i64 = 0;
        for (i, &b) in self.0.iter().enumerate() {
            let b = if CHECKSUM.contains(&i) { b' ' } else { b };
            unsigned += i64::from(b);
            signed += i64::from(b as i8);
        }
        stored == unsigned || stored == signed
    }

    /// The entry's name: the name field, behind the prefix where the format has one.
    pub(super) fn name(&self) -> Vec<u8> {
        let name = string(&self.0[NAME]);
        let prefix = match self.format() {
            Format::Ustar => string(&self.0[PREFIX]),
            Format::Star => string(&self.0[STAR_PREFIX]),
            Format::V7 | Format::Gnu => &[],
        };
        if prefix.is_empty() {
            return name.to_vec();
        }
        let mut full = prefix.to_vec();
        full.push(b'/');
        full.extend_from_slice(name);
        full
    }

    pub(super) fn link(&self) -> Vec<u8> {
        string(&self.0[LINKNAME]).to_vec()
    }

    pub(super) fn typeflag(&self) -> u8 {
        self.0[TYPEFLAG]
    }

    pub(super) fn field(&self, range: Range<usize>) -> &[u8] {
        &self.0[range]
    }
}

/// A string field: its bytes up to the first NUL.
pub(super) fn string(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

/// Why a numeric field could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberError {
    /// Something other than octal digits between the padding.
    NotOctal,
    /// A base-256 number beyond 64 bits.
    Overflow,
}

impl std::fmt::Display for NumberError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotOctal => "not an octal number",
            Self::Overflow => "a number too large",
        })
    }
}

/// A numeric field: base-256 when its first byte has the high bit set (GNU's form for values
/// octal cannot hold, negative ones included), else octal between optional NUL or space
/// padding on either side; an empty (all-NUL or all-space) field is zero, as Go's
/// `archive/tar` reads it.
pub(super) fn number(field: &[u8]) -> Result<i64, NumberError> {
    if field.first().is_some_and(|&b| b & 0x80 != 0) {
        return base256(field);
    }
    let is_pad = |b: &u8| *b == 0 || *b == b' ';
    let start = field.iter().position(|b| !is_pad(b)).unwrap_or(field.len());
    let end = field
        .iter()
        .rposition(|b| !is_pad(b))
        .map_or(start, |i| i + 1);
    let digits = string(&field[start..end]);
    let mut value: i64 = 0;
    for &b in digits {
        if !(b'0'..=b'7').contains(&b) {
            return Err(NumberError::NotOctal);
        }
        value = value
            .checked_mul(8)
            .and_then(|v| v.checked_add(i64::from(b - b'0')))
            .ok_or(NumberError::Overflow)?;
    }
    Ok(value)
}

/// GNU's base-256: big-endian two's complement, the first byte's top bit being the marker.
fn base256(field: &[u8]) -> Result<i64, NumberError> {
    let negative = field[0] & 0x40 != 0;
    let invert: u8 = if negative { 0xff } else { 0 };
    let mut value: u64 = 0;
    for (i, &b) in field.iter().enumerate() {
        let mut b = b ^ invert;
        if i == 0 {
            b &= 0x7f;
        }
        if value >> 56 != 0 {
            return Err(NumberError::Overflow);
        }
        value = (value << 8) | u64::from(b);
    }
    if value >> 63 != 0 {
        return Err(NumberError::Overflow);
    }
    let value = value as i64;
    Ok(if negative { !value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_with_every_padding() {
        assert_eq!(number(b"0000644\0"), Ok(0o644));
        assert_eq!(number(b"   644 \0"), Ok(0o644));
        assert_eq!(number(b"644\0\0\0\0\0"), Ok(0o644));
        assert_eq!(number(b"\0\0\0\0\0\0\0\0"), Ok(0));
        assert_eq!(number(b"        "), Ok(0));
        assert_eq!(number(b"00000000000\0"), Ok(0));
        assert_eq!(number(b"0000x644"), Err(NumberError::NotOctal));
        assert_eq!(number(b"17777777777\0"), Ok(0o17777777777));
    }

    #[test]
    fn base256_both_signs() {
        let mut field = [0u8; 12];
        field[0] = 0x80;
        field[7] = 0x01;
        assert_eq!(number(&field), Ok(0x01_0000_0000));
        let minus_five = {
            let mut f = [0xffu8; 12];
            f[11] = 0xfb;
            f
        };
        assert_eq!(number(&minus_five), Ok(-5));
        let mut huge = [0xffu8; 12];
        huge[0] = 0x80;
        assert_eq!(number(&huge), Err(NumberError::Overflow));
    }

    #[test]
    fn strings_stop_at_nul() {
        assert_eq!(string(b"abc\0def"), b"abc");
        assert_eq!(string(b"abc"), b"abc");
    }
}
