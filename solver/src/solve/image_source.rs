//! Image sources: an image in the local store by name, or an OCI layout directory whose
//! blobs are imported (verified) into the store.

use kiln_llb::{ImageConfig, Source};
use oci_spec::image::{Digest, ImageManifest};

use super::LayerRecord;
use crate::store::Store;

/// A resolved image: its manifest digest, config and layers.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The manifest's digest.
    pub manifest_digest: Digest,
    /// The config.
    pub config: ImageConfig,
    /// The layers, base first.
    pub layers: Vec<LayerRecord>,
}

/// Resolves an image source to its manifest, config and layers.
pub fn resolve(store: &Store, source: &Source) -> Result<ResolvedImage, String> {
    let manifest_digest = match source {
        Source::Image { reference, .. } => store
            .images()
            .resolve(reference)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                format!("image {reference} is not in the local store (kiln images lists what is)")
            })?,
        Source::OciLayout { path, selector, .. } => {
            let layout = std::path::Path::new(path);
            let img = crate::export::read_oci_layout(layout, selector.as_deref())
                .map_err(|e| e.to_string())?;
            crate::export::import_oci_layout_blobs(store.content(), layout, &img)
                .map_err(|e| e.to_string())?;
            img.manifest_digest
        }
        other => return Err(format!("not an image source: {other:?}")),
    };
    from_manifest(store, manifest_digest)
}

/// Reads a manifest and its config from the store.
pub fn from_manifest(store: &Store, manifest_digest: Digest) -> Result<ResolvedImage, String> {
    let bytes = store
        .content()
        .read_blob(&manifest_digest)
        .map_err(|e| format!("manifest {manifest_digest}: {e}"))?;
    let manifest: ImageManifest =
        serde_json::from_slice(&bytes).map_err(|e| format!("manifest {manifest_digest}: {e}"))?;
    let config_digest = manifest.config().digest().clone();
    let cbytes = store
        .content()
        .read_blob(&config_digest)
        .map_err(|e| format!("config {config_digest}: {e}"))?;
    let config: ImageConfig =
        serde_json::from_slice(&cbytes).map_err(|e| format!("config {config_digest}: {e}"))?;
    if config.rootfs.diff_ids.len() != manifest.layers().len() {
        return Err(format!(
            "image {manifest_digest}: {} layers but {} diff_ids",
            manifest.layers().len(),
            config.rootfs.diff_ids.len()
        ));
    }
    let layers = manifest
        .layers()
        .iter()
        .zip(&config.rootfs.diff_ids)
        .map(|(l, diff_id)| LayerRecord {
            diff_id: diff_id.clone(),
            digest: l.digest().to_string(),
            size: l.size(),
            media_type: oci_layer_media_type(l.media_type().as_ref()),
        })
        .collect();
    Ok(ResolvedImage {
        manifest_digest,
        config,
        layers,
    })
}

/// The OCI name of a layer media type: a base pulled as Docker schema 2 keeps its blobs, but
/// the OCI manifests kiln writes on top of it must name them the OCI way (the bytes are the
/// same: a gzip'd or plain tar).
fn oci_layer_media_type(media_type: &str) -> String {
    match media_type {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.v1.tar+gzip".to_owned()
        }
        "application/vnd.docker.image.rootfs.diff.tar" => {
            "application/vnd.oci.image.layer.v1.tar".to_owned()
        }
        "application/vnd.docker.image.rootfs.diff.tar.zstd" => {
            "application/vnd.oci.image.layer.v1.tar+zstd".to_owned()
        }
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn docker_layer_media_types_become_oci() {
        assert_eq!(
            super::oci_layer_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert_eq!(
            super::oci_layer_media_type("application/vnd.oci.image.layer.v1.tar+zstd"),
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
    }
}
