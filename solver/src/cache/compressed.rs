//! Layers compressed at the edge: the build keeps every layer it makes as a plain tar
//! (addressed by its diff id), and a compressed blob is made only when an export, a push or a
//! cache export needs one — once per (layer, compression, level), remembered in the cache
//! index under that triple, and reused by every later export. The parallel gzip is
//! byte-identical for any thread count, so the compressed digest depends on the layer alone.

use oci_spec::image::Digest;

use super::{CacheEntry, LayerRecord};
use crate::layer::{Compression, LayerError, compress_tar, recompress};
use crate::store::{ContentError, Store};

/// A compression and its level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerCompression {
    /// The algorithm.
    pub kind: Compression,
    /// `compression-level=` (gzip 0–9, zstd 1–22), else the algorithm's default.
    pub level: Option<i32>,
}

impl LayerCompression {
    /// What leaves the store when nothing else is asked: gzip at its default level, which
    /// every registry and runtime reads (BuildKit's default too).
    pub const EDGE: LayerCompression = LayerCompression {
        kind: Compression::Gzip,
        level: None,
    };
}

/// Why a layer could not be compressed.
#[derive(Debug, thiserror::Error)]
pub enum CompressError {
    /// Reading the layer or storing its compressed blob failed.
    #[error("layer {digest}: {source}")]
    Store {
        /// The layer's blob.
        digest: Digest,
        /// Why (boxed: the error stays small).
        #[source]
        source: Box<ContentError>,
    },
    /// The layer could not be recompressed (or is not its diff id).
    #[error("layer {digest}: converting the layer: {source}")]
    Convert {
        /// The layer's blob.
        digest: Digest,
        /// Why (boxed: the error stays small).
        #[source]
        source: Box<LayerError>,
    },
}

/// Whether a layer of `media_type` is a plain tar (which leaves the store compressed).
pub fn is_uncompressed(media_type: &str) -> bool {
    media_type.ends_with(".tar") && !media_type.contains("foreign")
}

/// `layer` as a blob compressed as `target`: remembered from an earlier conversion, or made
/// now (checked against its diff id) and remembered.
pub fn compressed(
    store: &Store,
    layer: &LayerRecord,
    target: LayerCompression,
) -> Result<LayerRecord, CompressError> {
    let digest = &layer.digest;
    let key = convert_key(digest, target);
    if let Some(entry) = super::index::get(store, &key) {
        return Ok(entry.layer);
    }
    let stored = |source| CompressError::Store {
        digest: digest.clone(),
        source: Box::new(source),
    };
    let blob = store.content().open_blob(digest).map_err(stored)?;
    let ingest = store.content().ingest().map_err(stored)?;
    let converting = |source| CompressError::Convert {
        digest: digest.clone(),
        source: Box::new(source),
    };
    // A plain tar whose blob digest is its diff id was verified when it was stored: it is
    // compressed without hashing it again.
    let ingest = if is_uncompressed(&layer.media_type) && layer.digest == layer.diff_id {
        compress_tar(blob, target.kind, target.level, ingest).map_err(converting)?
    } else {
        recompress(blob, &layer.diff_id, target.kind, target.level, ingest).map_err(converting)?
    };
    let info = ingest.commit(None).map_err(stored)?;
    Ok(remember(store, layer, target, info))
}

/// The index key of `digest`'s blob compressed as `target`.
fn convert_key(digest: &Digest, target: LayerCompression) -> String {
    format!(
        "kiln.convert.v1:{digest}:{}:{}",
        target.kind.media_type(),
        target
            .level
            .map_or_else(|| "default".to_owned(), |l| l.to_string())
    )
}

/// Records that `compressed` (a stored blob) is `layer` compressed as `target`, for every
/// later export and push; returns its record.
pub(crate) fn remember(
    store: &Store,
    layer: &LayerRecord,
    target: LayerCompression,
    compressed: crate::store::BlobInfo,
) -> LayerRecord {
    let converted = LayerRecord {
        diff_id: layer.diff_id.clone(),
        digest: compressed.digest,
        size: compressed.size,
        media_type: target.kind.media_type().to_owned(),
        created: layer.created.clone(),
    };
    let entry = CacheEntry {
        layer: converted.clone(),
        result_key: None,
    };
    // Remembering is an optimisation: a failure costs the next export a conversion.
    let _ = super::index::put(store, &convert_key(&layer.digest, target), &entry);
    converted
}

/// [`compressed`] for each (layer, target) of `jobs`, in order: each distinct pair once, at
/// most as many at once as there are cores.
pub fn compress_each(
    store: &Store,
    jobs: &[(&LayerRecord, LayerCompression)],
) -> Result<Vec<LayerRecord>, CompressError> {
    let mut distinct: Vec<(&LayerRecord, LayerCompression)> = Vec::new();
    for &(layer, target) in jobs {
        if !distinct
            .iter()
            .any(|(l, t)| l.digest == layer.digest && *t == target)
        {
            distinct.push((layer, target));
        }
    }
    let converted = crate::parallel::try_map(
        &distinct,
        crate::parallel::threads(usize::MAX),
        |&(layer, target)| compressed(store, layer, target),
        |&(layer, _)| CompressError::Convert {
            digest: layer.digest.clone(),
            source: Box::new(LayerError::Write {
                source: std::io::Error::other("the compressing thread panicked"),
            }),
        },
    )?;
    let done: Vec<((Digest, LayerCompression), LayerRecord)> = distinct
        .iter()
        .map(|&(layer, target)| (layer.digest.clone(), target))
        .zip(converted)
        .collect();
    Ok(jobs
        .iter()
        .filter_map(|(layer, target)| {
            done.iter()
                .find(|((d, t), _)| *d == layer.digest && t == target)
                .map(|(_, converted)| converted.clone())
        })
        .collect())
}

/// `layers` with each plain tar among them compressed as `target` (see [`compress_each`]),
/// the others as they are.
pub fn compress_plain(
    store: &Store,
    layers: &[LayerRecord],
    target: LayerCompression,
) -> Result<Vec<LayerRecord>, CompressError> {
    let jobs: Vec<_> = layers
        .iter()
        .filter(|l| is_uncompressed(&l.media_type))
        .map(|l| (l, target))
        .collect();
    let mut converted = compress_each(store, &jobs)?.into_iter();
    Ok(layers
        .iter()
        .map(|l| {
            if is_uncompressed(&l.media_type) {
                converted.next().unwrap_or_else(|| l.clone())
            } else {
                l.clone()
            }
        })
        .collect())
}

/// `layer` as the plain tar the store keeps for a layer a build made: itself when it is one;
/// else the store's blob named by its diff id, or one made now by decompressing its blob
/// (verified against the diff id as it is stored). A layer an imported cache answered with
/// is compressed; made plain, the image committed from it is the image the store that
/// exported the cache committed.
pub fn plain(store: &Store, layer: &LayerRecord) -> Result<LayerRecord, CompressError> {
    if is_uncompressed(&layer.media_type) {
        return Ok(layer.clone());
    }
    let content = store.content();
    let stored = |source| CompressError::Store {
        digest: layer.digest.clone(),
        source: Box::new(source),
    };
    let size = if content.contains(&layer.diff_id) {
        content.size(&layer.diff_id).map_err(stored)?
    } else {
        let blob = content.open_blob(&layer.digest).map_err(stored)?;
        let mut tar =
            crate::layer::decompress_reader(std::io::BufReader::with_capacity(1 << 20, blob))
                .map_err(|source| CompressError::Convert {
                    digest: layer.digest.clone(),
                    source: Box::new(source),
                })?;
        let mut ingest = content.ingest().map_err(stored)?;
        std::io::copy(&mut tar, &mut ingest).map_err(|source| CompressError::Convert {
            digest: layer.digest.clone(),
            source: Box::new(LayerError::Input { source }),
        })?;
        ingest.commit(Some(&layer.diff_id)).map_err(stored)?.size
    };
    Ok(LayerRecord {
        diff_id: layer.diff_id.clone(),
        digest: layer.diff_id.clone(),
        size,
        media_type: Compression::None.media_type().to_owned(),
        created: layer.created.clone(),
    })
}

/// [`plain`] for the layers a build made (those with a `created` time); base layers stay as
/// they were pulled.
pub fn plain_own_layers(
    store: &Store,
    layers: &[LayerRecord],
) -> Result<Vec<LayerRecord>, CompressError> {
    layers
        .iter()
        .map(|l| match l.created {
            Some(_) => plain(store, l),
            None => Ok(l.clone()),
        })
        .collect()
}
