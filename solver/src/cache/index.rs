//! The local cache index: what each step key (or a layer conversion) made, kept in the
//! store's metadata. An entry answers only while its blob is still in the content store, so
//! a pruned blob is never handed out.

use super::CacheEntry;
use crate::store::{MetaError, Store};

/// Why an entry could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The entry did not encode (cannot happen with sane records).
    #[error("encoding the cache entry for {key}: {source}")]
    Encode {
        /// The key.
        key: String,
        /// Why.
        source: serde_json::Error,
    },
    /// The metadata store refused the write.
    #[error("recording the cache entry for {key}: {source}")]
    Store {
        /// The key.
        key: String,
        /// Why.
        source: MetaError,
    },
}

/// The entry under `key` whose blob is still in the store; unreadable, foreign or orphaned
/// entries are misses.
pub fn get(store: &Store, key: &str) -> Option<CacheEntry> {
    store
        .meta()
        .cache_get(key)
        .ok()
        .flatten()
        .and_then(|bytes| CacheEntry::decode(&bytes))
        .filter(|entry| store.content().contains(&entry.layer.digest))
}

/// Records `entry` under `key` (replacing what was there).
pub fn put(store: &Store, key: &str, entry: &CacheEntry) -> Result<(), IndexError> {
    let bytes = entry.encode().map_err(|source| IndexError::Encode {
        key: key.to_owned(),
        source,
    })?;
    store
        .meta()
        .cache_put(key, &bytes)
        .map_err(|source| IndexError::Store {
            key: key.to_owned(),
            source,
        })
}
