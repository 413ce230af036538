//! Small stores for the GC tests: images, cache entries and snapshots made by hand.

use std::path::Path;
use std::time::{Duration, SystemTime};

use oci_spec::image::Digest;

use crate::cache::LayerRecord;
use crate::snapshot::chain_id;
use crate::store::{ContentStore, Store, sha256_digest};

/// An image stored by [`image`].
#[derive(Debug, Clone)]
pub(super) struct TestImage {
    pub(super) manifest: Digest,
    pub(super) config: Digest,
    pub(super) layers: Vec<Digest>,
    pub(super) diff_ids: Vec<Digest>,
}

/// The diff_id the tests give a layer: anything distinct from its blob digest will do.
pub(super) fn diff_id_of(layer: &[u8]) -> Digest {
    sha256_digest(&[b"diff:", layer].concat()).unwrap()
}

/// Stores `layers` as blobs, and a config and manifest over them.
pub(super) fn image(content: &ContentStore, layers: &[&[u8]]) -> TestImage {
    let blobs: Vec<_> = layers
        .iter()
        .map(|l| content.put_bytes(l).unwrap())
        .collect();
    let diff_ids: Vec<Digest> = layers.iter().map(|l| diff_id_of(l)).collect();
    let config = content
        .put_bytes(
            serde_json::json!({
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(ToString::to_string).collect::<Vec<_>>()},
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap();
    let manifest = content
        .put_bytes(
            serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.digest.to_string(), "size": config.size},
                "layers": blobs.iter().map(|b| serde_json::json!({
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": b.digest.to_string(),
                    "size": b.size,
                })).collect::<Vec<_>>(),
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap();
    TestImage {
        manifest: manifest.digest,
        config: config.digest,
        layers: blobs.into_iter().map(|b| b.digest).collect(),
        diff_ids,
    }
}

/// Stores an index over `manifests`.
pub(super) fn index(content: &ContentStore, manifests: &[&Digest]) -> Digest {
    content
        .put_bytes(
            serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": manifests.iter().map(|d| serde_json::json!({
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": d.to_string(),
                    "size": 1,
                })).collect::<Vec<_>>(),
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap()
        .digest
}

/// Stores layer `bytes` as a blob and records a cache entry `key` for it.
pub(super) fn cache_layer(store: &Store, key: &str, bytes: &[u8]) -> Digest {
    let blob = store.content().put_bytes(bytes).unwrap();
    let record = LayerRecord {
        diff_id: diff_id_of(bytes),
        digest: blob.digest.clone(),
        size: blob.size,
        media_type: "application/vnd.oci.image.layer.v1.tar".into(),
        created: None,
    };
    store
        .meta()
        .cache_put(key, &serde_json::to_vec(&record).unwrap())
        .unwrap();
    blob.digest
}

/// Extracted-layer snapshot directories for `layers`, and a merged rootfs for the chain.
pub(super) fn snapshots_for(root: &Path, layers: &[&[u8]]) {
    let mut chain = Vec::new();
    for layer in layers {
        let diff_id = diff_id_of(layer);
        let dir = root
            .join("snapshots/layers")
            .join(diff_id.digest())
            .join("fs");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("file"), layer).unwrap();
        chain.push(diff_id);
    }
    let rootfs = root
        .join("snapshots/rootfs")
        .join(chain_id(&chain).unwrap().digest())
        .join("fs");
    std::fs::create_dir_all(&rootfs).unwrap();
}

/// Whether the layer snapshot of `layer` exists.
pub(super) fn has_layer_snapshot(root: &Path, layer: &[u8]) -> bool {
    root.join("snapshots/layers")
        .join(diff_id_of(layer).digest())
        .exists()
}

/// Whether the merged rootfs of `layers` exists.
pub(super) fn has_rootfs(root: &Path, layers: &[&[u8]]) -> bool {
    let chain: Vec<_> = layers.iter().map(|l| diff_id_of(l)).collect();
    root.join("snapshots/rootfs")
        .join(chain_id(&chain).unwrap().digest())
        .exists()
}

/// Sets the modification time of `path` to `age` ago.
pub(super) fn age(path: &Path, age: Duration) {
    let when = SystemTime::now() - age;
    std::fs::File::open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}
