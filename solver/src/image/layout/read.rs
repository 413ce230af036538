//! Reading an image out of an OCI layout, for `FROM oci-layout://PATH[:tag|@digest]`.
//!
//! The selector picks entries of `index.json` by their `org.opencontainers.image.ref.name`
//! (or containerd's `io.containerd.image.name`) or by digest; with none, the layout must hold
//! one image (or one per platform). Image indexes are followed to the manifest for the
//! platform wanted. Every JSON blob is verified against its digest and every layer is checked
//! present with the right size, so a corrupt layout fails here, naming the blob, before
//! anything is imported.

use std::path::{Path, PathBuf};

use kiln_llb::Platform;
use oci_spec::image::{Digest, DigestAlgorithm};

use super::REF_NAME_ANNOTATION;
use super::dir::LayoutDir;
use super::error::LayoutError;
use crate::image::manifest::{self, Descriptor, Document, Manifest};

/// How deep image indexes may nest before kiln assumes a cycle.
const MAX_INDEX_DEPTH: usize = 4;

/// containerd writes the full image name under this annotation next to the OCI one.
const CONTAINERD_NAME_ANNOTATION: &str = "io.containerd.image.name";

/// The image selected from an OCI layout: its manifest, config and layers.
#[derive(Debug, Clone)]
pub struct OciLayoutImage {
    /// The layout directory it was read from.
    pub layout: PathBuf,
    /// The digest of the image manifest (not of an index above it).
    pub manifest_digest: Digest,
    /// The manifest exactly as stored (its bytes are what the digest covers).
    pub manifest_bytes: Vec<u8>,
    /// The parsed manifest.
    pub manifest: Manifest,
    /// The digest of the image config.
    pub config_digest: Digest,
    /// The config exactly as stored.
    pub config: Vec<u8>,
    /// The layers' digests and sizes, base first.
    pub layers: Vec<(Digest, u64)>,
    /// Whether an index chose the manifest for the platform (which its config must then
    /// confirm), rather than the layout holding a single image.
    pub from_index: bool,
}

/// Reads the image `selector` (a ref-name tag, or a digest with or without a leading `@`)
/// for `platform` from the OCI layout at `path`.
pub fn read_oci_layout(
    path: &Path,
    selector: Option<&str>,
    platform: &Platform,
) -> Result<OciLayoutImage, LayoutError> {
    let layout = LayoutDir::open(path)?;
    let index = layout.index()?;
    let (chosen, mut from_index) = select(&layout, &index.manifests, selector, platform)?;
    let (manifest_digest, manifest_bytes, manifest, nested) =
        follow(&layout, &chosen, platform, 0)?;
    from_index |= nested;
    manifest
        .check_layers(&manifest_digest)
        .map_err(|source| LayoutError::Manifest {
            layout: path.to_path_buf(),
            source,
        })?;
    let parse = |d: &Descriptor| {
        d.parsed_digest()
            .map_err(|detail| LayoutError::BadDescriptor {
                layout: path.to_path_buf(),
                manifest: manifest_digest.clone(),
                detail,
            })
    };
    let config_digest = parse(&manifest.config)?;
    let config = layout.read_json_blob(&config_digest, Some(manifest.config.size))?;
    let mut layers = Vec::new();
    for layer in &manifest.layers {
        let digest = parse(layer)?;
        layout.check_blob(&digest, layer.size)?;
        layers.push((digest, layer.size));
    }
    Ok(OciLayoutImage {
        layout: path.to_path_buf(),
        manifest_digest,
        manifest_bytes,
        manifest,
        config_digest,
        config,
        layers,
        from_index,
    })
}

/// Picks one entry of `index.json` according to the selector; true when it was chosen by
/// platform among several.
fn select(
    layout: &LayoutDir,
    manifests: &[Descriptor],
    selector: Option<&str>,
    platform: &Platform,
) -> Result<(Descriptor, bool), LayoutError> {
    let candidates: Vec<Descriptor> = match selector {
        None => manifests.to_vec(),
        Some(text) => match selector_digest(text) {
            Some(digest) => {
                let listed: Vec<_> = manifests
                    .iter()
                    .filter(|d| d.digest == digest.to_string())
                    .cloned()
                    .collect();
                if listed.is_empty() {
                    // Any manifest or index in the layout may be named by digest, listed or not.
                    return Ok((unlisted(&digest), false));
                }
                listed
            }
            None => {
                let tag = text.strip_prefix(':').unwrap_or(text);
                manifests
                    .iter()
                    .filter(|d| {
                        let get = |key: &str| d.annotations.get(key).map(String::as_str);
                        get(REF_NAME_ANNOTATION) == Some(tag)
                            || get(CONTAINERD_NAME_ANNOTATION) == Some(tag)
                    })
                    .cloned()
                    .collect()
            }
        },
    };
    match candidates.as_slice() {
        [] => Err(LayoutError::NoMatch {
            layout: layout.root().to_path_buf(),
            selector: selector.unwrap_or("").to_owned(),
        }),
        [only] => Ok((only.clone(), false)),
        many => {
            let platforms: Vec<Option<Platform>> = many.iter().map(Descriptor::platform).collect();
            kiln_llb::platform::pick(platforms.iter().map(Option::as_ref), platform)
                .map(|i| (many[i].clone(), true))
                .ok_or_else(|| LayoutError::Ambiguous {
                    layout: layout.root().to_path_buf(),
                    count: many.len(),
                    platform: platform.to_string(),
                })
        }
    }
}

/// A selector that is a full SHA-2 digest; anything else is a tag.
fn selector_digest(text: &str) -> Option<Digest> {
    let digest = Digest::try_from(text.strip_prefix('@').unwrap_or(text)).ok()?;
    matches!(
        digest.algorithm(),
        DigestAlgorithm::Sha256 | DigestAlgorithm::Sha384 | DigestAlgorithm::Sha512
    )
    .then_some(digest)
}

/// A descriptor for a blob named by digest but not listed in `index.json`: what it is comes
/// from the blob itself.
fn unlisted(digest: &Digest) -> Descriptor {
    Descriptor {
        media_type: String::new(),
        digest: digest.to_string(),
        size: 0,
        platform: None,
        annotations: Default::default(),
        urls: Vec::new(),
    }
}

/// Follows `descriptor` through image indexes down to an image manifest; true when an index
/// chose it by platform.
fn follow(
    layout: &LayoutDir,
    descriptor: &Descriptor,
    platform: &Platform,
    depth: usize,
) -> Result<(Digest, Vec<u8>, Manifest, bool), LayoutError> {
    let digest = descriptor
        .parsed_digest()
        .map_err(|detail| LayoutError::BadIndexEntry {
            layout: layout.root().to_path_buf(),
            detail,
        })?;
    if depth > MAX_INDEX_DEPTH {
        return Err(LayoutError::TooDeep {
            layout: layout.root().to_path_buf(),
            digest,
        });
    }
    // An unlisted blob's size is not known: only its digest is checked.
    let size =
        (descriptor.size != 0 || !descriptor.media_type.is_empty()).then_some(descriptor.size);
    let bytes = layout.read_json_blob(&digest, size)?;
    let document = manifest::parse(&bytes, &digest).map_err(|source| LayoutError::Manifest {
        layout: layout.root().to_path_buf(),
        source,
    })?;
    match document {
        Document::Manifest(manifest) => Ok((digest, bytes, manifest, false)),
        Document::Index(index) => {
            let next = match index.manifests.as_slice() {
                // A single entry without a platform is the only choice there is.
                [only] if only.platform.is_none() => only.clone(),
                _ => index
                    .select(platform)
                    .map_err(|available| LayoutError::NoPlatform {
                        layout: layout.root().to_path_buf(),
                        digest: digest.clone(),
                        platform: platform.to_string(),
                        available,
                    })?
                    .clone(),
            };
            let (d, b, m, _) = follow(layout, &next, platform, depth + 1)?;
            Ok((d, b, m, true))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::export_oci_layout;
    use crate::export::test_image::{TestImage, build};
    use crate::store::test_dir::TestDir;
    use crate::store::{ContentStore, sha256_digest};
    use oci_spec::image::Arch;
    use serde_json::json;
    use std::fs;

    fn host_platform() -> Platform {
        Platform::host()
    }

    fn other_arch() -> &'static str {
        if Arch::default() == Arch::Amd64 {
            "arm64"
        } else {
            "amd64"
        }
    }

    fn write_blob(layout: &Path, bytes: &[u8]) -> Digest {
        let digest = sha256_digest(bytes).unwrap();
        fs::write(layout.join("blobs/sha256").join(digest.digest()), bytes).unwrap();
        digest
    }

    fn entry(store: &ContentStore, image: &TestImage, arch: &str) -> serde_json::Value {
        json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": image.manifest.to_string(),
            "size": store.size(&image.manifest).unwrap(),
            "platform": {"os": "linux", "architecture": arch},
        })
    }

    /// A layout whose index.json names one image index ("multi") over two platforms.
    fn multi_platform(dir: &TestDir) -> (PathBuf, TestImage, TestImage) {
        let store = ContentStore::open(&dir.path().join("store")).unwrap();
        let host = build(&store, &[&[("host", b"1")]], None);
        let other = build(&store, &[&[("other", b"2")]], Some(other_arch()));
        let layout = dir.path().join("layout");
        export_oci_layout(&store, &host.manifest, &layout, None).unwrap();
        export_oci_layout(&store, &other.manifest, &layout, None).unwrap();
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                entry(&store, &other, other_arch()),
                {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                 "digest": other.manifest.to_string(),
                 "size": store.size(&other.manifest).unwrap(),
                 "platform": {"os": "unknown", "architecture": "unknown"}},
                entry(&store, &host, &Arch::default().to_string()),
            ],
        });
        let index_bytes = serde_json::to_vec(&index).unwrap();
        let index_digest = write_blob(&layout, &index_bytes);
        let top = json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": index_digest.to_string(),
                "size": index_bytes.len(),
                "annotations": {REF_NAME_ANNOTATION: "multi"},
            }],
        });
        fs::write(layout.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
        (layout, host, other)
    }

    #[test]
    fn follows_index_to_host_platform() {
        let dir = TestDir::new("read-layout-index");
        let (layout, host, other) = multi_platform(&dir);
        let read = read_oci_layout(&layout, Some("multi"), &host_platform()).unwrap();
        assert_eq!(read.manifest_digest, host.manifest);
        assert_eq!(read.config_digest, host.config);
        // The only entry, so no selector is needed either.
        assert_eq!(
            read_oci_layout(&layout, None, &host_platform())
                .unwrap()
                .manifest_digest,
            host.manifest
        );
        // A manifest not listed in index.json can still be named by digest.
        let read =
            read_oci_layout(&layout, Some(other.manifest.as_ref()), &host_platform()).unwrap();
        assert_eq!(read.manifest_digest, other.manifest);
    }

    #[test]
    fn selection_errors() {
        let dir = TestDir::new("read-layout-select");
        let store = ContentStore::open(&dir.path().join("store")).unwrap();
        let one = build(&store, &[&[("a", b"1")]], Some(other_arch()));
        let two = build(&store, &[&[("a", b"2")]], Some(other_arch()));
        let layout = dir.path().join("layout");
        export_oci_layout(&store, &one.manifest, &layout, Some("one")).unwrap();
        export_oci_layout(&store, &two.manifest, &layout, Some("two")).unwrap();
        let err = read_oci_layout(&layout, None, &host_platform()).unwrap_err();
        assert!(
            matches!(err, LayoutError::Ambiguous { count: 2, .. }),
            "{err}"
        );
        let err = read_oci_layout(&layout, Some("three"), &host_platform()).unwrap_err();
        assert!(matches!(err, LayoutError::NoMatch { .. }), "{err}");
        assert!(err.to_string().contains("three"));
        let absent = sha256_digest(b"absent").unwrap();
        let err = read_oci_layout(&layout, Some(absent.as_ref()), &host_platform()).unwrap_err();
        assert!(matches!(err, LayoutError::BlobMissing { .. }), "{err}");
        let err = read_oci_layout(&dir.path().join("store"), None, &host_platform()).unwrap_err();
        assert!(matches!(err, LayoutError::NotALayout { .. }), "{err}");
    }

    #[test]
    fn index_without_host_platform() {
        let dir = TestDir::new("read-layout-noplatform");
        let (layout, host, _) = multi_platform(&dir);
        // Drop the host entry from the inner index.
        let top: serde_json::Value =
            serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
        let inner_digest =
            Digest::try_from(top["manifests"][0]["digest"].as_str().unwrap()).unwrap();
        let inner_path = layout.join("blobs/sha256").join(inner_digest.digest());
        let mut inner: serde_json::Value =
            serde_json::from_slice(&fs::read(&inner_path).unwrap()).unwrap();
        inner["manifests"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["digest"] != host.manifest.to_string());
        let bytes = serde_json::to_vec(&inner).unwrap();
        let digest = write_blob(&layout, &bytes);
        let top = json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest.to_string(), "size": bytes.len()}]});
        fs::write(layout.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
        let err = read_oci_layout(&layout, None, &host_platform()).unwrap_err();
        assert!(matches!(err, LayoutError::NoPlatform { .. }), "{err}");
        assert!(err.to_string().contains(digest.digest()));
    }

    #[test]
    fn corrupt_layouts_name_path_and_digest() {
        let dir = TestDir::new("read-layout-corrupt");
        let store = ContentStore::open(&dir.path().join("store")).unwrap();
        let image = build(&store, &[&[("a", b"1")]], None);
        let fresh = |name: &str| {
            let layout = dir.path().join(name);
            export_oci_layout(&store, &image.manifest, &layout, Some("t")).unwrap();
            layout
        };
        let blob =
            |layout: &Path, digest: &Digest| layout.join("blobs/sha256").join(digest.digest());

        // Missing layer.
        let layout = fresh("missing");
        fs::remove_file(blob(&layout, &image.layers[0].blob)).unwrap();
        let err = read_oci_layout(&layout, Some("t"), &host_platform()).unwrap_err();
        assert!(matches!(err, LayoutError::BlobMissing { .. }), "{err}");
        assert!(err.to_string().contains(image.layers[0].blob.digest()));
        assert!(err.to_string().contains("missing"));

        // Config edited in place (same size, other bytes): the copy is a hardlink, so break it.
        let layout = fresh("tampered");
        let path = blob(&layout, &image.config);
        let mut bytes = fs::read(&path).unwrap();
        fs::remove_file(&path).unwrap();
        let last = bytes.len() - 2;
        bytes[last] = b' ';
        fs::write(&path, &bytes).unwrap();
        let err = read_oci_layout(&layout, Some("t"), &host_platform()).unwrap_err();
        assert!(matches!(err, LayoutError::DigestMismatch { .. }), "{err}");
        assert!(err.to_string().contains(image.config.digest()));

        // Truncated layer: caught by size before anything is imported.
        let layout = fresh("truncated");
        let path = blob(&layout, &image.layers[0].blob);
        let bytes = fs::read(&path).unwrap();
        fs::remove_file(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let err = read_oci_layout(&layout, Some("t"), &host_platform()).unwrap_err();
        assert!(matches!(err, LayoutError::SizeMismatch { .. }), "{err}");

        // index.json that is not JSON.
        let layout = fresh("badjson");
        fs::write(layout.join("index.json"), b"[").unwrap();
        let err = read_oci_layout(&layout, None, &host_platform()).unwrap_err();
        assert!(matches!(err, LayoutError::BadJson { .. }), "{err}");
        assert!(err.to_string().contains("index.json"));

        // A manifest blob that is valid JSON for its digest but not a manifest.
        let layout = fresh("notmanifest");
        let junk = br#"{"hello":"world"}"#;
        let digest = write_blob(&layout, junk);
        let top = json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest.to_string(), "size": junk.len()}]});
        fs::write(layout.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
        let err = read_oci_layout(&layout, None, &host_platform()).unwrap_err();
        assert!(matches!(err, LayoutError::Manifest { .. }), "{err}");
        assert!(err.to_string().contains(digest.digest()));
    }
}
