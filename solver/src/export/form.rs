//! The form an image is exported in — buildx's image-exporter keys: layer compression,
//! OCI or Docker media types, annotations — and the rewrite of a committed image into it.
//!
//! A rewrite makes a new manifest (and converted layer blobs) in the content store; the
//! committed image is untouched. A converted blob is remembered in the cache index under its
//! source digest and target, so exporting again reuses it instead of compressing again.

use std::collections::{BTreeMap, HashSet};

use oci_spec::image::Digest;
use serde_json::{Value, json};

use super::error::ExportError;
use crate::cache::LayerRecord;
pub use crate::cache::compressed::LayerCompression;
use crate::cache::compressed::compress_each;
use crate::layer::Compression;
use crate::store::Store;

/// How the image is written, buildx's image-exporter keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageForm {
    /// `compression=` with `compression-level=`: layers this build made are written so.
    pub compression: Option<LayerCompression>,
    /// `force-compression=true`: base layers too.
    pub force_compression: bool,
    /// `oci-mediatypes=false`: Docker schema 2 media types.
    pub oci_mediatypes: Option<bool>,
    /// `annotation.*` and friends, and `--annotation`.
    pub annotations: Annotations,
}

impl ImageForm {
    /// True when the image is written as committed.
    pub fn is_plain(&self) -> bool {
        self.compression.is_none()
            && self.oci_mediatypes != Some(false)
            && self.annotations.manifest.is_empty()
    }

    /// This form for an image leaving the store (an OCI or docker archive, a push): the
    /// layers kiln keeps as plain tars are compressed, gzip unless a compression is asked.
    pub fn at_the_edge(&self) -> ImageForm {
        ImageForm {
            compression: Some(self.compression.unwrap_or(LayerCompression::EDGE)),
            ..self.clone()
        }
    }
}

/// Annotations by where they go (buildx's `annotation-<where>.KEY`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotations {
    /// On the manifest (`annotation.KEY`, `annotation-manifest.KEY`, `--annotation KEY=V`).
    pub manifest: BTreeMap<String, String>,
    /// On the manifest's descriptor in an index (`annotation-manifest-descriptor.KEY`).
    pub manifest_descriptor: BTreeMap<String, String>,
    /// On an image index (`annotation-index.KEY`) — refused: a single-platform image has none.
    pub index: BTreeMap<String, String>,
}

/// An annotation kiln cannot take: the key (or the whole flag), and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("annotation {key:?}: {reason}")]
pub struct AnnotationError {
    /// The key, or the `--annotation` value as given.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Annotations {
    /// Adds one `--annotation [TYPE:]KEY=VALUE` (TYPE `manifest`, `manifest-descriptor`,
    /// `index`, `index-descriptor`; `manifest` by default), as buildx reads it.
    pub fn add_flag(&mut self, flag: &str) -> Result<(), AnnotationError> {
        let Some((key, value)) = flag.split_once('=') else {
            return Err(AnnotationError {
                key: flag.to_owned(),
                reason: "expected --annotation [TYPE:]KEY=VALUE".into(),
            });
        };
        let (kind, key) = match key.split_once(':') {
            Some((kind, key))
                if [
                    "manifest",
                    "manifest-descriptor",
                    "index",
                    "index-descriptor",
                ]
                .contains(&kind) =>
            {
                (kind, key)
            }
            _ => ("manifest", key),
        };
        self.add(kind, key, value)
    }

    /// Adds `key=value` to the annotations of `kind` (as the flag's and `-o`'s TYPE names it).
    pub fn add(&mut self, kind: &str, key: &str, value: &str) -> Result<(), AnnotationError> {
        let err = |reason: &str| AnnotationError {
            key: key.to_owned(),
            reason: reason.to_owned(),
        };
        if key.is_empty() {
            return Err(err("empty annotation key"));
        }
        if key.contains('[') {
            return Err(err(
                "per-platform annotations ([os/arch]) need a multi-platform build",
            ));
        }
        let map = match kind {
            "manifest" => &mut self.manifest,
            "manifest-descriptor" => &mut self.manifest_descriptor,
            // BuildKit: "index annotations not supported for single platform export".
            "index" | "index-descriptor" => &mut self.index,
            other => return Err(err(&format!("unknown annotation type {other:?}"))),
        };
        map.insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    /// Merges `other` in (its values win).
    pub fn extend(&mut self, other: &Annotations) {
        self.manifest.extend(other.manifest.clone());
        self.manifest_descriptor
            .extend(other.manifest_descriptor.clone());
        self.index.extend(other.index.clone());
    }
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The compression a layer media type names (`None` for a foreign or unknown layer, which
/// is passed on as it is).
fn compression_of(media_type: &str) -> Option<Compression> {
    if media_type.contains("foreign") || media_type.contains("nondistributable") {
        None
    } else if media_type.ends_with("gzip") {
        Some(Compression::Gzip)
    } else if media_type.ends_with("zstd") {
        Some(Compression::Zstd)
    } else if media_type.ends_with(".tar") {
        Some(Compression::None)
    } else {
        None
    }
}

/// The layer media type for `compression` in OCI or Docker terms.
fn layer_media_type(compression: Compression, oci: bool) -> Option<&'static str> {
    match (compression, oci) {
        (c, true) => Some(c.media_type()),
        (Compression::Gzip, false) => Some(DOCKER_LAYER_GZIP),
        (Compression::None, false) => Some(DOCKER_LAYER),
        (Compression::Zstd, false) => None,
    }
}

/// Writes the image `manifest` (or each image of a multi-platform index, and a new index) in
/// `form` and returns the new digest (the same digest when the form changes nothing). Layers this build made (`own`, by blob digest),
/// plain-tar layers, and every layer with `force_compression` are converted to the asked
/// compression (several at once).
pub fn rewrite_image(
    store: &Store,
    manifest: &Digest,
    form: &ImageForm,
    own: &HashSet<Digest>,
) -> Result<Digest, ExportError> {
    if form.is_plain() {
        return Ok(manifest.clone());
    }
    let bad = |detail: String| ExportError::Rewrite {
        digest: manifest.clone(),
        detail,
    };
    let content = store.content();
    let top = content.read_blob(manifest)?;
    if let Ok(crate::image::manifest::Document::Index(index)) =
        crate::image::manifest::parse(&top, manifest)
    {
        // A multi-platform build's index: each platform's image in the form, indexed anew.
        let mut children = Vec::with_capacity(index.manifests.len());
        for entry in &index.manifests {
            let child = entry.parsed_digest().map_err(|e| bad(e.to_string()))?;
            children.push(rewrite_image(store, &child, form, own)?);
        }
        return super::index::write_index(content, &children, form);
    }
    let mut m: Value = serde_json::from_slice(&top).map_err(|e| bad(e.to_string()))?;
    let config_digest = digest_at(&m["config"]).map_err(|e| bad(format!("descriptor {e}")))?;
    let config: Value = serde_json::from_slice(&content.read_blob(&config_digest)?)
        .map_err(|e| bad(format!("config {config_digest}: {e}")))?;
    let diff_ids: Vec<Digest> = config["rootfs"]["diff_ids"]
        .as_array()
        .map(|ids| {
            ids.iter()
                .filter_map(|d| d.as_str().and_then(|d| Digest::try_from(d).ok()))
                .collect()
        })
        .unwrap_or_default();
    let oci = form.oci_mediatypes.unwrap_or(true);
    let layers = m["layers"].as_array().cloned().unwrap_or_default();
    // Which layers change compression, as records for the converter.
    let mut records = Vec::with_capacity(layers.len());
    for (i, layer) in layers.iter().enumerate() {
        let digest = digest_at(layer).map_err(|e| bad(format!("descriptor {e}")))?;
        let media_type = layer["mediaType"].as_str().unwrap_or_default().to_owned();
        let current = compression_of(&media_type);
        let wanted = form.compression.filter(|t| {
            current.is_some_and(|c| c != t.kind)
                && (form.force_compression
                    || own.contains(&digest)
                    || current == Some(Compression::None))
        });
        let diff_id = match wanted {
            Some(_) => diff_ids
                .get(i)
                .cloned()
                .ok_or_else(|| bad(format!("no diff id for layer {i} ({digest})")))?,
            None => digest.clone(),
        };
        records.push((
            wanted,
            LayerRecord {
                diff_id,
                digest,
                size: layer["size"].as_u64().unwrap_or_default(),
                media_type,
                created: None,
            },
        ));
    }
    let converted = convert_all(store, &records)?;
    let mut out_layers = Vec::with_capacity(layers.len());
    for ((layer, (_, record)), converted) in layers.into_iter().zip(&records).zip(converted) {
        let Some(mut compression) = compression_of(&record.media_type) else {
            out_layers.push(layer);
            continue;
        };
        let mut entry = layer.clone();
        if let Some((target, done)) = converted {
            entry["digest"] = json!(done.digest);
            entry["size"] = json!(done.size);
            compression = target;
        }
        let Some(mt) = layer_media_type(compression, oci) else {
            return Err(bad(format!(
                "layer {} is zstd, which has no Docker media type: drop \
                 oci-mediatypes=false or add compression=gzip,force-compression=true",
                record.digest
            )));
        };
        entry["mediaType"] = json!(mt);
        out_layers.push(entry);
    }
    let unchanged = m["layers"]
        .as_array()
        .map_or(out_layers.is_empty(), |before| *before == out_layers);
    if unchanged && form.oci_mediatypes != Some(false) && form.annotations.manifest.is_empty() {
        // Nothing changed: the committed image is already in this form.
        return Ok(manifest.clone());
    }
    m["layers"] = Value::Array(out_layers);
    m["mediaType"] = json!(if oci { OCI_MANIFEST } else { DOCKER_MANIFEST });
    m["config"]["mediaType"] = json!(if oci { OCI_CONFIG } else { DOCKER_CONFIG });
    if !form.annotations.manifest.is_empty() {
        let mut all: BTreeMap<String, Value> = m["annotations"]
            .as_object()
            .map(|a| a.clone().into_iter().collect())
            .unwrap_or_default();
        for (k, v) in &form.annotations.manifest {
            all.insert(k.clone(), json!(v));
        }
        m["annotations"] = json!(all);
    }
    let bytes = serde_json::to_vec(&m).map_err(|e| bad(e.to_string()))?;
    Ok(content.put_bytes(&bytes)?.digest)
}

fn digest_at(descriptor: &Value) -> Result<Digest, crate::image::manifest::BadDigest> {
    let d = descriptor["digest"].as_str().unwrap_or_default();
    Digest::try_from(d).map_err(|e| crate::image::manifest::BadDigest {
        written: d.to_owned(),
        reason: e.to_string(),
    })
}

/// Converts each layer that has a target (see [`compress_each`]); `None` for the others.
fn convert_all(
    store: &Store,
    records: &[(Option<LayerCompression>, LayerRecord)],
) -> Result<Vec<Option<(Compression, LayerRecord)>>, ExportError> {
    let jobs: Vec<_> = records
        .iter()
        .filter_map(|(target, record)| Some((record, (*target)?)))
        .collect();
    let mut converted = compress_each(store, &jobs)?.into_iter();
    Ok(records
        .iter()
        .map(|(target, _)| Some((target.as_ref()?.kind, converted.next()?)))
        .collect())
}
