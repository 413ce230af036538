//! What every layer step shares: the rootfs of a layer chain (extracted once, cached by chain
//! id), and a diff directory stored as a layer.

use std::io::Write;
use std::path::{Path, PathBuf};

use kiln_llb::OpId;
use oci_spec::image::Digest;

use crate::cache::compressed::remember;
use crate::copy::PlannedLayer;
use crate::layer::{Alongside, Compression, LayerError, LayerInfo, LayerOptions, write_layer};
use crate::solve::step_error::StepError;
use crate::solve::{Inner, LayerChain, LayerRecord, OpResult};

/// Writes a diff directory as `id`'s layer blob into the content store (verified, atomic).
pub(crate) fn store_layer(inner: &Inner, id: OpId, diff: &Path) -> Result<LayerRecord, StepError> {
    store_with(inner, id, |out, options| write_layer(diff, out, options))
}

/// Writes a planned layer (a COPY's) as `id`'s layer blob into the content store.
pub(crate) fn store_planned(
    inner: &Inner,
    id: OpId,
    plan: &PlannedLayer,
) -> Result<LayerRecord, StepError> {
    store_with(inner, id, |out, options| plan.write_layer(out, options))
}

/// Stores the layer `write` writes: a plain tar, as the build path never compresses — except
/// for a layer the build's outputs will export compressed ([`Inner::edge_for`]), which is
/// compressed in the same pass, on a thread of its own, and remembered for the export.
fn store_with(
    inner: &Inner,
    id: OpId,
    write: impl FnOnce(&mut dyn Write, &LayerOptions) -> Result<LayerInfo, LayerError>,
) -> Result<LayerRecord, StepError> {
    // The layer writer hashes every byte it hands the ingest: its digest is the commit's.
    let mut ingest = inner.store.content().ingest()?.prehashed();
    let options = LayerOptions {
        compression: Compression::None,
        source_date_epoch: inner.opts.source_date_epoch,
    };
    // No second ingest or no thread: the export compresses instead, as without an edge.
    let edge = inner.edge_for(id).and_then(|target| {
        let side = inner.store.content().ingest().ok()?;
        Some((
            target,
            Alongside::new(&mut ingest, target.kind, target.level, side).ok()?,
        ))
    });
    let (info, compressed) = match edge {
        Some((target, mut writer)) => {
            let info = write(&mut writer, &options)?;
            let (_, compressed) = writer
                .finish()
                .map_err(|source| LayerError::Write { source })?;
            (info, compressed.map(|c| (target, c)))
        }
        None => (write(&mut ingest, &options)?, None),
    };
    let blob = ingest.commit(Some(&info.digest))?;
    let layer = LayerRecord {
        diff_id: info.diff_id,
        digest: blob.digest,
        size: blob.size,
        media_type: info.media_type,
        created: Some(kiln_llb::time::rfc3339(kiln_llb::time::now())),
    };
    if let Some((target, compressed)) = compressed
        && let Ok(blob) = compressed.commit(None)
    {
        remember(&inner.store, &layer, target, blob);
    }
    Ok(layer)
}

pub(crate) fn empty_dir(inner: &Inner) -> PathBuf {
    let p = inner.store.root().join("tmp/empty");
    let _ = std::fs::create_dir_all(&p);
    p
}

/// The merged rootfs of a layer chain (extracted once, cached by chain id); `None` for an
/// empty chain.
pub(crate) fn rootfs_of(inner: &Inner, r: &OpResult) -> Result<Option<PathBuf>, StepError> {
    let layers = r.layers();
    if layers.is_empty() {
        return Ok(None);
    }
    inner.ensure_local(layers)?;
    let chain = LayerChain::new(inner.store.content(), layers);
    let open = |d: &Digest| chain.open(d);
    inner
        .snapshots
        .rootfs(&chain.diff_ids, &open)
        .map(Some)
        .map_err(StepError::from)
}
