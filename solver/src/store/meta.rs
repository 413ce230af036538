//! The metadata database: a redb file at `<root>/meta.redb` shared by every kiln process.
//!
//! redb takes an exclusive `flock` on the file for as long as a `Database` is open, and a
//! second open (from another process, or another thread of this one) fails at once. So the
//! file is never kept open for a build: it is opened for a burst of transactions and closed
//! once none has come for [`LINGER`] (a reaper thread closes it: a group commit), and others retry with
//! backoff while someone holds it. Opening and closing cost redb three `fdatasync`s, so a
//! burst — a cached rebuild's lookups — pays them once instead of once per transaction.
//! Threads of one process share the open database behind a process-local mutex.
//! [`close_all`] closes it before the process exits (a process killed while it is open
//! leaves a file redb repairs on the next open, as after any crash).
//!
//! Transactions must be short, and must not nest: calling [`MetaDb::read`] or
//! [`MetaDb::write`] from inside another's closure deadlocks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redb::{Database, DatabaseError, ReadTransaction, ReadableTable, WriteTransaction};

use super::tables::{self, SCHEMA, SCHEMA_KEY, SCHEMA_VERSION};

/// How long to wait for another process to let go of the database by default.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest single sleep between attempts to open a busy database.
const MAX_BACKOFF: Duration = Duration::from_millis(100);

/// redb's page cache: enough for the hot pages of every table (see `open_database`).
const CACHE_BYTES: usize = 8 << 20;

/// How long the database stays open after its last transaction.
pub const LINGER: Duration = Duration::from_millis(150);

/// What went wrong with the metadata database; each variant names its file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetaError {
    /// Another process kept the database open for longer than the lock timeout.
    #[error("metadata database {path} is held by another kiln process; gave up after {waited:?}")]
    Locked {
        /// The database file.
        path: PathBuf,
        /// How long kiln waited.
        waited: Duration,
    },
    /// redb reported an error (I/O, corruption, a failed commit).
    #[error("metadata database {path}: {source}")]
    Db {
        /// The database file.
        path: PathBuf,
        /// What redb said (boxed: redb's error is large and this is the cold path).
        source: Box<redb::Error>,
    },
    /// The database was written by a newer kiln with a schema this one does not know.
    #[error("metadata database {path} has schema version {found}; this kiln supports {supported}")]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// The version found in the file.
        found: u32,
        /// The newest version this kiln understands.
        supported: u32,
    },
    /// A stored value does not decode.
    #[error("metadata database {path}: table {table}, key {key:?}: {reason}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// The table holding the value.
        table: &'static str,
        /// The key, as text.
        key: String,
        /// Why the value is unusable.
        reason: String,
    },
}

/// An error inside a transaction closure: any redb error converts into it with `?`.
///
/// Boxed because `redb::Error` is large and every transaction returns a `Result` of it.
#[derive(Debug)]
pub struct TxnError(Box<redb::Error>);

impl<E: Into<redb::Error>> From<E> for TxnError {
    fn from(error: E) -> Self {
        Self(Box::new(error.into()))
    }
}

impl TxnError {
    /// A value that cannot be encoded or decoded, reported as redb corruption.
    pub fn corrupted(reason: impl Into<String>) -> Self {
        Self::from(redb::Error::Corrupted(reason.into()))
    }
}

/// The metadata database at one path; cheap to clone, holds no file open between transactions.
#[derive(Debug, Clone)]
pub struct MetaDb {
    path: PathBuf,
    lock_timeout: Duration,
    local: Arc<Mutex<Held>>,
}

/// The process's open database for one file, if it is open.
#[derive(Default)]
struct Held {
    db: Option<Database>,
    last_used: Option<Instant>,
    reaper: bool,
    /// Commits made without fsync ([`MetaDb::write_deferred`]) wait for a durable one.
    deferred: bool,
}

impl Held {
    /// Closes the database, first making deferred commits durable.
    fn close(&mut self) {
        if let Some(db) = self.db.take() {
            flush(db, std::mem::take(&mut self.deferred));
        }
    }
}

/// Drops `db`, first committing durably when deferred commits wait (redb persists commits
/// made without durability only with the next durable one). A failure costs those entries:
/// they were cache records, whose loss is a cache miss.
fn flush(db: Database, deferred: bool) {
    if deferred && let Ok(txn) = db.begin_write() {
        let _ = txn.commit();
    }
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("open", &self.db.is_some())
            .finish()
    }
}

impl MetaDb {
    /// Opens (creating if needed) the database at `path` and makes sure every table exists.
    pub fn open(path: &Path) -> Result<Self, MetaError> {
        Self::open_with_timeout(path, DEFAULT_LOCK_TIMEOUT)
    }

    /// Like [`MetaDb::open`], waiting at most `lock_timeout` for other processes each time.
    pub fn open_with_timeout(path: &Path, lock_timeout: Duration) -> Result<Self, MetaError> {
        let db = Self {
            path: path.to_path_buf(),
            lock_timeout,
            local: local_lock(path),
        };
        // A database every table and the version are in needs no write (and no fsync).
        if let Some(found) = db.read(tables::existing_schema)? {
            if found > SCHEMA_VERSION {
                return Err(MetaError::SchemaTooNew {
                    path: db.path.clone(),
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            return Ok(db);
        }
        let found = db.write(|txn| {
            tables::create_all(txn)?;
            let mut schema = txn.open_table(SCHEMA)?;
            let found = schema.get(SCHEMA_KEY)?.map(|v| v.value());
            if found.is_none() {
                schema.insert(SCHEMA_KEY, SCHEMA_VERSION)?;
            }
            Ok(found)
        })?;
        match found {
            Some(found) if found > SCHEMA_VERSION => Err(MetaError::SchemaTooNew {
                path: db.path.clone(),
                found,
                supported: SCHEMA_VERSION,
            }),
            _ => Ok(db),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in a read transaction (the database is opened for just this call).
    pub fn read<T>(
        &self,
        f: impl FnOnce(&ReadTransaction) -> Result<T, TxnError>,
    ) -> Result<T, MetaError> {
        self.with_database(|db, _| {
            let txn = db.begin_read()?;
            f(&txn)
        })
    }

    /// Runs `f` in a write transaction and commits it when `f` succeeds and says it changed
    /// something; aborts otherwise (an unchanged database costs no fsync).
    pub fn update<T>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<(T, bool), TxnError>,
    ) -> Result<T, MetaError> {
        self.with_database(|db, _| {
            let txn = db.begin_write()?;
            let (value, changed) = f(&txn)?;
            if changed {
                txn.commit()?;
            } else {
                txn.abort()?;
            }
            Ok(value)
        })
    }

    /// Runs `f` in a write transaction and commits it if `f` succeeds; aborts otherwise.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<T, TxnError>,
    ) -> Result<T, MetaError> {
        self.with_database(|db, deferred| {
            let txn = db.begin_write()?;
            // Dropping an uncommitted write transaction aborts it.
            let value = f(&txn)?;
            txn.commit()?;
            // A durable commit makes the deferred ones before it durable too.
            *deferred = false;
            Ok(value)
        })
    }

    /// Like [`MetaDb::write`], without waiting on the disk: the commit is seen at once by
    /// this process, and made durable by the next durable commit or when the database is
    /// closed (at most [`LINGER`] after the last transaction, or at exit). For what may be
    /// lost in a crash without harm — cache records, whose loss is a cache miss: the blobs
    /// they point at are durable before the record is written.
    pub fn write_deferred<T>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<T, TxnError>,
    ) -> Result<T, MetaError> {
        self.with_database(|db, deferred| {
            let mut txn = db.begin_write()?;
            txn.set_durability(redb::Durability::None);
            let value = f(&txn)?;
            txn.commit()?;
            *deferred = true;
            Ok(value)
        })
    }

    pub(crate) fn corrupt(&self, table: &'static str, key: &str, reason: String) -> MetaError {
        MetaError::Corrupt {
            path: self.path.clone(),
            table,
            key: key.to_owned(),
            reason,
        }
    }

    fn with_database<T>(
        &self,
        f: impl FnOnce(&Database, &mut bool) -> Result<T, TxnError>,
    ) -> Result<T, MetaError> {
        // The guard protects no invariant a panic could break: a poisoned lock is as good as
        // a healthy one.
        let mut held = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        let db = match held.db.take() {
            Some(db) => db,
            None => self.open_database()?,
        };
        let result = f(&db, &mut held.deferred);
        // After a failure the file is closed (and reopened by the next transaction).
        if result.is_err() {
            flush(db, std::mem::take(&mut held.deferred));
        } else {
            held.db = Some(db);
            held.last_used = Some(Instant::now());
            if !held.reaper {
                held.reaper = true;
                let local = Arc::clone(&self.local);
                let spawned = std::thread::Builder::new()
                    .name("kiln-meta-linger".into())
                    .spawn(move || reap(&local));
                if spawned.is_err() {
                    // No thread to close it later: close it now.
                    held.close();
                    held.reaper = false;
                }
            }
        }
        result.map_err(|TxnError(source)| MetaError::Db {
            path: self.path.clone(),
            source,
        })
    }

    fn open_database(&self) -> Result<Database, MetaError> {
        // redb caches every page it reads or writes up to its cache size (1 GiB by
        // default): a build over a 100,000-file context reads its whole context index once,
        // which kept ~30 MiB of pages resident for nothing (peak RSS 151 -> 120 MiB). The
        // kernel's page cache keeps them warm for the next read anyway.
        let start = Instant::now();
        let mut backoff = Duration::from_millis(1);
        loop {
            match redb::Builder::new()
                .set_cache_size(CACHE_BYTES)
                .create(&self.path)
            {
                Ok(db) => return Ok(db),
                Err(DatabaseError::DatabaseAlreadyOpen) => {
                    let waited = start.elapsed();
                    if waited >= self.lock_timeout {
                        return Err(MetaError::Locked {
                            path: self.path.clone(),
                            waited,
                        });
                    }
                    let remaining = self.lock_timeout - waited;
                    std::thread::sleep((backoff + jitter()).min(remaining));
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(e) => {
                    return Err(MetaError::Db {
                        path: self.path.clone(),
                        source: Box::new(e.into()),
                    });
                }
            }
        }
    }
}

/// Up to a millisecond of noise, so processes backing off together do not retry in lockstep.
fn jitter() -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Duration::from_micros(u64::from(nanos % 1000))
}

/// Closes the database once no transaction has used it for [`LINGER`].
fn reap(local: &Mutex<Held>) {
    loop {
        std::thread::sleep(LINGER);
        let mut held = local.lock().unwrap_or_else(PoisonError::into_inner);
        let idle = held.last_used.is_none_or(|t| t.elapsed() >= LINGER);
        if held.db.is_none() || idle {
            held.close();
            held.reaper = false;
            return;
        }
    }
}

/// Every open database file of this process, by canonical path.
fn held_databases() -> &'static Mutex<HashMap<PathBuf, Arc<Mutex<Held>>>> {
    static HELD: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<Held>>>>> = OnceLock::new();
    HELD.get_or_init(Mutex::default)
}

/// Closes every database this process holds open; call before the process exits, so redb
/// finds the file cleanly closed next time.
pub fn close_all() {
    let all = held_databases()
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    for local in all.values() {
        local.lock().unwrap_or_else(PoisonError::into_inner).close();
    }
}

/// The process-wide state for one database file, shared by every `MetaDb` opened on it.
fn local_lock(path: &Path) -> Arc<Mutex<Held>> {
    // Key on the canonical directory so `./x/meta.redb` and `/abs/x/meta.redb` share it.
    let key = match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => parent
            .canonicalize()
            .map(|p| p.join(name))
            .unwrap_or_else(|_| path.to_path_buf()),
        _ => path.to_path_buf(),
    };
    let mut all = held_databases()
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    Arc::clone(all.entry(key).or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_dir::TestDir;
    use std::process::Command;

    const CHILD_DB: &str = "KILN_TEST_META_CHILD_DB";
    const CHILD_TAG: &str = "KILN_TEST_META_CHILD_TAG";
    const ROUNDS: usize = 40;

    fn hammer(db: &MetaDb, tag: &str) {
        for i in 0..ROUNDS {
            let key = format!("{tag}-{i}");
            db.cache_put(&key, key.as_bytes()).unwrap();
            assert_eq!(db.cache_get(&key).unwrap().unwrap(), key.as_bytes());
        }
    }

    fn check_all(db: &MetaDb, tags: &[&str]) {
        for tag in tags {
            for i in 0..ROUNDS {
                let key = format!("{tag}-{i}");
                assert_eq!(db.cache_get(&key).unwrap().unwrap(), key.as_bytes());
            }
        }
    }

    #[test]
    fn schema_written_once() {
        let dir = TestDir::new("meta-schema");
        let path = dir.path().join("meta.redb");
        MetaDb::open(&path).unwrap();
        let db = MetaDb::open(&path).unwrap();
        let version = db
            .read(|txn| {
                let table = txn.open_table(SCHEMA)?;
                Ok(table.get(SCHEMA_KEY)?.map(|v| v.value()))
            })
            .unwrap();
        assert_eq!(version, Some(SCHEMA_VERSION));
    }

    #[test]
    fn newer_schema_refused() {
        let dir = TestDir::new("meta-newer");
        let path = dir.path().join("meta.redb");
        let db = MetaDb::open(&path).unwrap();
        db.write(|txn| {
            txn.open_table(SCHEMA)?
                .insert(SCHEMA_KEY, SCHEMA_VERSION + 1)?;
            Ok(())
        })
        .unwrap();
        let err = MetaDb::open(&path).unwrap_err();
        assert!(matches!(err, MetaError::SchemaTooNew { .. }), "{err}");
        assert!(err.to_string().contains("meta.redb"));
    }

    #[test]
    fn failed_closure_aborts() {
        let dir = TestDir::new("meta-abort");
        let db = MetaDb::open(&dir.path().join("meta.redb")).unwrap();
        let result: Result<(), _> = db.write(|txn| {
            txn.open_table(tables::CACHE)?
                .insert("k", b"v".as_slice())?;
            Err(TxnError::corrupted("test"))
        });
        assert!(result.is_err());
        assert_eq!(db.cache_get("k").unwrap(), None);
    }

    #[test]
    fn locked_database_times_out_naming_path() {
        let dir = TestDir::new("meta-locked");
        let path = dir.path().join("meta.redb");
        let db = MetaDb::open_with_timeout(&path, Duration::from_millis(200)).unwrap();
        // This process lets go of the file once it has been idle for LINGER.
        std::thread::sleep(LINGER * 3);
        // Holding a Database open is exactly what another process would do.
        let held = Database::create(&path).unwrap();
        let start = Instant::now();
        let err = db.cache_get("x").unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(200));
        assert!(matches!(err, MetaError::Locked { .. }), "{err}");
        assert!(err.to_string().contains(&path.display().to_string()));
        drop(held);
        assert_eq!(db.cache_get("x").unwrap(), None);
    }

    #[test]
    fn threads_share_one_root() {
        let dir = TestDir::new("meta-threads");
        let path = dir.path().join("meta.redb");
        let tags = ["t0", "t1", "t2", "t3"];
        let threads: Vec<_> = tags
            .iter()
            .map(|tag| {
                let path = path.clone();
                let tag = tag.to_string();
                // Each thread opens its own MetaDb, as separate components would.
                std::thread::spawn(move || hammer(&MetaDb::open(&path).unwrap(), &tag))
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        check_all(&MetaDb::open(&path).unwrap(), &tags);
    }

    /// One writer. Run by the harness, it hammers a root of its own and checks it; run by
    /// `processes_share_one_root` (with the root and tag in the environment), it is one of
    /// the processes sharing that root.
    #[test]
    fn child_writer() {
        if let (Ok(path), Ok(tag)) = (std::env::var(CHILD_DB), std::env::var(CHILD_TAG)) {
            hammer(&MetaDb::open(Path::new(&path)).unwrap(), &tag);
            // As kiln's main does: deferred commits become durable when the process closes
            // its databases.
            close_all();
            return;
        }
        let dir = TestDir::new("meta-solo");
        let db = MetaDb::open(&dir.path().join("meta.redb")).unwrap();
        hammer(&db, "solo");
        check_all(&db, &["solo"]);
    }

    #[test]
    fn processes_share_one_root() {
        let dir = TestDir::new("meta-processes");
        let path = dir.path().join("meta.redb");
        let db = MetaDb::open(&path).unwrap();
        let exe = std::env::current_exe().unwrap();
        let children: Vec<_> = ["p0", "p1"]
            .iter()
            .map(|tag| {
                Command::new(&exe)
                    .args([
                        "--exact",
                        "store::meta::tests::child_writer",
                        "--test-threads=1",
                    ])
                    .env(CHILD_DB, &path)
                    .env(CHILD_TAG, tag)
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        hammer(&db, "parent");
        for mut child in children {
            assert!(child.wait().unwrap().success());
        }
        check_all(&db, &["parent", "p0", "p1"]);
    }
}
