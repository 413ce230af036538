//! Manifests and indexes as registries and layouts serve them: OCI and Docker schema 2 (the
//! same JSON shape), read tolerantly (`null` or absent optional fields, unknown fields
//! ignored), told apart by media type or by shape, with schema 1 and layers kiln cannot
//! fetch (foreign, non-distributable, encrypted) refused by name.

use std::collections::BTreeMap;

use kiln_llb::Platform;
use oci_spec::image::Digest;
use serde::{Deserialize, Deserializer};

/// Manifest media types kiln reads and writes.
pub mod media {
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// Docker schema 2 manifest.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker manifest list.
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker schema 1 (unsigned and signed), which kiln refuses.
    pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
    /// Docker schema 1, signed.
    pub const DOCKER_SCHEMA1_SIGNED: &str =
        "application/vnd.docker.distribution.manifest.v1+prettyjws";
    /// Every manifest kind a pull accepts.
    pub const ACCEPTED: &[&str] = &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];
}

/// Why a manifest or index cannot be used; the caller adds the reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Docker's schema 1, retired by registries and runtimes alike.
    #[error(
        "manifest {digest} is Docker schema 1, which kiln does not read (push the image again with a current docker or skopeo to convert it to schema 2)"
    )]
    Schema1 {
        /// The manifest.
        digest: String,
    },
    /// Not JSON, or not the shape of a manifest or index.
    #[error("manifest {digest} is not a valid image manifest or index: {detail}")]
    Invalid {
        /// The manifest.
        digest: String,
        /// What is wrong.
        detail: String,
    },
    /// A layer whose blob kiln cannot fetch or read.
    #[error("manifest {manifest}: layer {layer} ({media_type}) is {reason}")]
    UnsupportedLayer {
        /// The manifest.
        manifest: String,
        /// The layer's digest.
        layer: String,
        /// Its media type.
        media_type: String,
        /// Why it is refused.
        reason: &'static str,
    },
}

/// A content descriptor (OCI and Docker alike).
#[derive(Debug, Clone, Deserialize)]
pub struct Descriptor {
    /// Its media type (empty when the writer left it out).
    #[serde(rename = "mediaType", default, deserialize_with = "null_default")]
    pub media_type: String,
    /// Its digest, as written.
    pub digest: String,
    /// Its size in bytes.
    #[serde(default, deserialize_with = "null_default")]
    pub size: u64,
    /// For an index entry, the platform it is for.
    #[serde(default)]
    pub platform: Option<DescriptorPlatform>,
    /// Annotations.
    #[serde(default, deserialize_with = "null_default")]
    pub annotations: BTreeMap<String, String>,
    /// Where a foreign layer lives.
    #[serde(default, deserialize_with = "null_default")]
    pub urls: Vec<String>,
}

/// An index entry's platform.
#[derive(Debug, Clone, Deserialize)]
pub struct DescriptorPlatform {
    /// `linux`.
    #[serde(default, deserialize_with = "null_default")]
    pub os: String,
    /// `amd64`, …
    #[serde(default, deserialize_with = "null_default")]
    pub architecture: String,
    /// `v8`, …
    #[serde(default, deserialize_with = "null_default")]
    pub variant: String,
}

impl Descriptor {
    /// The digest, parsed.
    pub fn parsed_digest(&self) -> Result<Digest, BadDigest> {
        self.digest.parse::<Digest>().map_err(|e| BadDigest {
            written: self.digest.clone(),
            reason: e.to_string(),
        })
    }

    /// The platform of an index entry, normalized.
    pub fn platform(&self) -> Option<Platform> {
        self.platform
            .as_ref()
            .map(|p| Platform::new(&p.os, &p.architecture, &p.variant))
    }

    /// Whether this index entry is itself an index (nested indexes).
    pub fn is_index(&self) -> bool {
        self.media_type == media::OCI_INDEX || self.media_type == media::DOCKER_LIST
    }
}

/// An image manifest.
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    /// Its media type, if it states one.
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers, base first.
    #[serde(default, deserialize_with = "null_default")]
    pub layers: Vec<Descriptor>,
}

impl Manifest {
    /// Every blob the manifest references, config first, parsed.
    pub fn blobs(&self) -> Result<Vec<Digest>, BadDigest> {
        std::iter::once(&self.config)
            .chain(&self.layers)
            .map(Descriptor::parsed_digest)
            .collect()
    }

    /// Refuses layers kiln cannot fetch or read, naming the first one.
    pub fn check_layers(&self, manifest: &Digest) -> Result<(), ManifestError> {
        for layer in &self.layers {
            if let Some(reason) = layer_refusal(&layer.media_type) {
                return Err(ManifestError::UnsupportedLayer {
                    manifest: manifest.to_string(),
                    layer: layer.digest.clone(),
                    media_type: layer.media_type.clone(),
                    reason,
                });
            }
        }
        Ok(())
    }
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Debug, Clone, Deserialize)]
pub struct Index {
    /// Its media type, if it states one.
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    /// The entries.
    #[serde(default, deserialize_with = "null_default")]
    pub manifests: Vec<Descriptor>,
}

impl Index {
    /// The entry for `want` (see [`kiln_llb::platform::pick`]), or the platforms it lists.
    pub fn select(&self, want: &Platform) -> Result<&Descriptor, PlatformList> {
        let platforms: Vec<Option<Platform>> =
            self.manifests.iter().map(Descriptor::platform).collect();
        kiln_llb::platform::pick(platforms.iter().map(Option::as_ref), want)
            .map(|i| &self.manifests[i])
            .ok_or_else(|| {
                PlatformList(
                    platforms
                        .into_iter()
                        .flatten()
                        .filter(|p| p.os != "unknown")
                        .collect(),
                )
            })
    }
}

/// A descriptor's digest that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("digest {written:?}: {reason}")]
pub struct BadDigest {
    /// The digest as written.
    pub written: String,
    /// Why it is not one.
    pub reason: String,
}

/// The platforms an index has images for (attestations left out), when none is the one asked
/// for; shown as a list, or `none`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformList(pub Vec<Platform>);

impl std::fmt::Display for PlatformList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// A manifest or an index.
#[derive(Debug, Clone)]
pub enum Document {
    /// A single-platform image.
    Manifest(Manifest),
    /// A list of images, one per platform (and attestations).
    Index(Index),
}

/// What a manifest blob says about its kind.
#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "schemaVersion", default)]
    schema_version: Option<serde_json::Value>,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<serde_json::Value>,
    #[serde(rename = "fsLayers", default)]
    fs_layers: Option<serde_json::Value>,
}

/// Parses the manifest or index `bytes` whose digest is `digest`.
pub fn parse(bytes: &[u8], digest: &Digest) -> Result<Document, ManifestError> {
    let invalid = |detail: String| ManifestError::Invalid {
        digest: digest.to_string(),
        detail,
    };
    let probe: Probe = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    let media_type = probe.media_type.as_deref().unwrap_or("");
    if media_type == media::DOCKER_SCHEMA1
        || media_type == media::DOCKER_SCHEMA1_SIGNED
        || probe.schema_version.as_ref().and_then(|v| v.as_i64()) == Some(1)
        || probe.fs_layers.is_some()
    {
        return Err(ManifestError::Schema1 {
            digest: digest.to_string(),
        });
    }
    let is_index = media_type == media::OCI_INDEX
        || media_type == media::DOCKER_LIST
        || (media_type.is_empty() && probe.manifests.is_some() && probe.config.is_none());
    if is_index {
        return serde_json::from_slice(bytes)
            .map(Document::Index)
            .map_err(|e| invalid(e.to_string()));
    }
    if !media_type.is_empty()
        && media_type != media::OCI_MANIFEST
        && media_type != media::DOCKER_MANIFEST
    {
        return Err(invalid(format!(
            "media type {media_type} is not an image manifest"
        )));
    }
    serde_json::from_slice(bytes)
        .map(Document::Manifest)
        .map_err(|e| invalid(e.to_string()))
}

/// Why a layer of this media type cannot be used, if it cannot.
fn layer_refusal(media_type: &str) -> Option<&'static str> {
    match media_type {
        ""
        | "application/vnd.oci.image.layer.v1.tar"
        | "application/vnd.oci.image.layer.v1.tar+gzip"
        | "application/vnd.oci.image.layer.v1.tar+zstd"
        | "application/vnd.docker.image.rootfs.diff.tar"
        | "application/vnd.docker.image.rootfs.diff.tar.gzip"
        | "application/vnd.docker.image.rootfs.diff.tar.zstd" => None,
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
        | "application/vnd.docker.image.rootfs.foreign.diff.tar" => Some(
            "a foreign layer, whose blob lives outside the registry; kiln does not fetch foreign layers",
        ),
        t if t.starts_with("application/vnd.oci.image.layer.nondistributable.") => Some(
            "a non-distributable layer, whose blob lives outside the registry; kiln does not fetch it",
        ),
        t if t.contains("+encrypted") => Some("encrypted, and kiln has no key to decrypt it"),
        _ => Some("not a layer kiln knows how to read"),
    }
}

/// The OCI name of a layer media type: a base pulled as Docker schema 2 keeps its blobs, but
/// the OCI manifests kiln writes on top of it name them the OCI way (the bytes are the same).
pub fn oci_layer_media_type(media_type: &str) -> String {
    match media_type {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.v1.tar+gzip".to_owned()
        }
        "application/vnd.docker.image.rootfs.diff.tar" | "" => {
            "application/vnd.oci.image.layer.v1.tar".to_owned()
        }
        "application/vnd.docker.image.rootfs.diff.tar.zstd" => {
            "application/vnd.oci.image.layer.v1.tar+zstd".to_owned()
        }
        other => other.to_owned(),
    }
}

fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest() -> Digest {
        crate::store::sha256_digest(b"m").unwrap()
    }

    #[test]
    fn kinds_are_told_apart() {
        let index = r#"{"schemaVersion":2,"manifests":[{"digest":"sha256:aa","size":1,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:bb","size":2,"platform":{"os":"unknown","architecture":"unknown"},"annotations":{"vnd.docker.reference.type":"attestation-manifest"}}],"annotations":null}"#;
        let Document::Index(i) = parse(index.as_bytes(), &digest()).unwrap() else {
            panic!("not an index")
        };
        assert_eq!(
            i.select(&Platform::parse("linux/arm64").unwrap())
                .unwrap()
                .digest,
            "sha256:aa"
        );
        let err = i
            .select(&Platform::parse("linux/amd64").unwrap())
            .unwrap_err();
        assert_eq!(err.to_string(), "linux/arm64");

        let docker = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:cc","size":3},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"sha256:dd","size":4,"urls":null}]}"#;
        let Document::Manifest(m) = parse(docker.as_bytes(), &digest()).unwrap() else {
            panic!("not a manifest")
        };
        assert_eq!(m.layers.len(), 1);
        m.check_layers(&digest()).unwrap();
    }

    #[test]
    fn schema1_and_foreign_layers_are_refused_by_name() {
        let v1 = r#"{"schemaVersion":1,"name":"x","tag":"1","fsLayers":[{"blobSum":"sha256:aa"}]}"#;
        let err = parse(v1.as_bytes(), &digest()).unwrap_err();
        assert!(matches!(err, ManifestError::Schema1 { .. }));
        assert!(err.to_string().contains(digest().as_ref()), "{err}");

        let foreign = r#"{"schemaVersion":2,"config":{"digest":"sha256:cc","size":3},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"sha256:ff","size":4,"urls":["https://example.invalid/l"]}]}"#;
        let Document::Manifest(m) = parse(foreign.as_bytes(), &digest()).unwrap() else {
            panic!("not a manifest")
        };
        let err = m.check_layers(&digest()).unwrap_err().to_string();
        assert!(
            err.contains("sha256:ff") && err.contains("foreign"),
            "{err}"
        );

        let other =
            r#"{"mediaType":"application/vnd.example+json","config":{"digest":"sha256:cc"}}"#;
        assert!(parse(other.as_bytes(), &digest()).is_err());
    }
}
