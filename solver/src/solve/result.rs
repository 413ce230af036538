//! What an op produces.

use kiln_llb::CacheKey;
use oci_spec::image::Digest;

pub use crate::cache::LayerRecord;
use crate::context::Context;
use crate::snapshot::SnapshotError;
use crate::store::ContentStore;

/// The result of one op.
#[derive(Debug, Clone)]
pub enum OpResult {
    /// A filesystem made of layers (base first).
    Layers {
        /// The op's cache key.
        key: CacheKey,
        /// The layers.
        layers: Vec<LayerRecord>,
        /// For image sources, the manifest the layers came from.
        manifest_digest: Option<Digest>,
    },
    /// A local directory.
    Dir {
        /// The op's cache key (its content is added by each reader).
        key: CacheKey,
        /// The context.
        context: Context,
    },
}

impl OpResult {
    /// The op's key.
    pub fn key(&self) -> &CacheKey {
        match self {
            OpResult::Layers { key, .. } | OpResult::Dir { key, .. } => key,
        }
    }

    /// The layers (empty for a directory).
    pub fn layers(&self) -> &[LayerRecord] {
        match self {
            OpResult::Layers { layers, .. } => layers,
            OpResult::Dir { .. } => &[],
        }
    }
}

/// A layer chain as the snapshotter wants it: diff ids (base first) and a way to open the
/// blob behind each.
#[derive(Debug, Clone)]
pub struct LayerChain {
    /// The diff ids, base first.
    pub diff_ids: Vec<Digest>,
    blobs: std::collections::BTreeMap<String, Digest>,
    content: ContentStore,
}

impl LayerChain {
    /// The chain of `layers`, whose blobs are in `content`.
    pub fn new(content: &ContentStore, layers: &[LayerRecord]) -> Self {
        let mut diff_ids = Vec::with_capacity(layers.len());
        let mut blobs = std::collections::BTreeMap::new();
        for l in layers {
            blobs.insert(l.diff_id.to_string(), l.digest.clone());
            diff_ids.push(l.diff_id.clone());
        }
        LayerChain {
            diff_ids,
            blobs,
            content: content.clone(),
        }
    }

    /// Opens the blob of the layer with this diff id.
    pub fn open(&self, diff_id: &Digest) -> Result<Box<dyn std::io::Read>, SnapshotError> {
        let blob = self
            .blobs
            .get(&diff_id.to_string())
            .ok_or_else(|| SnapshotError::other(format!("no blob for layer {diff_id}")))?;
        let f = self
            .content
            .open_blob(blob)
            .map_err(|e| SnapshotError::other(e.to_string()))?;
        Ok(Box::new(f))
    }
}
