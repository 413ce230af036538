//! Creating one file of each kind at an already-resolved path, replacing what a lower layer
//! left there the way Docker does: anything but a directory meeting a directory is removed
//! first, and a final symlink is replaced, never followed.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, Timespec};

use crate::layer::meta;
use crate::layer::read::Entry;

/// Removes whatever is at `path` unless both it and the new entry are directories; true when
/// an existing directory was kept.
pub(super) fn make_room(path: &Path, new_is_dir: bool) -> io::Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(existing) if existing.is_dir() && new_is_dir => Ok(true),
        Ok(existing) if existing.is_dir() => std::fs::remove_dir_all(path).map(|()| false),
        Ok(_) => std::fs::remove_file(path).map(|()| false),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

/// Removes whatever is at `path`, a directory with all it holds; absence is fine.
pub(super) fn remove_any(path: &Path) -> io::Result<()> {
    make_room(path, false).map(|_| ())
}

/// A regular file with the entry's content; a sparse file gets its segments at their offsets
/// and holes (not zeros on disk) between them.
pub(super) fn regular<R: Read>(
    path: &Path,
    entry: &Entry,
    content: &mut R,
    buf: &mut [u8],
) -> io::Result<()> {
    make_room(path, false)?;
    // O_EXCL|O_NOFOLLOW: the name was just cleared; if anything appeared there since, fail
    // rather than write through it.
    let fd = rustix::fs::open(
        path,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    let mut file = File::from(fd);
    match &entry.sparse {
        None => copy_exact(content, &mut file, entry.size, buf)?,
        Some(segments) => {
            for segment in segments {
                file.seek(SeekFrom::Start(segment.offset))?;
                copy_exact(content, &mut file, segment.length, buf)?;
            }
            file.set_len(entry.size)?;
        }
    }
    Ok(())
}

/// Copies exactly `len` bytes (the reader reports a stream cut short).
fn copy_exact<R: Read>(
    from: &mut R,
    to: &mut File,
    mut len: u64,
    buf: &mut [u8],
) -> io::Result<()> {
    while len > 0 {
        let want = buf.len().min(usize::try_from(len).unwrap_or(usize::MAX));
        let n = match from.read(&mut buf[..want]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        to.write_all(&buf[..n])?;
        len -= n as u64;
    }
    Ok(())
}

/// A directory (kept if one is there), with owner and xattrs; its mode and times are the
/// caller's to apply once its children are in.
pub(super) fn directory(
    path: &Path,
    owner: Option<(u64, u64)>,
    xattrs: &[(Vec<u8>, Vec<u8>)],
) -> io::Result<()> {
    if !make_room(path, true)? {
        // Owner-only until the deferred chmod, so an unprivileged run can fill it.
        rustix::fs::mkdirat(CWD, path, Mode::from_raw_mode(0o700))?;
    }
    if let Some((uid, gid)) = owner {
        meta::set_owner(path, uid, gid)?;
    }
    meta::set_xattrs(path, xattrs)
}

/// A symlink to `target`, which is stored verbatim and never checked nor followed here.
pub(super) fn symlink(path: &Path, target: &[u8]) -> io::Result<()> {
    make_room(path, false)?;
    rustix::fs::symlinkat(OsStr::from_bytes(target), CWD, path)?;
    Ok(())
}

/// A character or block device, or a fifo.
pub(super) fn node(path: &Path, kind: FileType, device: (u32, u32)) -> io::Result<()> {
    make_room(path, false)?;
    let dev = match kind {
        FileType::CharacterDevice | FileType::BlockDevice => {
            rustix::fs::makedev(device.0, device.1)
        }
        _ => 0,
    };
    rustix::fs::mknodat(CWD, path, kind, Mode::from_raw_mode(0o600), dev)?;
    Ok(())
}

/// An overlay whiteout: a 0:0 character device, mode 0, as overlayfs creates them.
pub(super) fn overlay_whiteout(path: &Path) -> io::Result<()> {
    make_room(path, false)?;
    rustix::fs::mknodat(CWD, path, FileType::CharacterDevice, Mode::empty(), 0)?;
    // mknod already gave mode 0, but a umask can only remove bits; make it explicit anyway.
    meta::set_mode(path, 0)
}

/// A hardlink at `path` to the existing `target`.
pub(super) fn hardlink(path: &Path, target: &Path) -> io::Result<()> {
    if path == target {
        return Ok(());
    }
    make_room(path, false)?;
    // No AT_SYMLINK_FOLLOW: a link to a symlink is a link to the symlink itself.
    rustix::fs::linkat(CWD, target, CWD, path, AtFlags::empty())?;
    Ok(())
}

/// Owner, then mode (chown clears setuid bits; a symlink has none), then xattrs (chown clears
/// `security.capability`), then times.
pub(super) fn finish(
    path: &Path,
    owner: Option<(u64, u64)>,
    mode: Option<u32>,
    xattrs: &[(Vec<u8>, Vec<u8>)],
    atime: Timespec,
    mtime: Timespec,
) -> io::Result<()> {
    if let Some((uid, gid)) = owner {
        meta::set_owner(path, uid, gid)?;
    }
    if let Some(mode) = mode {
        meta::set_mode(path, mode)?;
    }
    meta::set_xattrs(path, xattrs)?;
    meta::set_times(path, atime, mtime)
}
