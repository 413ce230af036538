//! Running a file op: materialize what it reads, apply its actions into a fresh diff
//! directory, and write that directory as one layer into the content store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kiln_llb::{FileAction, FileOp, OpId};
use oci_spec::image::Digest;

use super::step_error::StepError;
use super::{Inner, LayerRecord, OpResult};
use crate::copy::{self, CopySpec, SourceTree};
use crate::layer::write_layer;

/// Applies `file`'s actions on top of its base and stores the resulting layer.
pub(super) fn run_file_op(
    inner: &Inner,
    file: &FileOp,
    inputs: &BTreeMap<OpId, Arc<OpResult>>,
) -> Result<LayerRecord, StepError> {
    let base = &inputs[&file.base];
    // A linked copy is made on scratch (its layer is then rebased onto any base), as
    // BuildKit's merge of a copy onto scratch.
    let base_rootfs = if file.is_linked() {
        None
    } else {
        rootfs_of(inner, base)?
    };
    let diff = inner.temp_dir("diff")?;
    let out = diff.path();
    for action in &file.actions {
        match action {
            FileAction::Copy { source, params } => {
                let src = inputs.get(source).ok_or_else(|| {
                    StepError::Invalid(format!("internal: copy source op {} missing", source.0))
                })?;
                let spec = CopySpec {
                    sources: params.sources.clone(),
                    dest: params.dest.clone(),
                    chown: params.chown.clone(),
                    chmod: params.chmod.clone(),
                    parents: params.parents,
                    excludes: params.excludes.clone(),
                    follow_symlinks_in_sources: true,
                    unpack_archives: params.unpack_archives,
                };
                match &**src {
                    OpResult::Dir { context, .. } => {
                        let ignore = |rel: &str| context.is_ignored(rel);
                        let tree = SourceTree {
                            root: context.root(),
                            ignore: Some(&ignore),
                            ignore_has_exceptions: context.ignore_has_exceptions(),
                            is_context: true,
                        };
                        copy::copy(&spec, &tree, base_rootfs.as_deref(), out)?;
                    }
                    layers @ OpResult::Layers { .. } => {
                        let root = rootfs_of(inner, layers)?.unwrap_or_else(|| empty_dir(inner));
                        let tree = SourceTree {
                            root: &root,
                            ignore: None,
                            ignore_has_exceptions: false,
                            is_context: false,
                        };
                        copy::copy(&spec, &tree, base_rootfs.as_deref(), out)?;
                    }
                }
            }
            FileAction::Mkfile {
                dest,
                name,
                data,
                chown,
                chmod,
            } => {
                copy::write_inline_file(
                    dest,
                    name,
                    data,
                    chown.as_deref(),
                    chmod.as_deref(),
                    base_rootfs.as_deref(),
                    out,
                )?;
            }
            FileAction::Mkdir { path, chown } => {
                copy::make_dir(path, chown.as_deref(), base_rootfs.as_deref(), out)?;
            }
        }
    }
    store_layer(inner, out)
}

/// Writes a diff directory as a layer blob into the content store (verified, atomic).
pub(super) fn store_layer(inner: &Inner, diff: &Path) -> Result<LayerRecord, StepError> {
    let mut ingest = inner.store.content().ingest()?;
    let info = write_layer(diff, &mut ingest, &inner.opts.layer)?;
    let blob = ingest.commit(Some(&info.digest))?;
    Ok(LayerRecord {
        diff_id: info.diff_id,
        digest: blob.digest,
        size: blob.size,
        media_type: info.media_type,
        created: Some(kiln_llb::time::rfc3339(kiln_llb::time::now())),
    })
}

fn empty_dir(inner: &Inner) -> PathBuf {
    let p = inner.store.root().join("tmp/empty");
    let _ = std::fs::create_dir_all(&p);
    p
}

/// The merged rootfs of a layer chain (extracted once, cached by chain id); `None` for an
/// empty chain.
pub(super) fn rootfs_of(inner: &Inner, r: &OpResult) -> Result<Option<PathBuf>, StepError> {
    let layers = r.layers();
    if layers.is_empty() {
        return Ok(None);
    }
    inner.ensure_local(layers)?;
    let chain = super::LayerChain::new(inner.store.content(), layers);
    let open = |d: &Digest| chain.open(d);
    inner
        .snapshots
        .rootfs(&chain.diff_ids, &open)
        .map(Some)
        .map_err(StepError::from)
}
