//! Committing an image: the config with its `rootfs.diff_ids`, and an OCI manifest, both
//! canonical JSON (sorted keys), stored in the content store.

use kiln_llb::ImageConfig;
use oci_spec::image::Digest;

use super::LayerRecord;
use crate::store::Store;

/// OCI manifest media type.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI config media type.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";

/// A committed image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedImage {
    /// The manifest's digest (the image id kiln prints).
    pub manifest_digest: Digest,
    /// The manifest's size in bytes.
    pub manifest_size: u64,
    /// The config's digest.
    pub config_digest: Digest,
    /// Total compressed size of the layers.
    pub layers_size: u64,
}

/// Why an image could not be committed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    /// The config's history claims another number of layers than the build made (a bug).
    #[error("internal: {layers} layers but {history} history entries with a layer")]
    HistoryMismatch {
        /// Layers made.
        layers: usize,
        /// History entries that claim a layer.
        history: usize,
    },
    /// The config or manifest did not encode.
    #[error("encoding the image {what}: {source}")]
    Encode {
        /// `config` or `manifest`.
        what: &'static str,
        /// Why.
        source: serde_json::Error,
    },
    /// The content store refused a blob.
    #[error("storing the image {what}: {source}")]
    Store {
        /// `config` or `manifest`.
        what: &'static str,
        /// Why (boxed: the other errors stay small).
        source: Box<crate::store::ContentError>,
    },
}

/// Writes `config` (with `layers`' diff ids, and its history's times stamped from when each
/// layer was first made, clamped to `epoch`) and a manifest for them.
pub fn commit_image(
    store: &Store,
    mut config: ImageConfig,
    layers: &[LayerRecord],
    epoch: Option<i64>,
) -> Result<CommittedImage, CommitError> {
    config.rootfs.kind = "layers".to_owned();
    config.rootfs.diff_ids = layers.iter().map(|l| l.diff_id.to_string()).collect();
    let non_empty = config.history.iter().filter(|h| !h.empty_layer).count();
    if !config.history.is_empty() && non_empty != layers.len() {
        return Err(CommitError::HistoryMismatch {
            layers: layers.len(),
            history: non_empty,
        });
    }
    let layer_times: Vec<Option<String>> = layers.iter().map(|l| l.created.clone()).collect();
    config.stamp_times(&layer_times, epoch);
    let config_json = config
        .to_canonical_json()
        .map_err(|source| CommitError::Encode {
            what: "config",
            source,
        })?;
    let config_blob =
        store
            .content()
            .put_bytes(&config_json)
            .map_err(|source| CommitError::Store {
                what: "config",
                source: Box::new(source),
            })?;
    let layer_descs: Vec<serde_json::Value> = layers
        .iter()
        .map(|l| {
            serde_json::json!({
                "mediaType": l.media_type,
                "digest": l.digest,
                "size": l.size,
            })
        })
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {
            "mediaType": CONFIG_MEDIA_TYPE,
            "digest": config_blob.digest.to_string(),
            "size": config_blob.size,
        },
        "layers": layer_descs,
    });
    let manifest_json = serde_json::to_vec(&manifest).map_err(|source| CommitError::Encode {
        what: "manifest",
        source,
    })?;
    let manifest_blob =
        store
            .content()
            .put_bytes(&manifest_json)
            .map_err(|e| CommitError::Store {
                what: "manifest",
                source: Box::new(e),
            })?;
    Ok(CommittedImage {
        manifest_digest: manifest_blob.digest,
        manifest_size: manifest_blob.size,
        config_digest: config_blob.digest,
        layers_size: layers.iter().map(|l| l.size).sum(),
    })
}
