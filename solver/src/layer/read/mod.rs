//! kiln's tar reader: every dialect the tools people use write, read the way Go's
//! `archive/tar` (Docker, containerd, BuildKit) reads it, and no further.
//!
//! * v7, ustar (name prefix), star (shorter prefix), GNU and oldgnu (`L`/`K` long names and
//!   link targets, `S` sparse files with extension blocks, `D` dump directories), PAX (`x`
//!   records override the header; `g` global records are skipped, as Docker and containerd do).
//! * Numeric fields octal with any NUL or space padding, empty (zero), or base-256.
//! * PAX sparse files 0.0, 0.1 and 1.0, with the real name and size; `SCHILY.xattr.*` and
//!   `LIBARCHIVE.xattr.*` attributes; PAX times with nanoseconds.
//! * Header-only types (links, devices, directories, FIFOs) never carry data, whatever their
//!   size field says; device numbers are read only for devices.
//! * The archive ends at two zero blocks, at one zero block followed by the end of the stream,
//!   or at the end of the stream on a header boundary; a stream cut inside a header or an
//!   entry's data is an error.
//!
//! It reads; where entries land is [`super::apply`]'s business. Special headers (`x`, `g`,
//! `L`, `K`) are bounded at 1 MiB, as in Go, so a hostile size cannot exhaust memory.

pub(crate) mod fault;
mod fields;
pub use fields::NumberError;
mod pax;
mod sparse;

use std::io::{self, Read};

use rustix::fs::Timespec;

use super::LayerError;
use super::meta::timespec;
use fault::{SparseFault, TarFault};
use fields::{BLOCK, Block};
use pax::Pax;
pub(crate) use sparse::Segment;

/// The largest `x`, `g`, `L` or `K` body read (Go's `maxSpecialFileSize`).
const MAX_SPECIAL: u64 = 1 << 20;
/// Entries one archive may hold: far past any real layer (a Debian rootfs has 10,000), short
/// of what would exhaust inodes or the walk's memory.
const MAX_ENTRIES: u64 = 10_000_000;
/// The longest name or link target: what the kernel takes as a path (PATH_MAX).
const MAX_NAME: usize = 4096;
/// The largest file an entry may describe (sparse files included): ext4's limit, 16 TiB.
const MAX_FILE_SIZE: u64 = 1 << 44;

/// What kind of file an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Regular,
    Hardlink,
    Symlink,
    CharDevice,
    BlockDevice,
    Directory,
    Fifo,
}

/// One entry's metadata, with every extension applied.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The name as stored (PAX `path`, GNU long name, or prefix + name), not cleaned.
    pub(crate) name: Vec<u8>,
    pub(crate) kind: Kind,
    /// Symlink or hardlink target, as stored.
    pub(crate) link: Vec<u8>,
    /// Permission bits with setuid, setgid and sticky.
    pub(crate) mode: u32,
    pub(crate) uid: u64,
    pub(crate) gid: u64,
    pub(crate) mtime: Timespec,
    pub(crate) atime: Option<Timespec>,
    /// Major and minor numbers, for devices only.
    pub(crate) device: (u32, u32),
    /// Extended attributes, sorted by name, each once.
    pub(crate) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// The file's size (for a sparse file, its real size, holes included).
    pub(crate) size: u64,
    /// For a sparse file, where the stored data goes.
    pub(crate) sparse: Option<Vec<Segment>>,
}

impl Entry {
    /// The name for messages.
    pub(crate) fn display_name(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// A streaming reader of tar entries over `R` (already decompressed).
pub(crate) struct TarReader<R> {
    input: R,
    /// Bytes consumed from `input`.
    offset: u64,
    /// Stored bytes of the current entry not read yet, and the padding after them.
    data_left: u64,
    pad_left: u64,
    done: bool,
    /// Name of the current entry, for errors while its data is read.
    current: String,
    /// Entries read so far.
    entries: u64,
}

impl<R: Read> TarReader<R> {
    pub(crate) fn new(input: R) -> Self {
        Self {
            input,
            offset: 0,
            data_left: 0,
            pad_left: 0,
            done: false,
            current: String::new(),
            entries: 0,
        }
    }

    /// The next entry, skipping what is left of the previous one's data; `None` at the end.
    pub(crate) fn next_entry(&mut self) -> Result<Option<Entry>, LayerError> {
        if self.done {
            return Ok(None);
        }
        let rest = self.data_left + self.pad_left;
        self.skip(rest)?;
        self.data_left = 0;
        self.pad_left = 0;
        self.current.clear();

        let mut pax = Pax::default();
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut block = [0u8; BLOCK];
        let header_at = loop {
            let at = self.offset;
            if !self.read_block(&mut block, true)? {
                self.done = true;
                return Ok(None);
            }
            let header = Block(&block);
            if header.is_zero() {
                // One zero block may be the last thing in the stream; a second one always is.
                if !self.read_block(&mut block, true)? || Block(&block).is_zero() {
                    self.done = true;
                    return Ok(None);
                }
                return Err(corrupt(at, "", TarFault::ZeroBlock));
            }
            if !header.checksum_ok() {
                let name = String::from_utf8_lossy(&header.name()).into_owned();
                return Err(corrupt(at, &name, TarFault::Checksum));
            }
            let flag = header.typeflag();
            let name = || String::from_utf8_lossy(&header.name()).into_owned();
            let size = self.size_field(&header, at)?;
            match flag {
                b'x' | b'X' => {
                    let body = self.special(size, at, &name())?;
                    pax.apply(&body).map_err(|e| corrupt(at, &name(), e))?;
                }
                b'g' => {
                    self.special(size, at, &name())?;
                }
                b'L' => long_name = Some(trim_nuls(self.special(size, at, &name())?)),
                b'K' => long_link = Some(trim_nuls(self.special(size, at, &name())?)),
                // A volume label names the archive, not a file.
                b'V' => self.skip(size + pad(size))?,
                _ => break at,
            }
        };
        let header = Block(&block);
        let flag = header.typeflag();
        let sparse_name = pax.sparse.name.take();
        let name = sparse_name
            .or(pax.path.take())
            .or(long_name)
            .unwrap_or_else(|| header.name());
        let shown = String::from_utf8_lossy(&name).into_owned();
        self.current = shown.clone();
        self.entries += 1;
        if self.entries > MAX_ENTRIES {
            return Err(corrupt(
                header_at,
                &shown,
                TarFault::TooManyEntries { limit: MAX_ENTRIES },
            ));
        }
        if name.len() > MAX_NAME {
            return Err(corrupt(
                header_at,
                &shown[..shown.len().min(200)],
                TarFault::NameTooLong {
                    len: name.len(),
                    limit: MAX_NAME,
                },
            ));
        }
        let kind = match flag {
            b'0' | b'7' | b'S' => Kind::Regular,
            // Pre-POSIX tars mark directories as old-regular files with a trailing `/`.
            0 if name.ends_with(b"/") => Kind::Directory,
            0 => Kind::Regular,
            b'1' => Kind::Hardlink,
            b'2' => Kind::Symlink,
            b'3' => Kind::CharDevice,
            b'4' => Kind::BlockDevice,
            b'5' | b'D' => Kind::Directory,
            b'6' => Kind::Fifo,
            other => {
                return Err(LayerError::Unsupported {
                    entry: shown,
                    kind: describe_flag(other),
                });
            }
        };
        let number = |range, field: &'static str| {
            fields::number(header.field(range))
                .map_err(|error| corrupt(header_at, &shown, TarFault::Number { field, error }))
        };
        let unsigned = |range, field: &'static str| {
            let value = number(range, field)?;
            u64::try_from(value)
                .map_err(|_| corrupt(header_at, &shown, TarFault::Negative { field }))
        };
        let mode = (unsigned(fields::MODE, "mode")? & 0o7777) as u32;
        let uid = match pax.uid {
            Some(uid) => uid,
            None => unsigned(fields::UID, "uid")?,
        };
        let gid = match pax.gid {
            Some(gid) => gid,
            None => unsigned(fields::GID, "gid")?,
        };
        let mtime = match pax.mtime {
            Some(t) => t,
            None => timespec(number(fields::MTIME, "mtime")?, 0),
        };
        let device = if matches!(kind, Kind::CharDevice | Kind::BlockDevice) {
            let part = |value: Option<u32>, range, what: &'static str| match value {
                Some(v) => Ok(v),
                None => u32::try_from(unsigned(range, what)?)
                    .map_err(|_| corrupt(header_at, &shown, TarFault::Over32Bits { field: what })),
            };
            (
                part(pax.devmajor, fields::DEVMAJOR, "device major")?,
                part(pax.devminor, fields::DEVMINOR, "device minor")?,
            )
        } else {
            (0, 0)
        };
        let link = pax
            .linkpath
            .take()
            .or(long_link)
            .unwrap_or_else(|| header.link());
        let stored = match kind {
            Kind::Regular => pax.size.unwrap_or(self.size_field(&header, header_at)?),
            // GNU's dump directories list their contents as data, which nothing needs.
            Kind::Directory if flag == b'D' => self.size_field(&header, header_at)?,
            _ => 0,
        };
        self.data_left = stored;
        self.pad_left = pad(stored);

        let (size, sparse) = if flag == b'S' {
            let segments = self.gnu_sparse_map(&block, header_at, &shown)?;
            let real = unsigned(fields::GNU_REAL_SIZE, "GNU sparse real size")?;
            (real, Some(segments))
        } else if pax.sparse.present() {
            let real = pax
                .sparse
                .real_size
                .ok_or_else(|| corrupt(header_at, &shown, SparseFault::NoRealSize))?;
            let segments = if pax.sparse.major == Some(1) {
                self.map_10(header_at, &shown)?
            } else {
                sparse::pax_map(&pax.sparse).map_err(|e| corrupt(header_at, &shown, e))?
            };
            (real, Some(segments))
        } else {
            (stored, None)
        };
        if size > MAX_FILE_SIZE {
            return Err(corrupt(
                header_at,
                &shown,
                TarFault::FileTooLarge {
                    size,
                    limit: MAX_FILE_SIZE,
                },
            ));
        }
        if let Some(segments) = &sparse {
            sparse::validate(segments, size, self.data_left)
                .map_err(|e| corrupt(header_at, &shown, e))?;
        }

        Ok(Some(Entry {
            name,
            kind,
            link,
            mode,
            uid,
            gid,
            mtime,
            atime: pax.atime,
            device,
            xattrs: pax.xattrs.into_iter().collect(),
            size,
            sparse,
        }))
    }

    /// Reads the current entry's stored data (for a sparse file, its segments back to back).
    pub(crate) fn read_data(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.data_left == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.data_left).unwrap_or(usize::MAX));
        let n = loop {
            match self.input.read(&mut buf[..want]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "tar entry {:?}: the archive ends {} bytes into its data",
                    self.current, self.offset
                ),
            ));
        }
        self.offset += n as u64;
        self.data_left -= n as u64;
        Ok(n)
    }

    /// The current entry's data as a reader.
    pub(crate) fn data(&mut self) -> Data<'_, R> {
        Data(self)
    }

    fn size_field(&self, header: &Block<'_>, at: u64) -> Result<u64, LayerError> {
        let name = || String::from_utf8_lossy(&header.name()).into_owned();
        match fields::number(header.field(fields::SIZE)) {
            Ok(v) => u64::try_from(v)
                .map_err(|_| corrupt(at, &name(), TarFault::Negative { field: "size" })),
            Err(error) => Err(corrupt(
                at,
                &name(),
                TarFault::Number {
                    field: "size",
                    error,
                },
            )),
        }
    }

    /// The body of a special header, bounded, and the padding after it.
    fn special(&mut self, size: u64, at: u64, name: &str) -> Result<Vec<u8>, LayerError> {
        if size > MAX_SPECIAL {
            return Err(corrupt(
                at,
                name,
                TarFault::SpecialTooLarge {
                    size,
                    limit: MAX_SPECIAL,
                },
            ));
        }
        let mut body = vec![0u8; size as usize];
        self.read_exact(&mut body)?;
        self.skip(pad(size))?;
        Ok(body)
    }

    /// GNU's old sparse map: four entries in the header, then 21 per extension block while
    /// each says another follows.
    fn gnu_sparse_map(
        &mut self,
        header: &[u8; BLOCK],
        at: u64,
        name: &str,
    ) -> Result<Vec<Segment>, LayerError> {
        let mut segments = Vec::new();
        sparse::gnu_entries(&header[fields::GNU_SPARSE], &mut segments)
            .map_err(|e| corrupt(at, name, e))?;
        let mut extended = header[fields::GNU_IS_EXTENDED] != 0;
        let mut block = [0u8; BLOCK];
        while extended {
            if segments.len() > 1 << 20 {
                return Err(corrupt(at, name, SparseFault::GnuTooLong));
            }
            self.read_exact(&mut block)?;
            sparse::gnu_entries(&block[..504], &mut segments).map_err(|e| corrupt(at, name, e))?;
            extended = block[504] != 0;
        }
        Ok(segments)
    }

    /// PAX sparse 1.0: the map heads the data, in whole blocks.
    fn map_10(&mut self, at: u64, name: &str) -> Result<Vec<Segment>, LayerError> {
        let mut map = sparse::Map10::default();
        let mut block = [0u8; BLOCK];
        loop {
            if self.data_left < BLOCK as u64 {
                return Err(corrupt(at, name, SparseFault::Map10PastData));
            }
            self.read_exact(&mut block)?;
            self.data_left -= BLOCK as u64;
            if let Some(segments) = map.feed(&block).map_err(|e| corrupt(at, name, e))? {
                return Ok(segments);
            }
        }
    }

    /// Reads one block: `Ok(false)` when the stream ends before its first byte (and
    /// `eof_ok`), an error when it ends inside it.
    fn read_block(&mut self, block: &mut [u8; BLOCK], eof_ok: bool) -> Result<bool, LayerError> {
        let mut filled = 0;
        while filled < BLOCK {
            match self.input.read(&mut block[filled..]) {
                Ok(0) if filled == 0 && eof_ok => return Ok(false),
                Ok(0) => {
                    return Err(corrupt(self.offset, "", TarFault::EndsInHeader));
                }
                Ok(n) => {
                    filled += n;
                    self.offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => return Err(LayerError::Input { source }),
            }
        }
        Ok(true)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), LayerError> {
        self.input.read_exact(buf).map_err(|source| {
            if source.kind() == io::ErrorKind::UnexpectedEof {
                corrupt(self.offset, &self.current, TarFault::EndsEarly)
            } else {
                LayerError::Input { source }
            }
        })?;
        self.offset += buf.len() as u64;
        Ok(())
    }

    fn skip(&mut self, mut n: u64) -> Result<(), LayerError> {
        let mut scratch = [0u8; 8192];
        while n > 0 {
            let chunk = n.min(scratch.len() as u64) as usize;
            self.read_exact(&mut scratch[..chunk])?;
            n -= chunk as u64;
        }
        Ok(())
    }
}

fn corrupt(offset: u64, entry: &str, reason: impl Into<TarFault>) -> LayerError {
    LayerError::Corrupt {
        offset,
        entry: entry.to_owned(),
        reason: Box::new(reason.into()),
    }
}

/// The data of the current entry, as a [`Read`].
pub(crate) struct Data<'a, R>(&'a mut TarReader<R>);

impl<R: Read> Read for Data<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read_data(buf)
    }
}

/// Zero bytes padding `size` bytes to a whole block.
fn pad(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

fn trim_nuls(mut bytes: Vec<u8>) -> Vec<u8> {
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    bytes
}

fn describe_flag(flag: u8) -> String {
    let what = match flag {
        b'M' => "GNU multi-volume continuation",
        b'N' => "old GNU long names",
        b'A'..=b'Z' => "vendor extension",
        _ => "unknown",
    };
    if flag.is_ascii_graphic() {
        format!("{what} ({:?})", flag as char)
    } else {
        format!("{what} (byte {flag})")
    }
}

#[cfg(test)]
mod tests;
