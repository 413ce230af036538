//! The walk behind a context checksum: every entry under a start path, each `stat`ed
//! relative to its open parent directory (one name to look up, where a path from `/` costs
//! the kernel a lookup per component — the larger part of a cached rebuild's time), by a few
//! threads that take whole directories from one queue. The order entries are found in does
//! not matter: the checksum sorts them.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::{Condvar, Mutex, PoisonError};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, Statx, StatxFlags};

use super::{ContextError, Entry, StatKey};

/// More threads than this stat no faster: the walk is bound by the kernel's dentry cache.
const MAX_THREADS: usize = 8;

/// What to leave out: `ignored(rel)` says whether `.dockerignore` excludes a path; with
/// `prune`, an ignored directory is not entered (no `!` exception can bring back anything
/// below it).
pub(super) struct Filter<'a> {
    pub(super) ignored: &'a (dyn Fn(&str) -> bool + Sync),
    pub(super) prune: bool,
}

/// Appends to `out` every entry at and below `start` (relative to `root`, symlinks already
/// resolved; empty for the root itself, which is not an entry) that `filter` keeps.
pub(super) fn walk(
    root: &Path,
    start: &str,
    filter: &Filter<'_>,
    out: &mut Vec<Entry>,
) -> Result<(), ContextError> {
    let root_fd = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| read_error(root, "", e))?;
    let mut dirs = Vec::new();
    if start.is_empty() {
        dirs.push(String::new());
    } else {
        let name = CString::new(start).map_err(|e| ContextError::Read {
            path: root.join(start),
            source: std::io::Error::other(e),
        })?;
        let stat = stat_at(&root_fd, root, "", &name)?;
        let is_dir = FileType::from_raw_mode(stat.stx_mode.into()) == FileType::Directory;
        if (filter.ignored)(start) {
            if is_dir && !filter.prune {
                dirs.push(start.to_owned());
            }
            return walk_dirs(root, &root_fd, dirs, filter, out);
        }
        out.push(entry(&root_fd, root, "", &name, start.to_owned(), &stat)?);
        if is_dir {
            dirs.push(start.to_owned());
        }
    }
    walk_dirs(root, &root_fd, dirs, filter, out)
}

/// Lists `dirs` and every directory found below them, on up to [`MAX_THREADS`] threads.
fn walk_dirs(
    root: &Path,
    root_fd: &OwnedFd,
    dirs: Vec<String>,
    filter: &Filter<'_>,
    out: &mut Vec<Entry>,
) -> Result<(), ContextError> {
    if dirs.is_empty() {
        return Ok(());
    }
    let threads = crate::parallel::threads(MAX_THREADS);
    let queue = Queue {
        state: Mutex::new(State {
            dirs,
            busy: 0,
            found: std::mem::take(out),
            error: None,
        }),
        wake: Condvar::new(),
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(|| queue.work(|dir| list(root, root_fd, dir, filter)));
        }
        queue.work(|dir| list(root, root_fd, dir, filter));
    });
    let state = queue
        .state
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    *out = state.found;
    match state.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Directories still to list, and what the listed ones held.
struct Queue {
    state: Mutex<State>,
    wake: Condvar,
}

struct State {
    dirs: Vec<String>,
    /// Threads listing a directory now (whose subdirectories may still come).
    busy: usize,
    found: Vec<Entry>,
    error: Option<ContextError>,
}

/// One directory's entries and the subdirectories to list next.
type Listing = (Vec<Entry>, Vec<String>);

impl Queue {
    /// Lists directories until none is left and no thread can add one, or one failed.
    fn work(&self, list: impl Fn(&str) -> Result<Listing, ContextError>) {
        loop {
            let dir = {
                let mut state = self.lock();
                loop {
                    if state.error.is_some() {
                        return;
                    }
                    if let Some(dir) = state.dirs.pop() {
                        state.busy += 1;
                        break dir;
                    }
                    if state.busy == 0 {
                        return;
                    }
                    state = self
                        .wake
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            };
            let listed = list(&dir);
            let mut state = self.lock();
            state.busy -= 1;
            match listed {
                Ok((entries, subdirs)) => {
                    state.found.extend(entries);
                    state.dirs.extend(subdirs);
                }
                Err(e) => {
                    state.error.get_or_insert(e);
                }
            }
            drop(state);
            self.wake.notify_all();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The entries of directory `rel` that `filter` keeps, and its subdirectories to enter.
fn list(
    root: &Path,
    root_fd: &OwnedFd,
    rel: &str,
    filter: &Filter<'_>,
) -> Result<Listing, ContextError> {
    let at = if rel.is_empty() { "." } else { rel };
    let fd = rustix::fs::openat(
        root_fd,
        at,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| read_error(root, rel, e))?;
    let mut dir = Dir::new(fd).map_err(|e| read_error(root, rel, e))?;
    let mut names = Vec::new();
    for item in dir.by_ref() {
        let item = item.map_err(|e| read_error(root, rel, e))?;
        let name = item.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        names.push((name.to_owned(), item.file_type()));
    }
    let dir_fd = dir.fd().map_err(|e| read_error(root, rel, e))?;
    let mut entries = Vec::with_capacity(names.len());
    let mut subdirs = Vec::new();
    for (name, file_type) in names {
        let name_str = String::from_utf8_lossy(name.to_bytes());
        let child = if rel.is_empty() {
            name_str.into_owned()
        } else {
            format!("{rel}/{name_str}")
        };
        if (filter.ignored)(&child) {
            if !filter.prune && is_dir(dir_fd, root, rel, &name, file_type)? {
                subdirs.push(child);
            }
            continue;
        }
        let stat = stat_at(dir_fd, root, rel, &name)?;
        let entry = entry(dir_fd, root, rel, &name, child, &stat)?;
        if entry.kind == "dir" {
            subdirs.push(entry.rel.clone());
        }
        entries.push(entry);
    }
    Ok((entries, subdirs))
}

/// Whether `name` in `dir_fd` is a directory: from the directory entry's type when the
/// filesystem gives one, else from `stat`.
fn is_dir(
    dir_fd: impl AsFd,
    root: &Path,
    rel: &str,
    name: &CStr,
    file_type: FileType,
) -> Result<bool, ContextError> {
    if file_type != FileType::Unknown {
        return Ok(file_type == FileType::Directory);
    }
    let stat = stat_at(dir_fd, root, rel, name)?;
    Ok(FileType::from_raw_mode(stat.stx_mode.into()) == FileType::Directory)
}

/// `statx` of `name` in `dir_fd` (directory `rel` of the context), not following a symlink.
fn stat_at(dir_fd: impl AsFd, root: &Path, rel: &str, name: &CStr) -> Result<Statx, ContextError> {
    rustix::fs::statx(
        dir_fd,
        name,
        AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::BASIC_STATS,
    )
    .map_err(|e| read_error(root, &join(rel, name), e))
}

/// The entry for `name` in `dir_fd`, found at `child` (its path in the context).
fn entry(
    dir_fd: impl AsFd,
    root: &Path,
    rel: &str,
    name: &CStr,
    child: String,
    stat: &Statx,
) -> Result<Entry, ContextError> {
    let mode = u32::from(stat.stx_mode);
    let (kind, detail) = match FileType::from_raw_mode(mode) {
        FileType::Symlink => {
            let target = rustix::fs::readlinkat(dir_fd, name, Vec::new())
                .map_err(|e| read_error(root, &join(rel, name), e))?;
            (
                "symlink",
                String::from_utf8_lossy(target.to_bytes()).into_owned(),
            )
        }
        FileType::Directory => ("dir", String::new()),
        FileType::RegularFile => ("file", String::new()),
        _ => ("special", String::new()),
    };
    let nanos = |t: rustix::fs::StatxTimestamp| {
        i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec)
    };
    Ok(Entry {
        rel: child,
        kind,
        detail,
        mode: mode & 0o7777,
        uid: stat.stx_uid,
        gid: stat.stx_gid,
        size: if kind == "file" { stat.stx_size } else { 0 },
        stat: StatKey {
            size: stat.stx_size,
            mtime_ns: nanos(stat.stx_mtime),
            ctime_ns: nanos(stat.stx_ctime),
            ino: stat.stx_ino,
            mode,
        },
    })
}

/// `rel/name`, for error messages.
fn join(rel: &str, name: &CStr) -> String {
    let name = String::from_utf8_lossy(name.to_bytes());
    if rel.is_empty() {
        name.into_owned()
    } else {
        format!("{rel}/{name}")
    }
}

fn read_error(root: &Path, rel: &str, e: rustix::io::Errno) -> ContextError {
    ContextError::Read {
        path: root.join(rel),
        source: e.into(),
    }
}
