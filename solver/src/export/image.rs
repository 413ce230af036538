//! An image as the exporters see it: its manifest from the content store, checked complete.

use std::collections::HashSet;

use oci_spec::image::{Arch, Descriptor, Digest, ImageManifest, MediaType, Os, Platform};
use serde::Deserialize;

use super::error::ExportError;
use crate::store::{ContentError, ContentStore};

/// A manifest read from the store, with every blob it references known to be present.
#[derive(Debug)]
pub(crate) struct StoredImage {
    pub(crate) digest: Digest,
    pub(crate) manifest_bytes: Vec<u8>,
    pub(crate) manifest: ImageManifest,
    pub(crate) config_bytes: Vec<u8>,
}

/// The few config fields an index descriptor's platform needs.
#[derive(Debug, Deserialize)]
struct ConfigPlatform {
    os: Option<String>,
    architecture: Option<String>,
    variant: Option<String>,
}

impl StoredImage {
    /// Reads and verifies the manifest and config, and checks every layer is present, so an
    /// export fails before it writes anything rather than halfway.
    pub(crate) fn load(store: &ContentStore, digest: &Digest) -> Result<Self, ExportError> {
        let manifest_bytes = store.read_blob(digest)?;
        let manifest: ImageManifest =
            serde_json::from_slice(&manifest_bytes).map_err(|source| ExportError::BadManifest {
                digest: digest.clone(),
                source,
            })?;
        let config_bytes = store.read_blob(manifest.config().digest())?;
        for layer in manifest.layers() {
            if !store.contains(layer.digest()) {
                return Err(ContentError::NotFound {
                    digest: layer.digest().clone(),
                }
                .into());
            }
        }
        Ok(Self {
            digest: digest.clone(),
            manifest_bytes,
            manifest,
            config_bytes,
        })
    }

    /// The manifest's own media type (OCI unless the manifest says otherwise).
    pub(crate) fn media_type(&self) -> MediaType {
        self.manifest
            .media_type()
            .clone()
            .unwrap_or(MediaType::ImageManifest)
    }

    /// A descriptor for the manifest, with the platform taken from the config.
    pub(crate) fn descriptor(&self) -> Descriptor {
        let mut descriptor = Descriptor::new(
            self.media_type(),
            self.manifest_bytes.len() as u64,
            self.digest.clone(),
        );
        descriptor.set_platform(self.platform());
        descriptor
    }

    /// Layers and config, each once, in manifest order (the same layer may appear twice).
    pub(crate) fn blobs(&self) -> Vec<&Descriptor> {
        let mut seen = HashSet::new();
        self.manifest
            .layers()
            .iter()
            .chain(std::iter::once(self.manifest.config()))
            .filter(|d| seen.insert(d.digest().clone()))
            .collect()
    }

    fn platform(&self) -> Option<Platform> {
        let config: ConfigPlatform = serde_json::from_slice(&self.config_bytes).ok()?;
        let mut platform = Platform::default();
        platform.set_os(Os::from(config.os?.as_str()));
        platform.set_architecture(Arch::from(config.architecture?.as_str()));
        platform.set_variant(config.variant.filter(|v| !v.is_empty()));
        Some(platform)
    }
}

/// What an export writes: one image, or a multi-platform build's index and its images.
#[derive(Debug)]
pub(crate) struct StoredTop {
    pub(crate) digest: Digest,
    pub(crate) bytes: Vec<u8>,
    /// An index's media type (OCI index or Docker list); `None` for one image, which
    /// `images` then holds.
    media_type: Option<MediaType>,
    pub(crate) images: Vec<StoredImage>,
}

impl StoredTop {
    /// Reads `digest` — an image manifest, or an index whose every manifest is read and
    /// checked complete — so an export fails before it writes anything.
    pub(crate) fn load(store: &ContentStore, digest: &Digest) -> Result<Self, ExportError> {
        let bytes = store.read_blob(digest)?;
        let bad = |detail: String| ExportError::BadIndexEntry {
            digest: digest.clone(),
            detail,
        };
        let index = match crate::image::manifest::parse(&bytes, digest) {
            Ok(crate::image::manifest::Document::Index(index)) => index,
            // A manifest (or what StoredImage then says is not one).
            _ => {
                let image = StoredImage::load(store, digest)?;
                return Ok(Self {
                    digest: digest.clone(),
                    bytes,
                    media_type: None,
                    images: vec![image],
                });
            }
        };
        let mut images = Vec::with_capacity(index.manifests.len());
        for entry in &index.manifests {
            if entry.is_index() {
                return Err(bad(format!(
                    "nested index {} is not supported",
                    entry.digest
                )));
            }
            let child = entry.parsed_digest().map_err(|e| bad(e.to_string()))?;
            images.push(StoredImage::load(store, &child)?);
        }
        Ok(Self {
            digest: digest.clone(),
            media_type: Some(
                index
                    .media_type
                    .as_deref()
                    .map_or(MediaType::ImageIndex, MediaType::from),
            ),
            bytes,
            images,
        })
    }

    /// The descriptor an `index.json` (or a tag) names this by: an image's carries its
    /// platform, an index's none.
    pub(crate) fn descriptor(&self) -> Descriptor {
        match (&self.media_type, self.images.first()) {
            (None, Some(image)) => image.descriptor(),
            (media_type, _) => Descriptor::new(
                media_type.clone().unwrap_or(MediaType::ImageIndex),
                self.bytes.len() as u64,
                self.digest.clone(),
            ),
        }
    }

    /// Every blob below the top document, each once: layers and configs, then (for an
    /// index) the images' manifests — the order a reader can trust, the top written last.
    pub(crate) fn blobs(&self) -> Vec<(Digest, u64)> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for image in &self.images {
            for d in image.blobs() {
                if seen.insert(d.digest().clone()) {
                    out.push((d.digest().clone(), d.size()));
                }
            }
        }
        if self.media_type.is_some() {
            for image in &self.images {
                if seen.insert(image.digest.clone()) {
                    out.push((image.digest.clone(), image.manifest_bytes.len() as u64));
                }
            }
        }
        out
    }
}

/// The descriptor of the stored image `digest` (its media type, size and platform), checked
/// complete.
pub fn image_descriptor(store: &ContentStore, digest: &Digest) -> Result<Descriptor, ExportError> {
    Ok(StoredTop::load(store, digest)?.descriptor())
}

/// [`image_descriptor`], and the platform the image's config names as kiln's store keys
/// images by, from one read of the image.
pub fn image_descriptor_and_platform(
    store: &ContentStore,
    digest: &Digest,
) -> Result<(Descriptor, kiln_llb::Platform), ExportError> {
    let image = StoredImage::load(store, digest)?;
    let config: ConfigPlatform =
        serde_json::from_slice(&image.config_bytes).map_err(|source| ExportError::BadManifest {
            digest: digest.clone(),
            source,
        })?;
    let platform = kiln_llb::Platform::new(
        config.os.as_deref().unwrap_or_default(),
        config.architecture.as_deref().unwrap_or_default(),
        config.variant.as_deref().unwrap_or_default(),
    );
    Ok((image.descriptor(), platform))
}
