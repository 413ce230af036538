//! The solver: runs the ops of a `kiln-llb` definition, in parallel where they are
//! independent and once each, answering from the cache index when an op's key was solved
//! before. Every op's key covers its canonical parameters, its inputs' keys and the content
//! it reads (context files, base image manifest digests).

mod commit;
pub mod explain;
mod layer_step;
mod ops;
mod result;
mod scheduler;
mod step_error;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use kiln_llb::{Definition, Op, OpId};

pub use crate::progress::{Event, EventKind, Progress};
use crate::source::image::ImageSource;
pub use commit::{
    CONFIG_MEDIA_TYPE, CommitError, CommittedImage, MANIFEST_MEDIA_TYPE, commit_image,
};
pub use result::{LayerChain, LayerRecord, OpResult};
pub use step_error::StepError;

use crate::cache::key;
use crate::cache::remote::{CacheRecord, RemoteCacheError, RemoteCaches};
use crate::context::Context;
use crate::executor::Executor;
pub(crate) use crate::fsutil::tempdir::TempDir;
use crate::snapshot::Snapshots;
use crate::store::Store;
use scheduler::Scheduler;

/// Why a build failed; each variant names the op (its progress name) it failed in.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SolveError {
    /// An op failed (BuildKit's `VertexError`: the op, where it came from, and the error).
    #[error("{name}: {message}")]
    Op {
        /// The op's progress name (`[stage 2/4] COPY . /app`).
        name: String,
        /// What went wrong, as shown (secrets redacted).
        message: String,
        /// The op, for mapping back to the Dockerfile.
        op: usize,
        /// The byte range of the instruction the op was lowered from, when it has one.
        span: Option<(usize, usize)>,
        /// The step's own error, whole (its text is `message` before redaction).
        #[source]
        step: Option<Arc<StepError>>,
    },
    /// The definition is inconsistent (a bug in the frontend).
    #[error("invalid build definition: {0}")]
    Definition(String),
    /// The scheduler's runtime could not be started.
    #[error("starting the scheduler: {0}")]
    Runtime(#[source] Arc<std::io::Error>),
}

/// Everything one solve produced.
#[derive(Debug)]
pub struct Solution {
    /// The target's result (its layers, for an image).
    pub result: Arc<OpResult>,
    /// The cache records of every layer step solved (run or cached), for `--cache-to`.
    pub records: Vec<CacheRecord>,
    /// What `--explain-cache` records of each step.
    pub explain: Vec<explain::StepRecord>,
}

/// Solves `target` of `def` over `store` to the end, on a runtime of its own: the one call a
/// build makes into the solver. `progress` is closed when it returns, whatever the outcome.
pub fn run(
    store: Store,
    def: Definition,
    target: OpId,
    opts: SolveOptions,
    progress: Progress,
) -> Result<Solution, SolveError> {
    let solver = Solver::new(store, def, opts, progress)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| SolveError::Runtime(Arc::new(e)))?;
    let result = runtime.block_on(solver.solve(target))?;
    Ok(Solution {
        result,
        records: solver.cache_records(),
        explain: solver.take_explain_steps(),
    })
}

/// How to solve.
#[derive(Debug, Clone, Default)]
pub struct SolveOptions {
    /// Named local contexts (`context` is the build context).
    pub contexts: BTreeMap<String, Context>,
    /// Ignore the cache index (still record results).
    pub no_cache: bool,
    /// `--no-cache-filter`: ignore the cache for the ops of these stages (by `AS` name).
    pub no_cache_stages: BTreeSet<String>,
    /// `SOURCE_DATE_EPOCH`: file times in the layers a step writes are clamped to it. (Layers
    /// are written as plain tars: compression happens at the edge, `cache::compressed`.)
    pub source_date_epoch: Option<i64>,
    /// Runs RUN steps; `None` makes any RUN fail with a clear error.
    pub executor: Option<Arc<dyn Executor>>,
    /// `--secret id=…` values (never logged, never in a key).
    pub secrets: BTreeMap<String, Vec<u8>>,
    /// `--ssh id=socket` agent sockets.
    pub ssh: BTreeMap<String, PathBuf>,
    /// Caches imported with `--cache-from`, consulted after the local one.
    pub remote_cache: RemoteCaches,
    /// Base images, pulled when the store lacks them; `None` resolves from the store alone.
    pub images: Option<Arc<ImageSource>>,
    /// The compression the build's outputs write its layers in, when they compress them:
    /// each layer of the target's own chain (the layers the image will hold) is then
    /// compressed while it is written, instead of read back at export. Layers of other
    /// stages never are.
    pub edge: Option<crate::cache::compressed::LayerCompression>,
}

/// A solver over one store.
#[derive(Debug, Clone)]
pub struct Solver {
    scheduler: Arc<Scheduler<Inner>>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    snapshots: Snapshots,
    def: Definition,
    opts: SolveOptions,
    progress: Progress,
    /// Every secret value of the build, in every shape it could be printed in.
    redactor: Arc<crate::secrets::Redactor>,
    /// Every step's cache records in this build, for `--cache-to`.
    records: std::sync::Mutex<Vec<CacheRecord>>,
    /// What `--explain-cache` records of each step.
    explain: explain::Recorder,
    /// The ops whose layers the target's image holds (its base chain), when `opts.edge`.
    edge_ops: std::sync::OnceLock<std::collections::HashSet<OpId>>,
}

impl Inner {
    /// The compression `id`'s layer is written in besides the plain tar, when the build's
    /// outputs will want it compressed (see [`SolveOptions::edge`]).
    pub(crate) fn edge_for(&self, id: OpId) -> Option<crate::cache::compressed::LayerCompression> {
        self.opts
            .edge
            .filter(|_| self.edge_ops.get().is_some_and(|ops| ops.contains(&id)))
    }
}

impl Solver {
    /// Prepares to solve `def` over `store`.
    pub fn new(
        store: Store,
        def: Definition,
        opts: SolveOptions,
        progress: Progress,
    ) -> Result<Self, SolveError> {
        let snapshots = Snapshots::open(store.root())
            .map_err(|e| SolveError::Definition(format!("snapshots: {e}")))?;
        let redactor = Arc::new(crate::secrets::Redactor::new(
            opts.secrets.values().map(Vec::as_slice),
        ));
        let progress = progress.with_redactor(redactor.clone());
        let inner = Arc::new(Inner {
            store,
            snapshots,
            def,
            opts,
            progress,
            redactor,
            records: Default::default(),
            explain: Default::default(),
            edge_ops: std::sync::OnceLock::new(),
        });
        Ok(Solver {
            scheduler: Scheduler::new(inner),
        })
    }

    fn inner(&self) -> &Inner {
        self.scheduler.steps()
    }

    /// Solves `target` and everything it needs.
    pub async fn solve(&self, target: OpId) -> Result<Arc<OpResult>, SolveError> {
        let inner = self.inner();
        if inner.opts.edge.is_some() {
            let _ = inner.edge_ops.set(base_chain(&inner.def, target));
        }
        self.scheduler.clone().eval(target.0).await
    }

    /// Where extracted rootfs snapshots live.
    pub fn snapshots(&self) -> &Snapshots {
        &self.inner().snapshots
    }

    /// The cache records of every layer step solved so far (run or cached).
    pub fn cache_records(&self) -> Vec<CacheRecord> {
        self.inner()
            .records
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// The explain records of every step solved so far (`kiln build --explain-cache`), the
    /// per-file listings moved out: call it once, at the end.
    pub fn take_explain_steps(&self) -> Vec<explain::StepRecord> {
        self.inner().explain.take_steps(&self.inner().def)
    }

    /// Makes every layer's blob present in the store, fetching from imported caches what a
    /// cache hit left remote.
    pub fn ensure_local(&self, layers: &[LayerRecord]) -> Result<(), RemoteCacheError> {
        self.inner().ensure_local(layers)
    }
}

impl scheduler::Steps for Inner {
    type Output = Arc<OpResult>;
    type Error = SolveError;

    fn count(&self) -> usize {
        self.def.ops.len()
    }

    fn inputs(&self, step: usize) -> Result<Vec<usize>, SolveError> {
        let op = self
            .def
            .get(OpId(step))
            .ok_or_else(|| SolveError::Definition(format!("no op {step}")))?;
        Ok(op.inputs().into_iter().map(|i| i.0).collect())
    }

    fn run(
        &self,
        step: usize,
        inputs: &BTreeMap<usize, Arc<OpResult>>,
    ) -> Result<Arc<OpResult>, SolveError> {
        let id = OpId(step);
        let op = self
            .def
            .get(id)
            .cloned()
            .ok_or_else(|| SolveError::Definition(format!("no op {step}")))?;
        let inputs: ops::Inputs = inputs.iter().map(|(i, r)| (OpId(*i), r.clone())).collect();
        self.compute_blocking(id, &op, &inputs)
            .inspect(|r| self.explain.done(id, r))
            .map(Arc::new)
    }

    fn not_run(&self, step: usize, why: scheduler::NotRun) -> SolveError {
        if why.is_definition() {
            return SolveError::Definition(format!("op {step}: {why}"));
        }
        SolveError::Op {
            name: self.name(OpId(step)),
            message: why.to_string(),
            op: step,
            span: self.span(OpId(step)),
            step: None,
        }
    }

    fn cancelled(&self) -> bool {
        crate::cancel::is_cancelled()
    }
}

impl Inner {
    /// `--no-cache`, or `--no-cache-filter` naming the stage this op belongs to.
    fn ignores_cache(&self, id: OpId) -> bool {
        self.opts.no_cache
            || self.def.locations.get(id.0).is_some_and(|l| {
                !l.stage.is_empty() && self.opts.no_cache_stages.contains(&l.stage)
            })
    }

    fn name(&self, id: OpId) -> String {
        self.def
            .locations
            .get(id.0)
            .map(|l| l.name.clone())
            .unwrap_or_else(|| format!("op {}", id.0))
    }

    /// The instruction span op `id` was lowered from.
    fn span(&self, id: OpId) -> Option<(usize, usize)> {
        self.def.locations.get(id.0).map(|l| l.span)
    }

    fn fail(&self, id: OpId, message: impl Into<String>) -> SolveError {
        self.failed(id, message.into(), None)
    }

    /// Op `id` failed with `error`, kept whole in the [`SolveError`].
    fn step_failed(&self, id: OpId, error: StepError) -> SolveError {
        self.failed(id, error.to_string(), Some(Arc::new(error)))
    }

    fn failed(&self, id: OpId, message: String, step: Option<Arc<StepError>>) -> SolveError {
        // A failing RUN's message quotes its output: no secret leaves in it.
        let e = SolveError::Op {
            name: self.name(id),
            message: self.redactor.redact(&message).into_owned(),
            op: id.0,
            span: self.span(id),
            step,
        };
        self.progress.send(Event::new(
            id.0,
            self.name(id),
            EventKind::Error(e.to_string()),
        ));
        e
    }

    fn compute_blocking(
        &self,
        id: OpId,
        op: &Op,
        inputs: &ops::Inputs,
    ) -> Result<OpResult, SolveError> {
        match op {
            Op::Source(source) => ops::source::solve(self, id, op, source),
            Op::File(file) => self.layer_step(id, op, file, inputs),
            Op::Exec(x) => self.layer_step(id, op, x, inputs),
        }
    }

    fn is_internal(&self, id: OpId) -> bool {
        self.name(id).starts_with("[internal]")
    }

    /// What a step reads of `src` at `paths`, for its key: a local directory's key and the
    /// checksum of the paths; a stage's or image's content alone (what a copy reads is keyed
    /// by content, not by how it was made: a COPY --from of an unchanged file stays cached
    /// when other files of the source stage changed).
    fn read_of(&self, id: OpId, src: &OpResult, paths: &[String]) -> Result<key::Read, SolveError> {
        match src {
            OpResult::Dir { context, .. } => {
                let (sum, listing) = context
                    .checksum_listed(paths, self.store.meta(), false)
                    .map_err(|err| self.fail(id, err.to_string()))?;
                self.explain.read(id, &sum, listing);
                Ok(key::Read::local(src.key(), sum))
            }
            layers if layers.layers().is_empty() => Ok(key::Read::empty(src.key())),
            layers => {
                let root = ops::rootfs::rootfs_of(self, layers)
                    .map_err(|e| self.step_failed(id, e))?
                    .ok_or_else(|| self.fail(id, "internal: empty rootfs"))?;
                let tree =
                    Context::open(&root, None).map_err(|err| self.fail(id, err.to_string()))?;
                let (sum, listing) = tree
                    .checksum_listed(paths, self.store.meta(), true)
                    .map_err(|err| self.fail(id, err.to_string()))?;
                self.explain.read(id, &sum, listing);
                Ok(key::Read::layers(sum))
            }
        }
    }

    /// See [`Solver::ensure_local`].
    fn ensure_local(&self, layers: &[LayerRecord]) -> Result<(), RemoteCacheError> {
        self.opts
            .remote_cache
            .ensure_local(self.store.content(), layers)
    }

    /// A temp directory under the store root (same filesystem: renames stay atomic).
    fn temp_dir(&self, what: &str) -> Result<TempDir, StepError> {
        let parent = self.store.root().join("tmp");
        TempDir::new(&parent, what).map_err(step_error::io_err(parent.display()))
    }
}

/// `target` and the ops it builds on, base by base down to its source: the ops whose layers
/// an image of `target` holds.
fn base_chain(def: &Definition, target: OpId) -> std::collections::HashSet<OpId> {
    let mut chain = std::collections::HashSet::new();
    let mut at = Some(target);
    while let Some(id) = at.filter(|id| chain.insert(*id)) {
        at = match def.ops.get(id.0) {
            Some(kiln_llb::Op::File(f)) => Some(f.base),
            Some(kiln_llb::Op::Exec(e)) => Some(e.base),
            _ => None,
        };
    }
    chain
}
