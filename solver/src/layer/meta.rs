//! Applying ownership, permissions, times and xattrs to a path without ever following a final
//! symlink; shared by extraction and by snapshot merging and export.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, CWD, Gid, Mode, Timespec, Timestamps, Uid};

use super::xattr;

/// `lchown`: owner and group of `path` itself, a symlink included.
pub(crate) fn set_owner(path: &Path, uid: u64, gid: u64) -> io::Result<()> {
    let too_big = |what| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} exceeds 32 bits"),
        )
    };
    let uid = u32::try_from(uid).map_err(|_| too_big("uid"))?;
    let gid = u32::try_from(gid).map_err(|_| too_big("gid"))?;
    rustix::fs::chownat(
        CWD,
        path,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

/// `chmod` with setuid/setgid/sticky; call it after [`set_owner`], which clears setuid bits,
/// and never on a symlink (Linux has no `lchmod`, and a symlink's mode means nothing).
pub(crate) fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    rustix::fs::chmodat(
        CWD,
        path,
        Mode::from_raw_mode(mode & 0o7777),
        AtFlags::empty(),
    )?;
    Ok(())
}

/// Sets access and modification time of `path` itself (`lutimes`).
pub(crate) fn set_times(path: &Path, atime: Timespec, mtime: Timespec) -> io::Result<()> {
    let times = Timestamps {
        last_access: atime,
        last_modification: mtime,
    };
    rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// A whole-second-or-finer time as rustix wants it.
pub(crate) fn timespec(sec: i64, nsec: i64) -> Timespec {
    Timespec {
        tv_sec: sec,
        tv_nsec: nsec,
    }
}

/// Sets each xattr on `path` itself. Overlay bookkeeping and host labels are skipped (see
/// [`xattr::is_excluded`]); a filesystem without xattr support is not an error, as in
/// containerd, since the content is still right.
pub(crate) fn set_xattrs(path: &Path, attrs: &[(Vec<u8>, Vec<u8>)]) -> io::Result<()> {
    for (name, value) in attrs {
        if xattr::is_excluded(name) {
            continue;
        }
        match rustix::fs::lsetxattr(
            path,
            OsStr::from_bytes(name),
            value,
            rustix::fs::XattrFlags::empty(),
        ) {
            Ok(()) => {}
            Err(errno) if xattr::unsupported(errno) => {}
            Err(errno) => {
                let error = io::Error::from(errno);
                return Err(io::Error::new(
                    error.kind(),
                    format!("setting xattr {}: {error}", String::from_utf8_lossy(name)),
                ));
            }
        }
    }
    Ok(())
}
