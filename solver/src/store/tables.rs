//! The tables of the metadata database and the typed accessors for the opaque ones.
//!
//! Values are bytes the owner of each table defines (canonical JSON for `images`, opaque
//! records for `cache` and `context_index`), so changing a record's shape never needs a
//! redb schema change. Image tags are handled in `images.rs`.

use oci_spec::image::Digest;
use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::content::parse_digest;
use super::meta::{MetaDb, MetaError, TxnError};

/// Bumped when a table changes meaning; a newer database is refused rather than misread.
pub(crate) const SCHEMA_VERSION: u32 = 1;
/// The key under which [`SCHEMA`] holds the version.
pub(crate) const SCHEMA_KEY: &str = "version";

/// `"version"` → schema version.
pub(crate) const SCHEMA: TableDefinition<'_, &str, u32> = TableDefinition::new("schema");
/// Normalized image reference → canonical JSON `{"created":…,"digest":…}`.
pub(crate) const IMAGES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("images");
/// Cache key → result record (opaque here).
pub(crate) const CACHE: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("cache");
/// Context-index key → value (opaque here).
pub(crate) const CONTEXT_INDEX: TableDefinition<'_, &[u8], &[u8]> =
    TableDefinition::new("context_index");
/// GC root name → digest kept alive by it.
pub(crate) const GC_ROOTS: TableDefinition<'_, &str, &str> = TableDefinition::new("gc_roots");

/// Creates every table, so read transactions never meet a missing one.
pub(crate) fn create_all(txn: &WriteTransaction) -> Result<(), TxnError> {
    txn.open_table(SCHEMA)?;
    txn.open_table(IMAGES)?;
    txn.open_table(CACHE)?;
    txn.open_table(CONTEXT_INDEX)?;
    txn.open_table(GC_ROOTS)?;
    txn.open_table(BLOB_SOURCES)?;
    Ok(())
}

/// The schema version the database records, when every table exists (`None`: a table or
/// the version is missing, and [`create_all`] has work to do).
pub(crate) fn existing_schema(txn: &redb::ReadTransaction) -> Result<Option<u32>, TxnError> {
    fn exists<K: redb::Key + 'static, V: redb::Value + 'static>(
        txn: &redb::ReadTransaction,
        def: TableDefinition<'_, K, V>,
    ) -> Result<bool, TxnError> {
        match txn.open_table(def) {
            Ok(_) => Ok(true),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
    let all = exists(txn, SCHEMA)?
        && exists(txn, IMAGES)?
        && exists(txn, CACHE)?
        && exists(txn, CONTEXT_INDEX)?
        && exists(txn, GC_ROOTS)?
        && exists(txn, BLOB_SOURCES)?;
    if !all {
        return Ok(None);
    }
    Ok(txn.open_table(SCHEMA)?.get(SCHEMA_KEY)?.map(|v| v.value()))
}

/// Every entry of a table of byte records (the cache index, the images), sorted by key.
pub(crate) fn byte_entries(
    txn: &redb::ReadTransaction,
    def: TableDefinition<'_, &str, &[u8]>,
) -> Result<Vec<(String, Vec<u8>)>, TxnError> {
    txn.open_table(def)?
        .iter()?
        .map(|entry| {
            let (key, value) = entry?;
            Ok((key.value().to_owned(), value.value().to_vec()))
        })
        .collect()
}

impl MetaDb {
    /// The cache record stored under `key`, if any.
    pub fn cache_get(&self, key: &str) -> Result<Option<Vec<u8>>, MetaError> {
        self.read(|txn| {
            let table = txn.open_table(CACHE)?;
            Ok(table.get(key)?.map(|v| v.value().to_vec()))
        })
    }

    /// Stores (or replaces) the cache record under `key`.
    ///
    /// Deferred ([`MetaDb::write_deferred`]): a step's record costs no fsync; a crash loses
    /// at most records, never the blobs they name.
    pub fn cache_put(&self, key: &str, value: &[u8]) -> Result<(), MetaError> {
        self.write_deferred(|txn| {
            txn.open_table(CACHE)?.insert(key, value)?;
            Ok(())
        })
    }

    /// Removes the cache record under `key`; returns whether there was one.
    pub fn cache_remove(&self, key: &str) -> Result<bool, MetaError> {
        self.write(|txn| Ok(txn.open_table(CACHE)?.remove(key)?.is_some()))
    }

    /// The context-index value stored under `key`, if any.
    pub fn ctx_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MetaError> {
        self.read(|txn| {
            let table = txn.open_table(CONTEXT_INDEX)?;
            Ok(table.get(key)?.map(|v| v.value().to_vec()))
        })
    }

    /// Looks up many context-index keys in one transaction (one open of the database).
    ///
    /// Many keys in sorted order (a context walk's) are answered by one scan of their
    /// range, merged with the keys: each page is read once, where a lookup per key descends
    /// the tree from its root every time.
    pub fn ctx_get_many<K: AsRef<[u8]>>(
        &self,
        keys: &[K],
    ) -> Result<Vec<Option<Vec<u8>>>, MetaError> {
        const SCAN_FROM: usize = 64;
        let sorted = keys.windows(2).all(|w| w[0].as_ref() < w[1].as_ref());
        self.read(|txn| {
            let table = txn.open_table(CONTEXT_INDEX)?;
            let (Some(first), Some(last)) = (keys.first(), keys.last()) else {
                return Ok(Vec::new());
            };
            if !sorted || keys.len() < SCAN_FROM {
                return keys
                    .iter()
                    .map(|key| Ok(table.get(key.as_ref())?.map(|v| v.value().to_vec())))
                    .collect();
            }
            let mut found = vec![None; keys.len()];
            let mut next = 0;
            for item in table.range(first.as_ref()..=last.as_ref())? {
                let (key, value) = item?;
                let key = key.value();
                while next < keys.len() && keys[next].as_ref() < key {
                    next += 1;
                }
                if next == keys.len() {
                    break;
                }
                if keys[next].as_ref() == key {
                    found[next] = Some(value.value().to_vec());
                    next += 1;
                }
            }
            Ok(found)
        })
    }

    /// Stores many context-index entries in one transaction: all or none.
    pub fn ctx_put_many<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        entries: &[(K, V)],
    ) -> Result<(), MetaError> {
        // Deferred: the context index is a cache of hashes; losing it costs rehashing.
        self.write_deferred(|txn| {
            let mut table = txn.open_table(CONTEXT_INDEX)?;
            for (key, value) in entries {
                table.insert(key.as_ref(), value.as_ref())?;
            }
            Ok(())
        })
    }

    /// Records a GC root: `digest` stays alive while `name` exists.
    pub fn gc_root_put(&self, name: &str, digest: &Digest) -> Result<(), MetaError> {
        self.write(|txn| {
            txn.open_table(GC_ROOTS)?.insert(name, digest.as_ref())?;
            Ok(())
        })
    }

    /// Drops a GC root; returns whether it existed.
    pub fn gc_root_remove(&self, name: &str) -> Result<bool, MetaError> {
        self.write(|txn| Ok(txn.open_table(GC_ROOTS)?.remove(name)?.is_some()))
    }

    /// Every GC root, sorted by name.
    pub fn gc_roots(&self) -> Result<Vec<(String, Digest)>, MetaError> {
        let raw = self.read(|txn| {
            let table = txn.open_table(GC_ROOTS)?;
            table
                .iter()?
                .map(|entry| {
                    let (name, digest) = entry?;
                    Ok((name.value().to_owned(), digest.value().to_owned()))
                })
                .collect::<Result<Vec<_>, TxnError>>()
        })?;
        raw.into_iter()
            .map(|(name, digest)| match parse_digest(&digest) {
                Ok(digest) => Ok((name, digest)),
                Err(e) => Err(self.corrupt("gc_roots", &name, e.to_string())),
            })
            .collect()
    }
}

/// Blob digest → `domain/repository` it was pulled from, so a push to the same registry
/// can mount it instead of uploading it.
pub(crate) const BLOB_SOURCES: TableDefinition<'_, &str, &str> =
    TableDefinition::new("blob_sources");

impl MetaDb {
    /// Records that `digests` were pulled from `repository`.
    pub fn blob_source_put_many(
        &self,
        digests: &[String],
        repository: &str,
    ) -> Result<(), MetaError> {
        if digests.is_empty() {
            return Ok(());
        }
        self.write(|txn| {
            let mut table = txn.open_table(BLOB_SOURCES)?;
            for d in digests {
                table.insert(d.as_str(), repository)?;
            }
            Ok(())
        })
    }

    /// The repository `digest` was pulled from, if recorded.
    pub fn blob_source(&self, digest: &str) -> Result<Option<String>, MetaError> {
        self.read(|txn| {
            let table = match txn.open_table(BLOB_SOURCES) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            Ok(table.get(digest)?.map(|v| v.value().to_owned()))
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::store::content::sha256_digest;
    use crate::store::meta::MetaDb;
    use crate::store::test_dir::TestDir;

    fn db(dir: &TestDir) -> MetaDb {
        MetaDb::open(&dir.path().join("meta.redb")).unwrap()
    }

    #[test]
    fn cache_round_trip() {
        let dir = TestDir::new("tables-cache");
        let db = db(&dir);
        assert_eq!(db.cache_get("k1").unwrap(), None);
        db.cache_put("k1", b"\x00record\xff").unwrap();
        db.cache_put("k2", b"").unwrap();
        assert_eq!(db.cache_get("k1").unwrap().unwrap(), b"\x00record\xff");
        assert_eq!(db.cache_get("k2").unwrap().unwrap(), b"");
        db.cache_put("k1", b"new").unwrap();
        assert_eq!(db.cache_get("k1").unwrap().unwrap(), b"new");
        assert!(db.cache_remove("k1").unwrap());
        assert!(!db.cache_remove("k1").unwrap());
        // Survives reopening.
        let again = MetaDb::open(db.path()).unwrap();
        assert_eq!(again.cache_get("k2").unwrap().unwrap(), b"");
    }

    #[test]
    fn context_index_round_trip() {
        let dir = TestDir::new("tables-ctx");
        let db = db(&dir);
        let entries: Vec<(Vec<u8>, Vec<u8>)> = (0..500u32)
            .map(|i| (i.to_be_bytes().to_vec(), format!("value {i}").into_bytes()))
            .collect();
        db.ctx_put_many(&entries).unwrap();
        assert_eq!(
            db.ctx_get(&7u32.to_be_bytes()).unwrap().unwrap(),
            b"value 7"
        );
        assert_eq!(db.ctx_get(b"missing").unwrap(), None);
        let got = db
            .ctx_get_many(&[
                &3u32.to_be_bytes()[..],
                b"missing",
                &499u32.to_be_bytes()[..],
            ])
            .unwrap();
        assert_eq!(
            got,
            vec![Some(b"value 3".to_vec()), None, Some(b"value 499".to_vec())]
        );
        db.ctx_put_many::<&[u8], &[u8]>(&[]).unwrap();
    }

    #[test]
    fn gc_roots_round_trip() {
        let dir = TestDir::new("tables-gc");
        let db = db(&dir);
        let a = sha256_digest(b"a").unwrap();
        let b = sha256_digest(b"b").unwrap();
        db.gc_root_put("build/2", &b).unwrap();
        db.gc_root_put("build/1", &a).unwrap();
        assert_eq!(
            db.gc_roots().unwrap(),
            vec![("build/1".to_owned(), a), ("build/2".to_owned(), b)]
        );
        assert!(db.gc_root_remove("build/1").unwrap());
        assert_eq!(db.gc_roots().unwrap().len(), 1);
    }

    /// The range scan answers as a lookup per key does: keys missing from the index,
    /// index entries between and around the keys that nobody asked for, a lone key, and
    /// keys out of order.
    #[test]
    fn context_lookups_scan_or_look_up_alike() {
        let dir = TestDir::new("ctx-many");
        let db = MetaDb::open(&dir.path().join("meta.redb")).unwrap();
        let stored: Vec<(Vec<u8>, Vec<u8>)> = (0..500)
            .filter(|i| i % 3 != 0)
            .map(|i| {
                (
                    format!("/ctx\0f{i:04}").into_bytes(),
                    format!("v{i}").into_bytes(),
                )
            })
            .chain([(b"/ctw\0zz".to_vec(), b"before".to_vec())])
            .chain([(b"/cty\0aa".to_vec(), b"after".to_vec())])
            .collect();
        db.ctx_put_many(&stored).unwrap();
        let expect = |keys: &[Vec<u8>]| -> Vec<Option<Vec<u8>>> {
            keys.iter()
                .map(|k| stored.iter().find(|(s, _)| s == k).map(|(_, v)| v.clone()))
                .collect()
        };
        let sorted: Vec<Vec<u8>> = (0..520)
            .filter(|i| i % 2 == 0)
            .map(|i| format!("/ctx\0f{i:04}").into_bytes())
            .collect();
        assert!(sorted.len() >= 64, "large enough to be scanned");
        let got = db.ctx_get_many(&sorted).unwrap();
        assert_eq!(got, expect(&sorted));
        assert!(got.iter().filter(|v| v.is_some()).count() > 100);
        let mut shuffled = sorted.clone();
        shuffled.reverse();
        assert_eq!(db.ctx_get_many(&shuffled).unwrap(), expect(&shuffled));
        let one = vec![b"/ctx\0f0001".to_vec()];
        assert_eq!(db.ctx_get_many(&one).unwrap(), vec![Some(b"v1".to_vec())]);
        assert!(db.ctx_get_many::<Vec<u8>>(&[]).unwrap().is_empty());
    }
}
