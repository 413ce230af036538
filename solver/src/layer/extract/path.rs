//! Where an entry lands: its path checked, then its parent resolved component by component
//! under the destination, so that no symlink (from this tar or a lower layer) carries a write
//! outside it.
//!
//! Resolution is done in user space with `lstat`/`readlink`, not with `openat2`: it needs no
//! recent kernel and no fd juggling for xattrs on special files. That is sound because the
//! destination is a directory kiln owns and nobody else writes to while extracting; a
//! concurrent adversary inside the destination is outside the threat model.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Component, Path, PathBuf};

use crate::layer::LayerError;
use crate::layer::meta;

/// As many symlinks as Linux follows in one lookup.
const MAX_SYMLINK_HOPS: usize = 40;

/// An entry's path split into components, with `.` and empty components dropped; absolute
/// paths and any `..` are refused outright (a layer has no business climbing).
pub(super) fn components<'a>(raw: &'a [u8], entry: &str) -> Result<Vec<&'a [u8]>, LayerError> {
    if raw.starts_with(b"/") {
        return Err(LayerError::UnsafePath {
            entry: entry.to_owned(),
            reason: "absolute path",
        });
    }
    let parts: Vec<&[u8]> = raw
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .collect();
    if parts.iter().any(|c| *c == b"..") {
        return Err(LayerError::UnsafePath {
            entry: entry.to_owned(),
            reason: "path contains `..`",
        });
    }
    Ok(parts)
}

/// What to do about a directory that does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Missing {
    /// Create it (tars may omit parent directories).
    Create,
    /// Report that the directory is absent.
    Absent,
}

/// A directory inside the destination, free of symlinks.
#[derive(Debug, Clone)]
pub(super) struct Resolved {
    /// Absolute (destination-prefixed) path.
    pub(super) abs: PathBuf,
    /// Path relative to the destination.
    pub(super) rel: PathBuf,
    /// Directories created on the way, relative to the destination.
    pub(super) created: Vec<PathBuf>,
}

/// Resolves directory `dirs` under `dest`. A symlink on the way is followed only if its target
/// is relative and stays inside `dest`; an absolute target is refused, since on the host it
/// means the host's root, whatever it meant in the image. `Ok(None)` when a directory is
/// missing and `missing` is [`Missing::Absent`].
pub(super) fn resolve_dir(
    dest: &Path,
    dirs: &[&[u8]],
    missing: Missing,
    entry: &str,
) -> Result<Option<Resolved>, LayerError> {
    let mut resolved = Resolved {
        abs: dest.to_path_buf(),
        rel: PathBuf::new(),
        created: Vec::new(),
    };
    let mut pending: VecDeque<OsString> = dirs
        .iter()
        .map(|c| OsStr::from_bytes(c).to_os_string())
        .collect();
    let mut hops = 0;
    let mut last_link: Option<PathBuf> = None;
    let fail = |path: &Path, source: io::Error| LayerError::Extract {
        entry: entry.to_owned(),
        path: path.to_path_buf(),
        source,
    };

    while let Some(component) = pending.pop_front() {
        if component == ".." {
            // Only a symlink's target brings `..` here; entries with `..` were refused.
            if !resolved.rel.pop() {
                return Err(LayerError::SymlinkEscape {
                    entry: entry.to_owned(),
                    link: last_link.unwrap_or_else(|| dest.to_path_buf()),
                });
            }
            resolved.abs.pop();
            continue;
        }
        if component.is_empty() || component == "." {
            continue;
        }
        let candidate = resolved.abs.join(&component);
        match std::fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.is_dir() => {}
            Ok(meta) if meta.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(fail(&candidate, io::Error::from(rustix::io::Errno::LOOP)));
                }
                let target = std::fs::read_link(&candidate).map_err(|e| fail(&candidate, e))?;
                if target.is_absolute() {
                    return Err(LayerError::SymlinkEscape {
                        entry: entry.to_owned(),
                        link: candidate,
                    });
                }
                for part in target.components().rev() {
                    match part {
                        Component::Normal(name) => pending.push_front(name.to_os_string()),
                        Component::ParentDir => pending.push_front("..".into()),
                        Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
                    }
                }
                last_link = Some(candidate);
                continue;
            }
            Ok(_) => {
                return Err(LayerError::ParentNotADirectory {
                    entry: entry.to_owned(),
                    path: candidate,
                });
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                if missing == Missing::Absent {
                    return Ok(None);
                }
                // 0755 like Docker, and set explicitly since the umask may have cut it.
                std::fs::DirBuilder::new()
                    .mode(0o755)
                    .create(&candidate)
                    .and_then(|()| meta::set_mode(&candidate, 0o755))
                    .map_err(|e| fail(&candidate, e))?;
                resolved.created.push(resolved.rel.join(&component));
            }
            Err(error) => return Err(fail(&candidate, error)),
        }
        resolved.abs.push(&component);
        resolved.rel.push(&component);
    }
    Ok(Some(resolved))
}

#[cfg(test)]
mod tests {
    use super::components;

    #[test]
    fn refuses_absolute_and_dotdot() {
        assert!(components(b"/etc/passwd", "e").is_err());
        assert!(components(b"../x", "e").is_err());
        assert!(components(b"a/../../x", "e").is_err());
        assert_eq!(
            components(b"./a//b/./c/", "e").unwrap(),
            vec![&b"a"[..], b"b", b"c"]
        );
        assert!(components(b"./", "e").unwrap().is_empty());
    }
}
