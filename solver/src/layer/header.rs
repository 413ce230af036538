//! Tar headers written byte for byte: ustar where it can hold a value, a PAX extended header
//! where it cannot. Owning the encoding (rather than `tar::Builder`'s) is what makes a layer
//! deterministic: no user or group names, no pids in PAX header names, directories always
//! with a trailing `/`, and fields formatted one way only.

use std::io::{self, Write};
use std::ops::Range;

/// The size of a tar block.
pub(crate) const BLOCK: usize = 512;

const NAME: Range<usize> = 0..100;
const MODE: Range<usize> = 100..108;
const UID: Range<usize> = 108..116;
const GID: Range<usize> = 116..124;
const SIZE: Range<usize> = 124..136;
const MTIME: Range<usize> = 136..148;
const CHECKSUM: Range<usize> = 148..156;
const TYPEFLAG: usize = 156;
const LINKNAME: Range<usize> = 157..257;
const MAGIC: Range<usize> = 257..263;
const VERSION: Range<usize> = 263..265;
const DEVMAJOR: Range<usize> = 329..337;
const DEVMINOR: Range<usize> = 337..345;
const PREFIX: Range<usize> = 345..500;

/// What kind of file a header describes, with its type flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Regular,
    Hardlink,
    Symlink,
    Char,
    Block,
    Directory,
    Fifo,
}

impl Kind {
    fn flag(self) -> u8 {
        match self {
            Self::Regular => b'0',
            Self::Hardlink => b'1',
            Self::Symlink => b'2',
            Self::Char => b'3',
            Self::Block => b'4',
            Self::Directory => b'5',
            Self::Fifo => b'6',
        }
    }
}

/// Everything a layer records about one entry.
#[derive(Debug, Clone)]
pub(crate) struct EntryHeader {
    /// Relative, `/`-separated, no leading `./`; directories end in `/`.
    pub(crate) path: Vec<u8>,
    pub(crate) kind: Kind,
    /// Permission bits with setuid/setgid/sticky, no file type.
    pub(crate) mode: u32,
    pub(crate) uid: u64,
    pub(crate) gid: u64,
    /// Bytes of content that follow (regular files only).
    pub(crate) size: u64,
    /// Whole seconds since the epoch; sub-second precision is dropped on purpose.
    pub(crate) mtime: i64,
    /// Hardlink or symlink target.
    pub(crate) link: Option<Vec<u8>>,
    /// Major and minor numbers of a device.
    pub(crate) device: Option<(u32, u32)>,
    /// Extended attributes, sorted by name.
    pub(crate) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Writes `entry`'s PAX extended header (when ustar cannot hold it all) and its ustar header.
/// The caller then writes `entry.size` bytes of content and [`padding`].
pub(crate) fn write_header<W: Write>(out: &mut W, entry: &EntryHeader) -> io::Result<()> {
    let mut block = [0u8; BLOCK];
    let mut pax = Vec::new();

    if !place_path(&mut block, &entry.path) {
        put_bytes(&mut block[NAME], truncate(&entry.path, NAME.len()));
        pax_record(&mut pax, b"path", &entry.path);
    }
    if let Some(link) = &entry.link {
        if link.len() <= LINKNAME.len() {
            put_bytes(&mut block[LINKNAME], link);
        } else {
            put_bytes(&mut block[LINKNAME], truncate(link, LINKNAME.len()));
            pax_record(&mut pax, b"linkpath", link);
        }
    }
    put_octal(&mut block[MODE], u64::from(entry.mode & 0o7777));
    numeric_or_pax(&mut block[UID], entry.uid, b"uid", &mut pax);
    numeric_or_pax(&mut block[GID], entry.gid, b"gid", &mut pax);
    numeric_or_pax(&mut block[SIZE], entry.size, b"size", &mut pax);
    match u64::try_from(entry.mtime) {
        Ok(mtime) => numeric_or_pax(&mut block[MTIME], mtime, b"mtime", &mut pax),
        Err(_) => {
            put_octal(&mut block[MTIME], 0);
            pax_record(&mut pax, b"mtime", entry.mtime.to_string().as_bytes());
        }
    }
    if let Some((major, minor)) = entry.device {
        numeric_or_pax(
            &mut block[DEVMAJOR],
            major.into(),
            b"SCHILY.devmajor",
            &mut pax,
        );
        numeric_or_pax(
            &mut block[DEVMINOR],
            minor.into(),
            b"SCHILY.devminor",
            &mut pax,
        );
    } else {
        put_octal(&mut block[DEVMAJOR], 0);
        put_octal(&mut block[DEVMINOR], 0);
    }
    for (name, value) in &entry.xattrs {
        let mut key = b"SCHILY.xattr.".to_vec();
        key.extend_from_slice(name);
        pax_record(&mut pax, &key, value);
    }
    block[TYPEFLAG] = entry.kind.flag();

    if !pax.is_empty() {
        write_pax_header(out, entry, &block, &pax)?;
    }
    finish_block(&mut block);
    out.write_all(&block)
}

/// Zero bytes that pad `size` bytes of content to a whole block.
pub(crate) fn padding(size: u64) -> &'static [u8] {
    static ZEROS: [u8; BLOCK] = [0; BLOCK];
    let rem = (size % BLOCK as u64) as usize;
    if rem == 0 { &[] } else { &ZEROS[rem..] }
}

/// The two zero blocks that end an archive.
pub(crate) const END_OF_ARCHIVE: [u8; 2 * BLOCK] = [0; 2 * BLOCK];

/// The `x` header and records preceding an entry; named like Go's `archive/tar` does
/// (`dir/PaxHeaders.0/name`), never with a pid, so it is deterministic.
fn write_pax_header<W: Write>(
    out: &mut W,
    entry: &EntryHeader,
    entry_block: &[u8; BLOCK],
    records: &[u8],
) -> io::Result<()> {
    let mut block = [0u8; BLOCK];
    let trimmed = entry.path.strip_suffix(b"/").unwrap_or(&entry.path);
    let (dir, file) = match trimmed.iter().rposition(|&b| b == b'/') {
        Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
        None => (&b""[..], trimmed),
    };
    let mut name = dir.to_vec();
    name.extend_from_slice(b"PaxHeaders.0/");
    name.extend_from_slice(file);
    put_bytes(&mut block[NAME], truncate(&name, NAME.len()));
    put_octal(&mut block[MODE], 0o644);
    put_octal(&mut block[UID], 0);
    put_octal(&mut block[GID], 0);
    put_octal(&mut block[SIZE], records.len() as u64);
    block[MTIME].copy_from_slice(&entry_block[MTIME]);
    put_octal(&mut block[DEVMAJOR], 0);
    put_octal(&mut block[DEVMINOR], 0);
    block[TYPEFLAG] = b'x';
    finish_block(&mut block);
    out.write_all(&block)?;
    out.write_all(records)?;
    out.write_all(padding(records.len() as u64))
}

/// Stores `path` in ustar's name field, or split over prefix and name as Go's
/// `splitUSTARPath` does; false when it fits neither way.
fn place_path(block: &mut [u8; BLOCK], path: &[u8]) -> bool {
    if path.len() <= NAME.len() {
        put_bytes(&mut block[NAME], path);
        return true;
    }
    let mut limit = path.len().min(PREFIX.len() + 1);
    if limit == path.len() && path.ends_with(b"/") {
        limit -= 1;
    }
    let Some(i) = path[..limit].iter().rposition(|&b| b == b'/') else {
        return false;
    };
    let (prefix, name) = (&path[..i], &path[i + 1..]);
    if i == 0 || name.is_empty() || name.len() > NAME.len() || prefix.len() > PREFIX.len() {
        return false;
    }
    put_bytes(&mut block[PREFIX], prefix);
    put_bytes(&mut block[NAME], name);
    true
}

fn truncate(bytes: &[u8], len: usize) -> &[u8] {
    &bytes[..bytes.len().min(len)]
}

fn put_bytes(field: &mut [u8], bytes: &[u8]) {
    field[..bytes.len()].copy_from_slice(bytes);
}

/// The largest value an octal field of `len` bytes holds (digits plus a NUL).
fn octal_max(len: usize) -> u64 {
    (1u64 << (3 * (len as u32 - 1))) - 1
}

/// Zero-padded octal digits and a trailing NUL, as Go and GNU tar write them.
fn put_octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}

fn numeric_or_pax(field: &mut [u8], value: u64, key: &[u8], pax: &mut Vec<u8>) {
    if value <= octal_max(field.len()) {
        put_octal(field, value);
    } else {
        put_octal(field, 0);
        pax_record(pax, key, value.to_string().as_bytes());
    }
}

/// Appends `"<len> <key>=<value>\n"`, where `len` counts the whole record, itself included.
fn pax_record(pax: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + body.to_string().len();
    if len.to_string().len() > body.to_string().len() {
        len += 1;
    }
    pax.extend_from_slice(len.to_string().as_bytes());
    pax.push(b' ');
    pax.extend_from_slice(key);
    pax.push(b'=');
    pax.extend_from_slice(value);
    pax.push(b'\n');
}

/// Fills in the ustar magic and the checksum, computed with the checksum field as spaces.
fn finish_block(block: &mut [u8; BLOCK]) {
    block[MAGIC].copy_from_slice(b"ustar\0");
    block[VERSION].copy_from_slice(b"00");
    block[CHECKSUM].fill(b' ');
    let sum: u64 = block.iter().map(|&b| u64::from(b)).sum();
    let text = format!("{sum:06o}");
    let digits = text.as_bytes();
    let start = digits.len().saturating_sub(6);
    block[CHECKSUM.start..CHECKSUM.start + 6].copy_from_slice(&digits[start..]);
    block[CHECKSUM.start + 6] = 0;
    block[CHECKSUM.start + 7] = b' ';
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        let mut pax = Vec::new();
        pax_record(&mut pax, b"path", &[b'a'; 93]);
        // 4 + 93 + 3 = 100 bytes of body, plus "101" makes 103 (3 digits still).
        assert!(pax.starts_with(b"103 path="));
        assert_eq!(pax.len(), 103);
        let mut pax = Vec::new();
        pax_record(&mut pax, b"path", &[b'a'; 91]);
        // 98 bytes of body; "98" makes 100, which needs a third digit: 101.
        assert!(
            pax.starts_with(b"101 path="),
            "{:?}",
            String::from_utf8_lossy(&pax)
        );
        assert_eq!(pax.len(), 101);
    }

    #[test]
    fn long_paths_split_over_prefix() {
        let mut block = [0u8; BLOCK];
        let path = format!("{}/{}", "d".repeat(120), "f".repeat(50));
        assert!(place_path(&mut block, path.as_bytes()));
        assert!(!place_path(&mut block, "x".repeat(101).as_bytes()));
        let dir = format!("{}/{}/", "d".repeat(120), "e".repeat(99));
        assert!(place_path(&mut block, dir.as_bytes()));
    }

    #[test]
    fn headers_parse_back_with_the_tar_crate() {
        let entry = EntryHeader {
            path: format!("{}/{}", "d".repeat(150), "f".repeat(150)).into_bytes(),
            kind: Kind::Regular,
            mode: 0o4755,
            uid: 5_000_000,
            gid: 7,
            size: 3,
            mtime: -5,
            link: None,
            device: None,
            xattrs: vec![(b"user.k".to_vec(), b"v\0w".to_vec())],
        };
        let mut tar = Vec::new();
        write_header(&mut tar, &entry).unwrap();
        tar.extend_from_slice(b"abc");
        tar.extend_from_slice(padding(3));
        tar.extend_from_slice(&END_OF_ARCHIVE);
        let mut archive = tar::Archive::new(&tar[..]);
        let mut entries = archive.entries().unwrap();
        let mut first = entries.next().unwrap().unwrap();
        assert_eq!(&*first.path_bytes(), &entry.path[..]);
        assert_eq!(first.header().uid().unwrap(), 5_000_000);
        assert_eq!(first.header().mode().unwrap(), 0o4755);
        let records: Vec<(String, Vec<u8>)> = first
            .pax_extensions()
            .unwrap()
            .unwrap()
            .map(|r| {
                let r = r.unwrap();
                (r.key().unwrap().to_owned(), r.value_bytes().to_vec())
            })
            .collect();
        assert!(records.contains(&("mtime".to_owned(), b"-5".to_vec())));
        assert!(records.contains(&("SCHILY.xattr.user.k".to_owned(), b"v\0w".to_vec())));
        assert!(entries.next().is_none());
    }
}
