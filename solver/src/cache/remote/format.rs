//! The cache artifact's config: which cache key gave which layer.

use serde::{Deserialize, Serialize};

use super::RemoteCacheError;
use crate::cache::LayerRecord;

/// The config blob's media type.
pub const CACHE_CONFIG_MEDIA_TYPE: &str = "application/vnd.kiln.cache.config.v1+json";
/// The manifest's artifact type.
pub const CACHE_ARTIFACT_TYPE: &str = "application/vnd.kiln.cache.v1";
/// The config's schema tag; a different one is refused rather than misread.
pub const SCHEMA: &str = "kiln.cache.v1";

/// The config blob of a cache artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheConfig {
    /// [`SCHEMA`].
    pub schema: String,
    /// The cache-key encoding the keys were made with (`kiln_llb::encode::SCHEMA`); keys
    /// of another encoding can never match, so such an import is skipped.
    pub key_schema: String,
    /// The records, sorted by key.
    pub records: Vec<CacheRecord>,
}

/// One solved step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheRecord {
    /// The cache key the step was looked up by.
    pub key: String,
    /// When `key` is a definition key (a step keyed by its inputs' keys rather than the
    /// content it read), the content key its result carries, so later steps compute the
    /// same keys as on the machine that ran it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_key: Option<String>,
    /// The layer the step produced.
    pub layer: LayerRecord,
}

impl CacheConfig {
    /// A config of `records` for the current key encoding.
    pub fn new(records: Vec<CacheRecord>) -> Self {
        Self {
            schema: SCHEMA.to_owned(),
            key_schema: kiln_llb::encode::SCHEMA.to_owned(),
            records,
        }
    }

    /// A config of `records` whose plain-tar layers are compressed for leaving the store
    /// (gzip, made once per layer and remembered), as an exported cache carries them.
    pub fn at_the_edge(
        store: &crate::store::Store,
        mut records: Vec<CacheRecord>,
    ) -> Result<Self, RemoteCacheError> {
        use crate::cache::compressed::{LayerCompression, compress_plain};
        let layers: Vec<_> = records.iter().map(|r| r.layer.clone()).collect();
        let compressed = compress_plain(store, &layers, LayerCompression::EDGE)?;
        for (record, layer) in records.iter_mut().zip(compressed) {
            record.layer = layer;
        }
        Ok(Self::new(records))
    }

    /// Parses a config blob, refusing other schemas.
    pub fn parse(bytes: &[u8]) -> Result<Self, RemoteCacheError> {
        let config: Self =
            serde_json::from_slice(bytes).map_err(RemoteCacheError::json("cache config"))?;
        if config.schema != SCHEMA {
            return Err(RemoteCacheError::Invalid {
                what: "cache config".into(),
                reason: format!("schema {:?}, kiln reads {SCHEMA:?}", config.schema),
            });
        }
        Ok(config)
    }

    /// The canonical bytes (sorted keys, no whitespace), so equal caches have equal digests.
    pub fn to_bytes(&self) -> Result<Vec<u8>, RemoteCacheError> {
        let value = serde_json::to_value(self).map_err(RemoteCacheError::json("cache config"))?;
        serde_json::to_vec(&value).map_err(RemoteCacheError::json("cache config"))
    }

    /// The artifact manifest for this config (stored as `config`) and its layer blobs.
    pub fn manifest(&self, config: &crate::store::BlobInfo) -> Result<Vec<u8>, RemoteCacheError> {
        let mut layers: Vec<&LayerRecord> = self.records.iter().map(|r| &r.layer).collect();
        layers.sort_by(|a, b| a.digest.as_ref().cmp(b.digest.as_ref()));
        layers.dedup_by(|a, b| a.digest == b.digest);
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": crate::registry::media::OCI_MANIFEST,
            "artifactType": CACHE_ARTIFACT_TYPE,
            "config": {
                "mediaType": CACHE_CONFIG_MEDIA_TYPE,
                "digest": config.digest.to_string(),
                "size": config.size,
            },
            "layers": layers.iter().map(|l| serde_json::json!({
                "mediaType": l.media_type,
                "digest": l.digest,
                "size": l.size,
            })).collect::<Vec<_>>(),
        });
        serde_json::to_vec(&manifest).map_err(RemoteCacheError::json("cache manifest"))
    }
}
