//! Creating one file of each kind at an already-resolved path, replacing what a lower layer
//! left there the way Docker does: anything but a directory meeting a directory is removed
//! first, and a final symlink is replaced, never followed.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags};

use super::fields::Fields;
use crate::layer::meta;

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

/// A regular file with `content`, then its metadata.
pub(super) fn regular<R: Read>(
    path: &Path,
    content: &mut R,
    fields: &Fields,
    same_owner: bool,
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
    loop {
        let n = match content.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        file.write_all(&buf[..n])?;
    }
    drop(file);
    finish(path, fields, same_owner, true)
}

/// A directory (kept if one is there), with owner and xattrs; its mode and times are the
/// caller's to apply once its children are in.
pub(super) fn directory(path: &Path, fields: &Fields, same_owner: bool) -> io::Result<()> {
    if !make_room(path, true)? {
        // Owner-only until the deferred chmod, so an unprivileged run can fill it.
        rustix::fs::mkdirat(CWD, path, Mode::from_raw_mode(0o700))?;
    }
    if same_owner {
        meta::set_owner(path, fields.uid, fields.gid)?;
    }
    meta::set_xattrs(path, &fields.xattrs)
}

/// A symlink to `target`, which is stored verbatim and never checked nor followed here.
pub(super) fn symlink(
    path: &Path,
    target: &[u8],
    fields: &Fields,
    same_owner: bool,
) -> io::Result<()> {
    make_room(path, false)?;
    rustix::fs::symlinkat(OsStr::from_bytes(target), CWD, path)?;
    finish(path, fields, same_owner, false)
}

/// A character or block device, or a fifo.
pub(super) fn node(
    path: &Path,
    kind: FileType,
    fields: &Fields,
    same_owner: bool,
) -> io::Result<()> {
    make_room(path, false)?;
    let dev = match kind {
        FileType::CharacterDevice | FileType::BlockDevice => {
            rustix::fs::makedev(fields.device.0, fields.device.1)
        }
        _ => 0,
    };
    rustix::fs::mknodat(CWD, path, kind, Mode::from_raw_mode(0o600), dev)?;
    finish(path, fields, same_owner, true)
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

/// Owner, then mode (chown clears setuid bits), then xattrs (chown clears
/// `security.capability`), then times.
fn finish(path: &Path, fields: &Fields, same_owner: bool, has_mode: bool) -> io::Result<()> {
    if same_owner {
        meta::set_owner(path, fields.uid, fields.gid)?;
    }
    if has_mode {
        meta::set_mode(path, fields.mode)?;
    }
    meta::set_xattrs(path, &fields.xattrs)?;
    meta::set_times(path, fields.mtime, fields.mtime)
}
