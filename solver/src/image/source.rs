//! An image source made ready for a build: the manifest for the platform, its layers, and its
//! config — read tolerantly, aligned (a history entry per layer), stripped of what describes
//! the base's own build, and checked against the platform asked for.

use kiln_llb::{ImageConfig, Platform, Source};
use oci_spec::image::Digest;

use super::error::ResolveError;
use super::layout::{import_oci_layout_blobs, open_layout, read_oci_layout};
use super::local::{Lookup, lookup};
use super::manifest::{self, Document, oci_layer_media_type};
use crate::store::Store;

/// One layer of a resolved image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLayer {
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// The blob's digest.
    pub digest: Digest,
    /// The blob's size.
    pub size: u64,
    /// The blob's media type, named the OCI way.
    pub media_type: String,
}

/// A resolved image: its manifest digest, config and layers.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The manifest's digest.
    pub manifest_digest: Digest,
    /// The config, ready to build on.
    pub config: ImageConfig,
    /// The layers, base first.
    pub layers: Vec<ImageLayer>,
    /// Said when a single-platform image is for another platform than asked for (BuildKit's
    /// InvalidBaseImagePlatform): it is used, but the result will not run where expected.
    pub warning: Option<String>,
}

/// Resolves an image source from the local store (an OCI layout's blobs are imported first).
pub fn resolve(store: &Store, source: &Source) -> Result<ResolvedImage, ResolveError> {
    match source {
        Source::Image {
            reference,
            platform,
        } => match lookup(store, reference, platform)? {
            Lookup::Found {
                manifest,
                for_platform,
                ..
            } => from_manifest(store, reference, manifest, platform, for_platform),
            Lookup::Incomplete { detail } => Err(ResolveError::Incomplete {
                reference: reference.clone(),
                detail,
            }),
            Lookup::Absent => Err(ResolveError::Missing {
                reference: reference.clone(),
            }),
        },
        Source::OciLayout {
            path,
            selector,
            platform,
        } => {
            let layout = open_layout(std::path::Path::new(path), &store.root().join("tmp"))?;
            let image = read_oci_layout(layout.path(), selector.as_deref(), platform)?;
            import_oci_layout_blobs(store.content(), layout.path(), &image)?;
            let name = match selector {
                Some(s) => format!("oci-layout://{path}:{s}"),
                None => format!("oci-layout://{path}"),
            };
            from_manifest(
                store,
                &name,
                image.manifest_digest,
                platform,
                image.from_index,
            )
        }
        other => Err(ResolveError::Store {
            reference: format!("{other:?}"),
            detail: "not an image source".to_owned(),
        }),
    }
}

/// Reads manifest `manifest_digest` and its config from the store; `for_platform` says an
/// index chose it for `want` (so its config must agree), else a mismatch is only a warning.
pub fn from_manifest(
    store: &Store,
    reference: &str,
    manifest_digest: Digest,
    want: &Platform,
    for_platform: bool,
) -> Result<ResolvedImage, ResolveError> {
    let store_err = |detail: String| ResolveError::Store {
        reference: reference.to_owned(),
        detail,
    };
    let bytes = store
        .content()
        .read_blob(&manifest_digest)
        .map_err(|e| store_err(format!("manifest {manifest_digest}: {e}")))?;
    let bad_manifest = |source| ResolveError::Manifest {
        reference: reference.to_owned(),
        source,
    };
    let Document::Manifest(manifest) =
        manifest::parse(&bytes, &manifest_digest).map_err(bad_manifest)?
    else {
        return Err(store_err(format!(
            "{manifest_digest} is an index, not an image manifest"
        )));
    };
    manifest
        .check_layers(&manifest_digest)
        .map_err(bad_manifest)?;
    let config_digest = manifest
        .config
        .parsed_digest()
        .map_err(|detail| store_err(format!("manifest {manifest_digest}: config {detail}")))?;
    let config_err = |detail: String| ResolveError::Config {
        reference: reference.to_owned(),
        digest: config_digest.to_string(),
        detail,
    };
    let cbytes = store
        .content()
        .read_blob(&config_digest)
        .map_err(|e| config_err(e.to_string()))?;
    let config: ImageConfig =
        serde_json::from_slice(&cbytes).map_err(|e| config_err(e.to_string()))?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(config_err(format!(
            "{} diff_ids for the {} layers of manifest {manifest_digest}",
            config.rootfs.diff_ids.len(),
            manifest.layers.len()
        )));
    }
    let mut layers = Vec::with_capacity(manifest.layers.len());
    for (layer, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
        let digest = layer
            .parsed_digest()
            .map_err(|detail| store_err(format!("manifest {manifest_digest}: {detail}")))?;
        let media_type = actual_media_type(store, &digest)
            .unwrap_or_else(|| oci_layer_media_type(&layer.media_type));
        layers.push(ImageLayer {
            diff_id: diff_id
                .parse()
                .map_err(|e| config_err(format!("diff_id {diff_id:?}: {e}")))?,
            digest,
            size: layer.size,
            media_type,
        });
    }
    let warning = check_platform(reference, &manifest_digest, &config, want, for_platform)?;
    let mut config = config.for_derived_image();
    config.align_history(layers.len());
    Ok(ResolvedImage {
        manifest_digest,
        config,
        layers,
        warning,
    })
}

/// The media type of a stored layer blob by its first bytes, so that the manifests kiln
/// writes on a base say what its blobs are even where the base's manifest did not (a plain
/// tar labelled gzip, as a `docker save` pushed by skopeo is); `None` when the blob is not
/// (yet) in the store.
fn actual_media_type(store: &Store, digest: &Digest) -> Option<String> {
    use std::io::Read as _;
    let mut start = [0u8; 8];
    let mut blob = store.content().open_blob(digest).ok()?;
    let mut filled = 0;
    while filled < start.len() {
        match blob.read(&mut start[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(_) => return None,
        }
    }
    crate::layer::layer_media_type(&start[..filled]).map(str::to_owned)
}

/// The platform a config names must serve the one wanted: an error when an index listed the
/// manifest for it, a warning for a single-platform image. A config naming no architecture
/// is taken at its word of nothing.
fn check_platform(
    reference: &str,
    manifest: &Digest,
    config: &ImageConfig,
    want: &Platform,
    for_platform: bool,
) -> Result<Option<String>, ResolveError> {
    if config.architecture.is_empty() {
        return Ok(None);
    }
    let os = if config.os.is_empty() {
        want.os.as_str()
    } else {
        config.os.as_str()
    };
    let found = Platform::new(os, &config.architecture, &config.variant);
    if want.score(&found).is_some() {
        return Ok(None);
    }
    if for_platform {
        return Err(ResolveError::WrongPlatform {
            reference: reference.to_owned(),
            digest: manifest.to_string(),
            wanted: want.to_string(),
            found: found.to_string(),
        });
    }
    Ok(Some(format!(
        "base image {reference} is for {found}, not {want} as requested: it is used as it is, and what is built on it will not run on {want}"
    )))
}
