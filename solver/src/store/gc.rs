//! What garbage collection needs from the store itself: the store lock, and the cache index
//! as a whole (list it, drop many entries at once).
//!
//! The store lock is an `flock` on `<root>/gc.lock`. Everything that adds to the store and
//! only later makes it reachable — a build ingests layer blobs before it records cache
//! entries and tags the image; a pull ingests blobs before it tags — holds it **shared** for
//! its whole run, and `kiln prune` holds it **exclusive**. So prune never runs while such a
//! writer is between "blob written" and "blob referenced", and never deletes a snapshot a
//! running step has mounted. Shared holders do not exclude each other: builds run in
//! parallel as before. The lock is released by the kernel when the process dies, so a
//! crashed build never wedges prune.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::fs::FlockOperation;

use super::meta::{MetaDb, MetaError};
use super::tables::CACHE;

/// The lock file's name under the store root.
pub const LOCK_FILE: &str = "gc.lock";

/// How often a waiter tries the lock again (and looks at Ctrl-C).
const POLL: Duration = Duration::from_millis(50);

/// Why the store lock could not be taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// The lock file could not be opened or locked.
    #[error("store lock {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The wait was interrupted (Ctrl-C).
    #[error("cancelled while waiting for the store lock {path}")]
    Cancelled {
        /// The lock file.
        path: PathBuf,
    },
}

/// A held store lock; released when dropped (or when the process exits).
#[derive(Debug)]
pub struct StoreLock {
    // Held only for its lock; closing the file releases it.
    _file: File,
    path: PathBuf,
    exclusive: bool,
}

impl StoreLock {
    /// Takes the lock shared, as a build or a pull does: waits while a prune runs.
    pub fn shared(root: &Path) -> Result<Self, LockError> {
        Self::take(root, false, &mut || {})
    }

    /// Takes the lock exclusive, as prune does: waits until no shared holder is left.
    /// `on_wait` is called once, before waiting, if the lock is busy.
    pub fn exclusive(root: &Path, mut on_wait: impl FnMut()) -> Result<Self, LockError> {
        Self::take(root, true, &mut on_wait)
    }

    /// Takes the lock exclusive if nobody holds it; `None` when someone does.
    pub fn try_exclusive(root: &Path) -> Result<Option<Self>, LockError> {
        let (file, path) = open(root)?;
        Ok(try_lock(&file, &path, true)?.then_some(Self {
            _file: file,
            path,
            exclusive: true,
        }))
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this is the exclusive lock.
    pub fn is_exclusive(&self) -> bool {
        self.exclusive
    }

    fn take(root: &Path, exclusive: bool, on_wait: &mut dyn FnMut()) -> Result<Self, LockError> {
        let (file, path) = open(root)?;
        let mut told = false;
        // Polled rather than a blocking flock, so Ctrl-C (which only sets a flag; the
        // signals are blocked in every thread) still ends the wait.
        while !try_lock(&file, &path, exclusive)? {
            if crate::cancel::is_cancelled() {
                return Err(LockError::Cancelled { path });
            }
            if !told {
                told = true;
                on_wait();
            }
            std::thread::sleep(POLL);
        }
        Ok(Self {
            _file: file,
            path,
            exclusive,
        })
    }
}

fn open(root: &Path) -> Result<(File, PathBuf), LockError> {
    let path = root.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| LockError::Io {
            path: path.clone(),
            source,
        })?;
    Ok((file, path))
}

fn try_lock(file: &File, path: &Path, exclusive: bool) -> Result<bool, LockError> {
    let op = if exclusive {
        FlockOperation::NonBlockingLockExclusive
    } else {
        FlockOperation::NonBlockingLockShared
    };
    match rustix::fs::flock(file, op) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(rustix::io::Errno::INTR) => Ok(false),
        Err(errno) => Err(LockError::Io {
            path: path.to_path_buf(),
            source: errno.into(),
        }),
    }
}

impl MetaDb {
    /// Every cache-index entry (key, opaque record), sorted by key.
    pub fn cache_entries(&self) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        self.read(|txn| super::tables::byte_entries(txn, CACHE))
    }

    /// Removes many cache-index entries in one transaction; returns how many existed.
    pub fn cache_remove_many<K: AsRef<str>>(&self, keys: &[K]) -> Result<usize, MetaError> {
        if keys.is_empty() {
            return Ok(0);
        }
        self.write(|txn| {
            let mut table = txn.open_table(CACHE)?;
            let mut removed = 0;
            for key in keys {
                if table.remove(key.as_ref())?.is_some() {
                    removed += 1;
                }
            }
            Ok(removed)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_dir::TestDir;

    #[test]
    fn shared_holders_coexist_and_exclude_prune() {
        let dir = TestDir::new("gc-lock");
        let a = StoreLock::shared(dir.path()).unwrap();
        let b = StoreLock::shared(dir.path()).unwrap();
        assert!(!a.is_exclusive());
        assert_eq!(a.path(), dir.path().join(LOCK_FILE));
        // flock locks belong to open files, so a second open in this process conflicts just
        // as another process would.
        assert!(StoreLock::try_exclusive(dir.path()).unwrap().is_none());
        drop(a);
        assert!(StoreLock::try_exclusive(dir.path()).unwrap().is_none());
        drop(b);
        let x = StoreLock::try_exclusive(dir.path()).unwrap().unwrap();
        assert!(x.is_exclusive());
        assert!(StoreLock::try_exclusive(dir.path()).unwrap().is_none());
    }

    #[test]
    fn exclusive_waits_for_shared() {
        let dir = TestDir::new("gc-lock-wait");
        let held = StoreLock::shared(dir.path()).unwrap();
        let root = dir.path().to_path_buf();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let mut waited = false;
            let lock = StoreLock::exclusive(&root, || waited = true).unwrap();
            tx.send(()).unwrap();
            drop(lock);
            waited
        });
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
        drop(held);
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(waiter.join().unwrap());
        // And a build waits for a prune the same way.
        let prune = StoreLock::exclusive(dir.path(), || {}).unwrap();
        let root = dir.path().to_path_buf();
        let build = std::thread::spawn(move || StoreLock::shared(&root).map(|_| ()));
        std::thread::sleep(Duration::from_millis(200));
        assert!(!build.is_finished());
        drop(prune);
        build.join().unwrap().unwrap();
    }

    #[test]
    fn cache_list_and_bulk_remove() {
        let dir = TestDir::new("gc-cache");
        let db = MetaDb::open(&dir.path().join("meta.redb")).unwrap();
        assert!(db.cache_entries().unwrap().is_empty());
        db.cache_put("b", b"2").unwrap();
        db.cache_put("a", b"1").unwrap();
        db.cache_put("c", b"3").unwrap();
        assert_eq!(
            db.cache_entries().unwrap(),
            vec![
                ("a".to_owned(), b"1".to_vec()),
                ("b".to_owned(), b"2".to_vec()),
                ("c".to_owned(), b"3".to_vec())
            ]
        );
        assert_eq!(db.cache_remove_many(&["a", "c", "zz"]).unwrap(), 2);
        assert_eq!(db.cache_remove_many::<&str>(&[]).unwrap(), 0);
        assert_eq!(db.cache_entries().unwrap().len(), 1);
    }
}
