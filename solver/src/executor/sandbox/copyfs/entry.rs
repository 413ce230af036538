//! Copying one filesystem entry exactly: type, contents, ownership, mode (set-id bits
//! included), extended attributes, times, and hard links among the entries copied.
//! Nothing here follows a symlink.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, Timespec, Timestamps, XattrFlags};

/// Largest list or value the kernel allows for extended attributes.
const XATTR_MAX: usize = 64 * 1024;

/// A failure of the copy fallback: what was being done to which path, and why.
#[derive(Debug, thiserror::Error)]
#[error("{what} {}: {source}", path.display())]
pub(in crate::executor::sandbox) struct CopyFsError {
    /// What was being done (`copying to`, `chown`).
    what: &'static str,
    /// The path it was done to.
    path: PathBuf,
    /// Why it failed.
    #[source]
    source: std::io::Error,
}

/// A result of the copy fallback.
pub(super) type CopyResult<T> = Result<T, CopyFsError>;

/// The error of doing `what` to `path`.
pub(super) fn fail(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CopyFsError {
    let path = path.to_path_buf();
    move |source| CopyFsError { what, path, source }
}

/// Marks a directory opaque, in whichever overlay namespace the kernel lets kiln write (the
/// one rule of `layer::xattr`, which the layer reader also follows).
pub(super) fn set_opaque(path: &Path) -> CopyResult<()> {
    crate::layer::xattr::set_opaque(path).map_err(fail("marking opaque", path))
}

/// Writes a whiteout at `path`.
pub(super) fn make_whiteout(path: &Path) -> CopyResult<()> {
    rustix::fs::mknodat(CWD, path, FileType::CharacterDevice, Mode::empty(), 0)
        .map_err(|e| fail("creating whiteout", path)(e.into()))
}

/// Hard links seen so far: source (dev, inode) → where its first copy went.
#[derive(Debug, Default)]
pub(super) struct Links(HashMap<(u64, u64), PathBuf>);

/// Copies a non-directory entry from `src` (described by `meta`) to the new path `dst`.
pub(super) fn copy_node(
    src: &Path,
    meta: &Metadata,
    dst: &Path,
    links: &mut Links,
) -> CopyResult<()> {
    let key = (meta.dev(), meta.ino());
    if meta.nlink() > 1
        && let Some(first) = links.0.get(&key)
    {
        return std::fs::hard_link(first, dst).map_err(fail("linking", dst));
    }
    let kind = meta.file_type();
    if kind.is_symlink() {
        let target = std::fs::read_link(src).map_err(fail("reading link", src))?;
        std::os::unix::fs::symlink(&target, dst).map_err(fail("creating symlink", dst))?;
    } else if kind.is_file() {
        std::fs::copy(src, dst).map_err(fail("copying to", dst))?;
    } else {
        let file_type = FileType::from_raw_mode(meta.mode());
        rustix::fs::mknodat(
            CWD,
            dst,
            file_type,
            Mode::from_raw_mode(meta.mode() & 0o7777),
            meta.rdev(),
        )
        .map_err(|e| fail("creating node", dst)(e.into()))?;
    }
    apply_metadata(src, meta, dst)?;
    set_times(dst, meta)?;
    if meta.nlink() > 1 {
        links.0.insert(key, dst.to_path_buf());
    }
    Ok(())
}

/// Creates directory `dst` with `src`'s ownership, mode and xattrs (times come later, once
/// its contents are written).
pub(super) fn copy_dir(src: &Path, meta: &Metadata, dst: &Path) -> CopyResult<()> {
    std::fs::create_dir(dst).map_err(fail("creating directory", dst))?;
    apply_metadata(src, meta, dst)
}

/// Ownership, then mode (chown clears set-id bits), then xattrs (chown also drops
/// security.capability). Overlay's own xattrs are not copied: they describe the layer
/// format, not the file.
pub(super) fn apply_metadata(src: &Path, meta: &Metadata, dst: &Path) -> CopyResult<()> {
    std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid()))
        .map_err(fail("chown", dst))?;
    if !meta.file_type().is_symlink() {
        let perms = std::fs::Permissions::from_mode(meta.mode() & 0o7777);
        std::fs::set_permissions(dst, perms).map_err(fail("chmod", dst))?;
    }
    copy_xattrs(src, dst)
}

fn copy_xattrs(src: &Path, dst: &Path) -> CopyResult<()> {
    let mut names = vec![0u8; XATTR_MAX];
    let len = match rustix::fs::llistxattr(src, &mut names[..]) {
        Ok(len) => len,
        // A filesystem without xattrs has none to copy.
        Err(rustix::io::Errno::OPNOTSUPP) => return Ok(()),
        Err(e) => return Err(fail("listing xattrs of", src)(e.into())),
    };
    let mut value = vec![0u8; XATTR_MAX];
    for name in names[..len].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.") {
            continue;
        }
        let name = std::ffi::OsStr::from_bytes(name);
        let n = rustix::fs::lgetxattr(src, name, &mut value[..])
            .map_err(|e| fail("reading xattr of", src)(e.into()))?;
        rustix::fs::lsetxattr(dst, name, &value[..n], XattrFlags::empty())
            .map_err(|e| fail("writing xattr of", dst)(e.into()))?;
    }
    Ok(())
}

/// Sets access and modification times from `meta`, on the entry itself (not a link target).
pub(super) fn set_times(dst: &Path, meta: &Metadata) -> CopyResult<()> {
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: meta.atime(),
            tv_nsec: meta.atime_nsec() as _,
        },
        last_modification: Timespec {
            tv_sec: meta.mtime(),
            tv_nsec: meta.mtime_nsec() as _,
        },
    };
    rustix::fs::utimensat(CWD, dst, &times, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| fail("setting times of", dst)(e.into()))
}
