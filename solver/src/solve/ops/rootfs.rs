//! What every layer step shares: the rootfs of a layer chain (extracted once, cached by chain
//! id), and a diff directory stored as a layer.

use std::path::{Path, PathBuf};

use oci_spec::image::Digest;

use crate::copy::PlannedLayer;
use crate::layer::{Compression, LayerError, LayerInfo, LayerOptions, write_layer};
use crate::solve::step_error::StepError;
use crate::solve::{Inner, LayerChain, LayerRecord, OpResult};
use crate::store::Ingest;

/// Writes a diff directory as a layer blob into the content store (verified, atomic).
pub(crate) fn store_layer(inner: &Inner, diff: &Path) -> Result<LayerRecord, StepError> {
    store_with(inner, |ingest, options| write_layer(diff, ingest, options))
}

/// Writes a planned layer (a COPY's) as a layer blob into the content store.
pub(crate) fn store_planned(inner: &Inner, plan: &PlannedLayer) -> Result<LayerRecord, StepError> {
    store_with(inner, |ingest, options| plan.write_layer(ingest, options))
}

/// Stores the layer `write` writes: a plain tar, as the build path never compresses (an
/// export or push does, once).
fn store_with(
    inner: &Inner,
    write: impl FnOnce(&mut Ingest, &LayerOptions) -> Result<LayerInfo, LayerError>,
) -> Result<LayerRecord, StepError> {
    // The layer writer hashes every byte it hands the ingest: its digest is the commit's.
    let mut ingest = inner.store.content().ingest()?.prehashed();
    let options = LayerOptions {
        compression: Compression::None,
        source_date_epoch: inner.opts.source_date_epoch,
    };
    let info = write(&mut ingest, &options)?;
    let blob = ingest.commit(Some(&info.digest))?;
    Ok(LayerRecord {
        diff_id: info.diff_id,
        digest: blob.digest,
        size: blob.size,
        media_type: info.media_type,
        created: Some(kiln_llb::time::rfc3339(kiln_llb::time::now())),
    })
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
