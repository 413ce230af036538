//! Extended attributes of a path, never following a final symlink, and which of them belong in
//! a layer.
//!
//! Overlayfs keeps its bookkeeping (`opaque`, `redirect`, `metacopy`, `origin`, …) in
//! `trusted.overlay.*` (or `user.overlay.*` when unprivileged). Those describe how a directory
//! is stacked, not what it contains, so they never enter a tar, and one arriving in a tar is
//! dropped: an untrusted layer must not redirect or hide paths when used as a lowerdir.
//! `security.selinux` is the host's label of the file, not the image's, and would make a layer
//! depend on the machine that built it.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The opaque-directory marker as a privileged overlay mount reads it.
pub(crate) const OPAQUE_TRUSTED: &str = "trusted.overlay.opaque";
/// The opaque-directory marker of an unprivileged (`userxattr`) overlay mount.
pub(crate) const OPAQUE_USER: &str = "user.overlay.opaque";

/// Whether an xattr is overlay bookkeeping or a host label rather than file content.
pub(crate) fn is_excluded(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.")
        || name.starts_with(b"user.overlay.")
        || name == b"security.selinux"
}

/// All xattrs of `path` (not following a final symlink) that belong in a layer, sorted by name.
pub(crate) fn read_all(path: &Path) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let names = list(path)?;
    let mut attrs = Vec::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        if is_excluded(name) {
            continue;
        }
        // Gone between list and get: another writer removed it, so it is not content.
        if let Some(value) = get(path, OsStr::from_bytes(name))? {
            attrs.push((name.to_vec(), value));
        }
    }
    attrs.sort();
    Ok(attrs)
}

/// Whether `path` (a directory) is marked opaque, by either overlay namespace.
pub(crate) fn is_opaque(path: &Path) -> io::Result<bool> {
    for name in [OPAQUE_TRUSTED, OPAQUE_USER] {
        if get(path, OsStr::new(name))?.is_some_and(|v| v == b"y") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Marks directory `path` opaque for overlayfs: `trusted.overlay.opaque` when privileged,
/// `user.overlay.opaque` when the kernel refuses trusted xattrs to us.
pub(crate) fn set_opaque(path: &Path) -> io::Result<()> {
    match set(path, OsStr::new(OPAQUE_TRUSTED), b"y") {
        Err(error) if error.raw_os_error() == Some(rustix::io::Errno::PERM.raw_os_error()) => {
            set(path, OsStr::new(OPAQUE_USER), b"y")
        }
        other => other,
    }
}

/// Sets one xattr on `path` without following a final symlink.
pub(crate) fn set(path: &Path, name: &OsStr, value: &[u8]) -> io::Result<()> {
    rustix::fs::lsetxattr(path, name, value, rustix::fs::XattrFlags::empty())?;
    Ok(())
}

/// The NUL-separated name list, growing the buffer if xattrs are added meanwhile.
fn list(path: &Path) -> io::Result<Vec<u8>> {
    loop {
        let size = match rustix::fs::llistxattr_query(path) {
            Ok(size) => size,
            Err(errno) if unsupported(errno) => return Ok(Vec::new()),
            Err(errno) => return Err(errno.into()),
        };
        if size == 0 {
            return Ok(Vec::new());
        }
        // rustix fills a `&mut Vec` up to its length, not its capacity.
        let mut buf = vec![0u8; size];
        match rustix::fs::llistxattr(path, &mut buf) {
            Ok(len) => {
                buf.truncate(len);
                return Ok(buf);
            }
            Err(rustix::io::Errno::RANGE) => continue,
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// One xattr's value, or `None` when it does not exist.
fn get(path: &Path, name: &OsStr) -> io::Result<Option<Vec<u8>>> {
    loop {
        let size = match rustix::fs::lgetxattr_query(path, name) {
            Ok(size) => size,
            Err(errno) if errno == rustix::io::Errno::NODATA || unsupported(errno) => {
                return Ok(None);
            }
            Err(errno) => return Err(errno.into()),
        };
        if size == 0 {
            return Ok(Some(Vec::new()));
        }
        let mut buf = vec![0u8; size];
        match rustix::fs::lgetxattr(path, name, &mut buf) {
            Ok(len) => {
                buf.truncate(len);
                return Ok(Some(buf));
            }
            Err(rustix::io::Errno::RANGE) => continue,
            Err(rustix::io::Errno::NODATA) => return Ok(None),
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// A filesystem without xattr support simply has none.
pub(crate) fn unsupported(errno: rustix::io::Errno) -> bool {
    errno == rustix::io::Errno::NOTSUP || errno == rustix::io::Errno::OPNOTSUPP
}

/// Removes one xattr from `path` without following a final symlink; absence is fine.
pub(crate) fn remove(path: &Path, name: &OsStr) -> io::Result<()> {
    match rustix::fs::lremovexattr(path, name) {
        Ok(()) => Ok(()),
        Err(errno) if errno == rustix::io::Errno::NODATA || unsupported(errno) => Ok(()),
        Err(errno) => Err(errno.into()),
    }
}
