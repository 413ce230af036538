//! Paths inside a root directory, with symlinks resolved as if the root were `/`: containerd's
//! `fs.RootPath` semantics, which BuildKit and Docker's chrooted extraction share.
//!
//! A symlink met on the way is followed: an absolute target starts again at the root, a
//! relative one continues from the link's directory, and `..` never climbs above the root (it
//! stays there, as `/..` does). So `/var/run -> /run` in an image means `<root>/run`, never
//! the host's `/run`, and no walk can leave the root however the links are laid out.
//!
//! Resolution is done in user space with `lstat`/`readlink`. That is sound because the root is
//! a directory kiln owns and nobody else writes to while kiln works in it; a concurrent
//! adversary inside the root is outside the threat model.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Component, Path, PathBuf};

/// Symlinks followed in one resolution before it is taken for a loop (containerd's limit).
pub(crate) const MAX_SYMLINK_HOPS: usize = 255;

/// What to do about a directory on the way that does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Missing {
    /// Create it, mode 0755 (owned by the caller).
    Create,
    /// Stop: the resolution yields `None`.
    Stop,
}

/// A directory inside the root, reached without crossing a symlink.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    /// The path on the host (root-prefixed).
    pub(crate) abs: PathBuf,
    /// The same path relative to the root.
    pub(crate) rel: PathBuf,
    /// Directories created on the way, relative to the root.
    pub(crate) created: Vec<PathBuf>,
}

/// Why a path could not be resolved.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RootPathError {
    /// A component exists but is neither a directory nor a symlink.
    #[error("{path} is not a directory")]
    NotADirectory {
        /// The component on the host.
        path: PathBuf,
    },
    /// More than [`MAX_SYMLINK_HOPS`] symlinks: a loop.
    #[error("{path}: too many levels of symbolic links")]
    TooManyLinks {
        /// The symlink at which the limit was passed.
        path: PathBuf,
    },
    /// `lstat`, `readlink` or `mkdir` failed.
    #[error("{path}: {source}")]
    Io {
        /// The component on the host.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// Resolves `dirs` (components of a directory path relative to `root`, which may contain
/// `.` and `..`) to a real directory inside `root`, following every symlink on the way.
pub(crate) fn resolve_dir<I, S>(
    root: &Path,
    dirs: I,
    missing: Missing,
) -> Result<Option<Resolved>, RootPathError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut resolved = Resolved {
        abs: root.to_path_buf(),
        rel: PathBuf::new(),
        created: Vec::new(),
    };
    let mut pending: VecDeque<OsString> = dirs
        .into_iter()
        .map(|c| c.as_ref().to_os_string())
        .collect();
    let mut hops = 0;
    let io_error = |path: &Path, source: io::Error| RootPathError::Io {
        path: path.to_path_buf(),
        source,
    };

    while let Some(component) = pending.pop_front() {
        if component.is_empty() || component == "." {
            continue;
        }
        if component == ".." {
            // At the root, `..` is the root.
            if resolved.rel.pop() {
                resolved.abs.pop();
            }
            continue;
        }
        let candidate = resolved.abs.join(&component);
        match std::fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.is_dir() => {}
            Ok(meta) if meta.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(RootPathError::TooManyLinks { path: candidate });
                }
                let target = std::fs::read_link(&candidate).map_err(|e| io_error(&candidate, e))?;
                if target.is_absolute() {
                    resolved.abs = root.to_path_buf();
                    resolved.rel = PathBuf::new();
                }
                for part in target.components().rev() {
                    match part {
                        Component::Normal(name) => pending.push_front(name.to_os_string()),
                        Component::ParentDir => pending.push_front("..".into()),
                        Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
                    }
                }
                continue;
            }
            Ok(_) => return Err(RootPathError::NotADirectory { path: candidate }),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                if missing == Missing::Stop {
                    return Ok(None);
                }
                // 0755 like Docker and containerd, set explicitly since the umask may cut it.
                std::fs::DirBuilder::new()
                    .mode(0o755)
                    .create(&candidate)
                    .and_then(|()| {
                        std::fs::set_permissions(
                            &candidate,
                            std::os::unix::fs::PermissionsExt::from_mode(0o755),
                        )
                    })
                    .map_err(|e| io_error(&candidate, e))?;
                resolved.created.push(resolved.rel.join(&component));
            }
            Err(error) => return Err(io_error(&candidate, error)),
        }
        resolved.abs.push(&component);
        resolved.rel.push(&component);
    }
    Ok(Some(resolved))
}

/// Resolves `rel` (a path relative to `root`) to where it leads inside `root`, following the
/// symlinks of every component and of the last one too: the path a copy reads when BuildKit
/// follows its source (`FollowSymlinks`). `None` when it does not exist; the result is never a
/// symlink, so a walk starting there cannot leave the root through it.
pub(crate) fn resolve_path(root: &Path, rel: &Path) -> Result<Option<PathBuf>, RootPathError> {
    let mut wanted = clamp_clean(rel);
    for _ in 0..=MAX_SYMLINK_HOPS {
        let (dirs, last) = match wanted.file_name() {
            Some(name) => (
                wanted.parent().unwrap_or(Path::new("")),
                name.to_os_string(),
            ),
            None => return Ok(Some(PathBuf::new())),
        };
        let Some(dir) = resolve_dir(
            root,
            dirs.components().map(Component::as_os_str),
            Missing::Stop,
        )?
        else {
            return Ok(None);
        };
        let candidate = dir.abs.join(&last);
        match std::fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target =
                    std::fs::read_link(&candidate).map_err(|source| RootPathError::Io {
                        path: candidate.clone(),
                        source,
                    })?;
                // An absolute target starts again at the root; a relative one from the link's dir.
                wanted = clamp_clean(&if target.is_absolute() {
                    target
                } else {
                    dir.rel.join(target)
                });
            }
            Ok(_) => return Ok(Some(dir.rel.join(last))),
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(RootPathError::Io {
                    path: candidate,
                    source,
                });
            }
        }
    }
    Err(RootPathError::TooManyLinks {
        path: root.join(rel),
    })
}

/// `path` with `.` dropped and `..` applied lexically, clamped at the root as `/..` is.
fn clamp_clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// Splits a path as an archive or a Dockerfile writes it into clean components: a leading `/`
/// and `./`, empty and `.` components dropped, `..` applied; `None` when `..` would climb
/// above the start.
pub(crate) fn clean_components(raw: &[u8]) -> Option<Vec<&[u8]>> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop()?;
            }
            name => parts.push(name),
        }
    }
    Some(parts)
}

/// The components of `parts` as a relative path.
#[cfg(test)]
pub(crate) fn join_components(parts: &[&[u8]]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt as _;
    parts.iter().map(|p| OsStr::from_bytes(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::testutil::TempDir;

    #[test]
    fn clean_components_strip_and_refuse_climbing() {
        let c = |s: &str| clean_components(s.as_bytes()).map(|v| join_components(&v));
        assert_eq!(c("/etc/passwd"), Some(PathBuf::from("etc/passwd")));
        assert_eq!(c("./a//b/./c/"), Some(PathBuf::from("a/b/c")));
        assert_eq!(c("a/../b"), Some(PathBuf::from("b")));
        assert_eq!(c("./"), Some(PathBuf::new()));
        assert_eq!(c("/"), Some(PathBuf::new()));
        assert_eq!(c("../x"), None);
        assert_eq!(c("a/../../x"), None);
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let root = TempDir::new("rootpath");
        let r = root.path();
        std::fs::create_dir_all(r.join("run/lock")).unwrap();
        std::fs::create_dir(r.join("var")).unwrap();
        std::os::unix::fs::symlink("/run", r.join("var/run")).unwrap();
        std::os::unix::fs::symlink("../../../../..", r.join("var/up")).unwrap();
        std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();

        let got = resolve_dir(r, ["var", "run", "lock"], Missing::Stop)
            .unwrap()
            .unwrap();
        assert_eq!(got.abs, r.join("run/lock"));
        assert_eq!(got.rel, PathBuf::from("run/lock"));

        let got = resolve_dir(r, ["var", "up", "etc"], Missing::Create)
            .unwrap()
            .unwrap();
        assert_eq!(got.abs, r.join("etc"), "`..` is clamped at the root");
        assert_eq!(got.created, [PathBuf::from("etc")]);

        assert!(
            resolve_dir(r, ["var", "nope"], Missing::Stop)
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            resolve_dir(r, ["loop"], Missing::Stop),
            Err(RootPathError::TooManyLinks { .. })
        ));
        std::fs::write(r.join("file"), b"").unwrap();
        std::os::unix::fs::symlink("/var/run/lock", r.join("abs")).unwrap();
        std::os::unix::fs::symlink("../file", r.join("run/rel")).unwrap();
        let p = |s: &str| resolve_path(r, Path::new(s)).unwrap();
        assert_eq!(
            p("abs"),
            Some(PathBuf::from("run/lock")),
            "absolute target stays inside"
        );
        assert_eq!(p("var/run/rel"), Some(PathBuf::from("file")));
        assert_eq!(p("var/nope"), None);
        assert_eq!(p(""), Some(PathBuf::new()));
        assert_eq!(p("run/lock/../../../file"), Some(PathBuf::from("file")));
        assert!(matches!(
            resolve_path(r, Path::new("loop")),
            Err(RootPathError::TooManyLinks { .. })
        ));
        assert!(matches!(
            resolve_dir(r, ["file", "x"], Missing::Create),
            Err(RootPathError::NotADirectory { .. })
        ));
    }
}
