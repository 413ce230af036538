//! Build cache shared between machines: the cache records of a build (cache key → layer)
//! exported as an OCI artifact to a registry or an OCI layout directory, and imported by
//! another store, whose solver then answers steps from them and downloads a layer's blob
//! only when something needs its bytes (the final image, or a step that runs on top of it).
//! The format is documented in `docs/cache-format.md`.

mod error;
mod format;
mod local;
mod registry;

use std::collections::HashMap;
use std::sync::Arc;

use oci_spec::image::Digest;

pub use error::RemoteCacheError;
pub use format::{CACHE_ARTIFACT_TYPE, CACHE_CONFIG_MEDIA_TYPE, CacheConfig, CacheRecord, SCHEMA};
pub use local::{export_local, import_local};
pub use registry::{export_registry, import_registry};

use crate::cache::LayerRecord;
use crate::store::ContentStore;

/// Fetches blobs of an imported cache into the local content store, verified.
pub trait BlobFetcher: Send + Sync + std::fmt::Debug {
    /// Makes blob `digest` present in `content`.
    fn fetch(
        &self,
        content: &ContentStore,
        digest: &Digest,
        size: u64,
    ) -> Result<(), RemoteCacheError>;
    /// Where the blobs come from, for messages.
    fn describe(&self) -> String;
}

/// One imported cache: its records by key, and where its blobs are.
#[derive(Debug)]
pub struct ImportedCache {
    records: HashMap<String, CacheRecord>,
    fetcher: Arc<dyn BlobFetcher>,
}

impl ImportedCache {
    /// An import of `config`'s records whose blobs `fetcher` provides.
    pub fn new(config: CacheConfig, fetcher: Arc<dyn BlobFetcher>) -> Self {
        let records = config
            .records
            .into_iter()
            .map(|r| (r.key.clone(), r))
            .collect();
        Self { records, fetcher }
    }

    /// How many records it holds.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether it holds no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// Every cache imported for a build (`--cache-from`), consulted after the local cache.
#[derive(Debug, Clone, Default)]
pub struct RemoteCaches {
    imports: Vec<Arc<ImportedCache>>,
}

impl RemoteCaches {
    /// Adds an import; earlier ones win on a key both hold.
    pub fn push(&mut self, import: ImportedCache) {
        self.imports.push(Arc::new(import));
    }

    /// The record for `key`, if an import has it.
    pub fn lookup(&self, key: &str) -> Option<CacheRecord> {
        self.imports
            .iter()
            .find_map(|i| i.records.get(key).cloned())
    }

    /// Makes the blob of every layer in `layers` present in `content`, fetching the
    /// missing ones from the import that recorded them.
    pub fn ensure_local(
        &self,
        content: &ContentStore,
        layers: &[LayerRecord],
    ) -> Result<(), RemoteCacheError> {
        for layer in layers {
            let digest = &layer.digest;
            if content.contains(digest) {
                continue;
            }
            let mut last = None;
            for import in &self.imports {
                if !import
                    .records
                    .values()
                    .any(|r| r.layer.digest == layer.digest)
                {
                    continue;
                }
                match import.fetcher.fetch(content, digest, layer.size) {
                    Ok(()) => {
                        last = None;
                        break;
                    }
                    Err(e) => {
                        last = Some(RemoteCacheError::Fetch {
                            cache: import.fetcher.describe(),
                            source: Box::new(e),
                        });
                    }
                }
            }
            if !content.contains(digest) {
                return Err(last.unwrap_or_else(|| RemoteCacheError::Missing(digest.clone())));
            }
        }
        Ok(())
    }

    /// Whether nothing was imported.
    pub fn is_empty(&self) -> bool {
        self.imports.is_empty()
    }
}

/// Which records an export carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExportMode {
    /// Only the steps whose layers are in the final image (BuildKit's default).
    #[default]
    Min,
    /// Every step of the build, intermediate stages included.
    Max,
}

impl std::str::FromStr for ExportMode {
    type Err = RemoteCacheError;
    fn from_str(s: &str) -> Result<Self, RemoteCacheError> {
        match s {
            "min" => Ok(Self::Min),
            "max" => Ok(Self::Max),
            other => Err(RemoteCacheError::Invalid {
                what: format!("mode={other}"),
                reason: "expected min or max".into(),
            }),
        }
    }
}

/// The records of `all` that `mode` exports, for a build whose image has `final_layers`
/// (matched by diff id: a layer is the same whatever its compression).
pub fn select_records(
    all: &[CacheRecord],
    mode: ExportMode,
    final_layers: &[LayerRecord],
) -> Vec<CacheRecord> {
    let mut out: Vec<CacheRecord> = all
        .iter()
        .filter(|r| {
            mode == ExportMode::Max || final_layers.iter().any(|l| l.diff_id == r.layer.diff_id)
        })
        .cloned()
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out.dedup_by(|a, b| a.key == b.key);
    out
}
