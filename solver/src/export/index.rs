//! A multi-platform build's image index: one manifest per platform, each entry carrying the
//! platform its config names, in OCI or Docker media types as the form says (buildx's
//! `oci-mediatypes=false` gives a Docker manifest list).

use std::collections::BTreeMap;

use oci_spec::image::Digest;
use serde_json::json;

use super::error::ExportError;
use super::form::ImageForm;
use super::image::StoredImage;
use super::json::canonical_json;
use crate::image::manifest::media;
use crate::store::ContentStore;

/// Writes the index of `manifests` (one per platform, in this order) into the content store
/// and returns its digest. The same manifests and form always give the same digest.
pub fn write_index(
    store: &ContentStore,
    manifests: &[Digest],
    form: &ImageForm,
) -> Result<Digest, ExportError> {
    let oci = form.oci_mediatypes.unwrap_or(true);
    let mut entries = Vec::with_capacity(manifests.len());
    for digest in manifests {
        let image = StoredImage::load(store, digest)?;
        let descriptor = image.descriptor();
        let mut entry = json!({
            "mediaType": descriptor.media_type().to_string(),
            "digest": digest.to_string(),
            "size": descriptor.size(),
        });
        if let Some(p) = descriptor.platform() {
            let mut platform = json!({
                "os": p.os().to_string(),
                "architecture": p.architecture().to_string(),
            });
            if let Some(variant) = p.variant().as_deref().filter(|v| !v.is_empty()) {
                platform["variant"] = json!(variant);
            }
            entry["platform"] = platform;
        }
        if !form.annotations.manifest_descriptor.is_empty() {
            entry["annotations"] = json!(form.annotations.manifest_descriptor);
        }
        entries.push(entry);
    }
    let mut index = json!({
        "schemaVersion": 2,
        "mediaType": if oci { media::OCI_INDEX } else { media::DOCKER_LIST },
        "manifests": entries,
    });
    if !form.annotations.index.is_empty() {
        let annotations: BTreeMap<&String, &String> = form.annotations.index.iter().collect();
        index["annotations"] = json!(annotations);
    }
    let bytes = canonical_json(&index).map_err(|e| ExportError::Rewrite {
        digest: manifests[0].clone(),
        detail: format!("writing the image index: {e}"),
    })?;
    Ok(store.put_bytes(&bytes)?.digest)
}
