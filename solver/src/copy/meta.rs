//! Giving a written entry its final owner, mode, extended attributes and times, in
//! BuildKit's order (`copyFileInfo`): chown first, since chown clears set-id bits, then chmod
//! (never on a symlink, where it would reach the target), then times without following
//! symlinks.

use std::fs::{self, Metadata, Permissions};
use std::os::unix::fs::{MetadataExt, PermissionsExt, lchown};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::{AtFlags, CWD, Timespec, Timestamps, XattrFlags};

use super::chmod::ChmodSpec;
use super::error::CopyError;

/// Access and modification times, to the nanosecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    /// Seconds and nanoseconds of the last access.
    pub atime: (i64, i64),
    /// Seconds and nanoseconds of the last modification.
    pub mtime: (i64, i64),
}

impl Times {
    /// The times of an existing entry.
    pub(super) fn of(meta: &Metadata) -> Self {
        Self {
            atime: (meta.atime(), meta.atime_nsec()),
            mtime: (meta.mtime(), meta.mtime_nsec()),
        }
    }

    /// Now, for what BuildKit creates rather than copies.
    pub(super) fn now() -> Self {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let now = (
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
            i64::from(since.subsec_nanos()),
        );
        Self {
            atime: now,
            mtime: now,
        }
    }

    /// Whole seconds (tests set times with it).
    #[cfg(test)]
    pub(super) fn seconds(atime: i64, mtime: i64) -> Self {
        Self {
            atime: (atime, 0),
            mtime: (mtime, 0),
        }
    }
}

/// The owner, mode and times an entry ends up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attrs {
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Permission and set-id/sticky bits.
    pub mode: u32,
    /// Access and modification times.
    pub times: Times,
}

/// How copied entries get their owner and mode.
#[derive(Debug, Clone, Copy)]
pub(super) struct Policy<'a> {
    /// `--chown`, resolved.
    pub(super) chown: Option<(u32, u32)>,
    /// `--chmod`, parsed.
    pub(super) chmod: Option<&'a ChmodSpec>,
    /// Context files are owned by 0:0 (BuildKit's local source resets them); files from a
    /// stage or image keep their owner.
    pub(super) is_context: bool,
}

impl Policy<'_> {
    /// The attributes a copy of an entry with `meta` gets.
    pub(super) fn attrs_for(&self, meta: &Metadata) -> Attrs {
        let (uid, gid) = match (self.chown, self.is_context) {
            (Some(owner), _) => owner,
            (None, true) => (0, 0),
            (None, false) => (meta.uid(), meta.gid()),
        };
        let mode = meta.mode() & 0o7777;
        let mode = self
            .chmod
            .map_or(mode, |chmod| chmod.apply(mode, meta.is_dir()));
        Attrs {
            uid,
            gid,
            mode,
            times: Times::of(meta),
        }
    }

    /// How directories created on the way are made.
    pub(super) fn new_dir(&self) -> NewDir {
        NewDir::new(self.chown, self.chmod)
    }
}

/// How BuildKit's `MkdirAll` makes the directories a copy creates on the way: owned by the
/// `--chown` user (else root), with an octal `--chmod` as their mode (fsutil's `Copy` passes
/// `CopyInfo.Mode` as MkdirAll's perm; a symbolic one leaves 0755).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct NewDir {
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) mode: u32,
}

impl NewDir {
    /// For a copy with these `--chown` and `--chmod`.
    pub(super) fn new(chown: Option<(u32, u32)>, chmod: Option<&ChmodSpec>) -> Self {
        let (uid, gid) = chown.unwrap_or((0, 0));
        let mode = match chmod {
            Some(ChmodSpec::Octal(mode)) => *mode,
            _ => 0o755,
        };
        NewDir { uid, gid, mode }
    }
}

/// Applies owner and mode (not times) to `path`; `symlink` skips the mode.
pub(super) fn set_owner_mode(path: &Path, attrs: &Attrs, symlink: bool) -> Result<(), CopyError> {
    lchown(path, Some(attrs.uid), Some(attrs.gid)).map_err(CopyError::io("lchown", path))?;
    if !symlink {
        fs::set_permissions(path, Permissions::from_mode(attrs.mode))
            .map_err(CopyError::io("chmod", path))?;
    }
    Ok(())
}

/// Sets the times of `path` itself, never of a symlink's target.
pub(super) fn set_times(path: &Path, times: Times) -> Result<(), CopyError> {
    let spec = |(sec, nsec): (i64, i64)| Timespec {
        tv_sec: sec,
        tv_nsec: nsec,
    };
    let stamps = Timestamps {
        last_access: spec(times.atime),
        last_modification: spec(times.mtime),
    };
    rustix::fs::utimensat(CWD, path, &stamps, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|errno| CopyError::io("utimensat", path)(errno.into()))
}

/// Copies extended attributes from `src` to `dst`, both unfollowed. Like BuildKit, which
/// only logs xattr failures, anything the filesystems refuse is skipped.
pub(super) fn copy_xattrs(src: &Path, dst: &Path) {
    let Ok(size) = rustix::fs::llistxattr_query(src) else {
        return;
    };
    if size == 0 {
        return;
    }
    let mut names = vec![0u8; size];
    let Ok(len) = rustix::fs::llistxattr(src, &mut names[..]) else {
        return;
    };
    for name in names.get(..len).unwrap_or_default().split(|b| *b == 0) {
        if name.is_empty() {
            continue;
        }
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        let Ok(size) = rustix::fs::lgetxattr_query(src, name) else {
            continue;
        };
        let mut value = vec![0u8; size];
        let Ok(len) = rustix::fs::lgetxattr(src, name, &mut value[..]) else {
            continue;
        };
        let value = value.get(..len).unwrap_or_default();
        let _ = rustix::fs::lsetxattr(dst, name, value, XattrFlags::empty());
    }
}
