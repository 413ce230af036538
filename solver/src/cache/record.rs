//! What the cache remembers of a step's result: its layer, and the one value the local cache
//! index stores under a step's key.

use oci_spec::image::Digest;
use serde::{Deserialize, Serialize};

/// One layer of a chain, as recorded in the cache index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// Digest of the blob.
    pub digest: Digest,
    /// Blob size.
    pub size: u64,
    /// Blob media type.
    pub media_type: String,
    /// When the step first made this layer (RFC 3339): a cached step's history entry keeps
    /// it, so a rebuild from cache is the same image. `None` for a base image's layers, whose
    /// history says when they were made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

impl From<&crate::image::ImageLayer> for LayerRecord {
    fn from(layer: &crate::image::ImageLayer) -> Self {
        LayerRecord {
            diff_id: layer.diff_id.clone(),
            digest: layer.digest.clone(),
            size: layer.size,
            media_type: layer.media_type.clone(),
            created: None,
        }
    }
}

/// A local cache-index value: the layer, and for a definition key the content key its result
/// carries. Older entries are a bare [`LayerRecord`], which [`CacheEntry::decode`] reads too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// The layer the step produced.
    #[serde(flatten)]
    pub layer: LayerRecord,
    /// For a definition key, the content key of the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_key: Option<String>,
}

impl CacheEntry {
    /// The bytes stored in the index.
    pub fn encode(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(self)
    }

    /// An index value, or `None` when it is not one (an entry of a future kiln is skipped).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn entries_round_trip_and_older_bare_layers_still_read() {
        let layer = LayerRecord {
            diff_id: Digest::try_from(format!("sha256:{}", "1".repeat(64))).unwrap(),
            digest: Digest::try_from(format!("sha256:{}", "2".repeat(64))).unwrap(),
            size: 3,
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            created: Some("2026-01-02T03:04:05Z".into()),
        };
        let entry = CacheEntry {
            layer: layer.clone(),
            result_key: Some("sha256:k".into()),
        };
        assert_eq!(CacheEntry::decode(&entry.encode().unwrap()), Some(entry));
        let bare = serde_json::to_vec(&layer).unwrap();
        assert_eq!(
            CacheEntry::decode(&bare),
            Some(CacheEntry {
                layer,
                result_key: None
            })
        );
        assert_eq!(CacheEntry::decode(b"not json"), None);
    }
}
