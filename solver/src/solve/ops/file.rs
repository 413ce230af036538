//! The file step (COPY, ADD, mkdir, inline files): keyed by its parameters, its base and the
//! content each copy reads; run by applying its actions into a fresh diff directory, written
//! as one layer into the content store.

use kiln_llb::{FileAction, FileOp, OpId};

use kiln_llb::{CacheKey, Op};

use std::path::Path;

use super::rootfs::{empty_dir, rootfs_of, store_layer, store_planned};
use super::{Inputs, LayerStep, input};
use crate::cache::key;
use crate::copy::{self, CopySpec, DiskUpper, PlannedLayer, SourceTree, Upper};
use crate::solve::step_error::StepError;
use crate::solve::{Inner, LayerRecord, OpResult, SolveError};

impl LayerStep for FileOp {
    fn base(&self) -> OpId {
        self.base
    }

    fn sources(&self) -> Vec<OpId> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                FileAction::Copy { source, .. } => Some(*source),
                _ => None,
            })
            .collect()
    }

    /// Its parameters, its base's key (scratch's for a linked copy), and for each copy the
    /// content checksum of what it reads.
    fn key(&self, cx: &Inner, id: OpId, op: &Op, inputs: &Inputs) -> Result<CacheKey, SolveError> {
        let base = input(inputs, self.base, "base")?;
        let mut reads = Vec::new();
        for a in &self.actions {
            if let FileAction::Copy { source, params } = a {
                let src = input(inputs, *source, "copy source")?;
                reads.push(cx.read_of(id, src, &params.sources)?);
            }
        }
        Ok(key::step(op, &keyed_base(op, base), &reads))
    }

    fn run(&self, cx: &Inner, id: OpId, inputs: &Inputs) -> Result<LayerRecord, StepError> {
        run_file_op(cx, id, self, inputs)
    }
}

/// The base key a step's key is made with: a linked copy's layer never depends on its base.
pub(crate) fn keyed_base(op: &Op, base: &OpResult) -> CacheKey {
    match op {
        Op::File(file) if file.is_linked() => key::linked_base(),
        _ => base.key().clone(),
    }
}

/// Applies `file`'s actions on top of its base and stores the resulting layer.
fn run_file_op(
    inner: &Inner,
    id: OpId,
    file: &FileOp,
    inputs: &Inputs,
) -> Result<LayerRecord, StepError> {
    let base = &inputs[&file.base];
    // A linked copy is made on scratch (its layer is then rebased onto any base), as
    // BuildKit's merge of a copy onto scratch.
    let base_rootfs = if file.is_linked() {
        None
    } else {
        rootfs_of(inner, base)?
    };
    let base_rootfs = base_rootfs.as_deref();
    // An ADD that may extract an archive writes a diff directory (the layer applier extracts
    // to disk); everything else is planned in memory and streamed into the layer tar, each
    // file read once from where it is, with no staging copy.
    let extracts = file
        .actions
        .iter()
        .any(|a| matches!(a, FileAction::Copy { params, .. } if params.unpack_archives));
    if extracts {
        let diff = inner.temp_dir("diff")?;
        apply_actions(
            inner,
            file,
            inputs,
            base_rootfs,
            &mut DiskUpper::new(diff.path()),
        )?;
        return store_layer(inner, id, diff.path());
    }
    let mut plan = PlannedLayer::new();
    apply_actions(inner, file, inputs, base_rootfs, &mut plan)?;
    store_planned(inner, id, &plan)
}

/// Writes `file`'s actions into `upper`, in order.
fn apply_actions(
    inner: &Inner,
    file: &FileOp,
    inputs: &Inputs,
    base_rootfs: Option<&Path>,
    upper: &mut dyn Upper,
) -> Result<(), StepError> {
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
                        copy::copy(&spec, &tree, base_rootfs, upper)?;
                    }
                    layers @ OpResult::Layers { .. } => {
                        let root = rootfs_of(inner, layers)?.unwrap_or_else(|| empty_dir(inner));
                        let tree = SourceTree {
                            root: &root,
                            ignore: None,
                            ignore_has_exceptions: false,
                            is_context: false,
                        };
                        copy::copy(&spec, &tree, base_rootfs, upper)?;
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
                    base_rootfs,
                    upper,
                )?;
            }
            FileAction::Mkdir { path, chown } => {
                copy::make_dir(path, chown.as_deref(), base_rootfs, upper)?;
            }
        }
    }
    Ok(())
}
