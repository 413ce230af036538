//! What the cache remembers of a step's result: its layers.

use oci_spec::image::Digest;
use serde::{Deserialize, Serialize};

/// One layer of a chain, as recorded in the cache index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Digest of the uncompressed tar.
    pub diff_id: String,
    /// Digest of the blob.
    pub digest: String,
    /// Blob size.
    pub size: u64,
    /// Blob media type.
    pub media_type: String,
}

impl From<&crate::image::ImageLayer> for LayerRecord {
    fn from(layer: &crate::image::ImageLayer) -> Self {
        LayerRecord {
            diff_id: layer.diff_id.to_string(),
            digest: layer.digest.to_string(),
            size: layer.size,
            media_type: layer.media_type.clone(),
        }
    }
}

impl LayerRecord {
    /// The blob digest, parsed.
    pub fn digest(&self) -> Result<Digest, String> {
        Digest::try_from(self.digest.as_str()).map_err(|e| format!("{}: {e}", self.digest))
    }

    /// The diff id, parsed.
    pub fn diff_id(&self) -> Result<Digest, String> {
        Digest::try_from(self.diff_id.as_str()).map_err(|e| format!("{}: {e}", self.diff_id))
    }
}
