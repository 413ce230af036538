//! One step per op kind, as BuildKit's `solver/llbsolver/ops` (`exec`, `file`, `source`):
//! each says what key it has and how it runs; the scheduler (`super::scheduler`) and the
//! cache lookups around a layer step (`super::layer_step`) know nothing of op kinds.

pub(super) mod exec;
pub(super) mod file;
mod mounts;
pub(super) mod rootfs;
pub(super) mod source;
mod ssh_proxy;
mod upper;

use std::collections::BTreeMap;
use std::sync::Arc;

use kiln_llb::{CacheKey, Op, OpId};

use super::step_error::StepError;
use super::{Inner, LayerRecord, OpResult, SolveError};

/// The results of a step's inputs, by op.
pub(super) type Inputs = BTreeMap<OpId, Arc<OpResult>>;

/// A step that adds one layer to its base: a file op (COPY, ADD, mkdir, inline files) or an
/// exec op (RUN). BuildKit's `Op.CacheMap` is [`LayerStep::key`], its `Op.Exec`
/// [`LayerStep::run`].
pub(super) trait LayerStep {
    /// The input the layer goes on.
    fn base(&self) -> OpId;

    /// The inputs it reads besides its base (copy sources, bind-mount sources).
    fn sources(&self) -> Vec<OpId>;

    /// Its content key: its parameters, its base's key and the content of what it reads.
    fn key(&self, cx: &Inner, id: OpId, op: &Op, inputs: &Inputs) -> Result<CacheKey, SolveError>;

    /// Runs it on its base, storing the layer it makes.
    fn run(&self, cx: &Inner, id: OpId, inputs: &Inputs) -> Result<LayerRecord, StepError>;
}

/// Input `id` of a step; its absence is a definition the frontend got wrong.
pub(super) fn input<'a>(
    inputs: &'a Inputs,
    id: OpId,
    what: &str,
) -> Result<&'a Arc<OpResult>, SolveError> {
    inputs
        .get(&id)
        .ok_or_else(|| SolveError::Definition(format!("missing {what} (op {})", id.0)))
}
