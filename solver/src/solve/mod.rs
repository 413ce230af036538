//! The solver: runs the ops of a `kiln-llb` definition, in parallel where they are
//! independent and once each, answering from the cache index when an op's key was solved
//! before. Every op's key covers its canonical parameters, its inputs' keys and the content
//! it reads (context files, base image manifest digests).

mod commit;
mod exec;
pub mod explain;
mod result;
mod run;
mod scheduler;
mod ssh_proxy;
mod step_error;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use kiln_llb::{CacheKey, Definition, FileAction, Op, OpId, Source};

use crate::progress::Vertex;
pub use crate::progress::{Event, EventKind, Progress};
use crate::source::image::ImageSource;
pub use commit::{
    CONFIG_MEDIA_TYPE, CommitError, CommittedImage, MANIFEST_MEDIA_TYPE, commit_image,
};
pub use result::{LayerChain, LayerRecord, OpResult};
pub use step_error::StepError;

use crate::cache::remote::{CacheRecord, RemoteCacheError, RemoteCaches};
use crate::cache::{CacheEntry, key};
use crate::context::Context;
use crate::executor::Executor;
pub(crate) use crate::fsutil::tempdir::TempDir;
use crate::layer::LayerOptions;
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
    /// How layers are written.
    pub layer: LayerOptions,
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

    /// The explain records of every step solved so far (`kiln build --explain-cache`).
    pub fn explain_steps(&self) -> Vec<explain::StepRecord> {
        self.inner().explain.steps(&self.inner().def)
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
        let inputs: BTreeMap<OpId, Arc<OpResult>> =
            inputs.iter().map(|(i, r)| (OpId(*i), r.clone())).collect();
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
        inputs: &BTreeMap<OpId, Arc<OpResult>>,
    ) -> Result<OpResult, SolveError> {
        match op {
            Op::Source(Source::Local { name }) => {
                let ctx = self
                    .opts
                    .contexts
                    .get(name)
                    .ok_or_else(|| self.fail(id, format!("no build context named {name:?}")))?;
                Ok(OpResult::Dir {
                    key: key::local(name),
                    context: ctx.clone(),
                })
            }
            Op::Source(Source::Http {
                url,
                checksum,
                filename,
            }) => {
                let name = self.name(id);
                let request = crate::source::http::Request {
                    url,
                    checksum: checksum.as_deref(),
                    filename,
                };
                let got = crate::source::http::download(
                    self.store.root(),
                    request,
                    self.ignores_cache(id),
                    Vertex::new(&self.progress, id.0, &name),
                )
                .map_err(|e| self.step_failed(id, e.into()))?;
                Ok(OpResult::Dir {
                    key: got.key,
                    context: got.context,
                })
            }
            Op::Source(Source::Scratch) => Ok(OpResult::Layers {
                key: key::source(op, None),
                layers: Vec::new(),
                manifest_digest: None,
            }),
            Op::Source(source) => {
                let name = self.name(id);
                let vertex = Vertex::new(&self.progress, id.0, &name);
                let started = Instant::now();
                let (r, pulled) = match &self.opts.images {
                    Some(images) => images.resolve(source),
                    None => crate::image::resolve(&self.store, source)
                        .map(|r| (r, None))
                        .map_err(Into::into),
                }
                .map_err(|e| self.step_failed(id, e.into()))?;
                let key = key::source(op, Some(&r.manifest_digest));
                match pulled {
                    Some(pulled) => {
                        vertex.started();
                        vertex.log(pulled.to_string());
                        vertex.done(started.elapsed());
                    }
                    // Resolving a base from the store builds nothing: report it like a cache
                    // hit.
                    None if !self.is_internal(id) => vertex.cached(),
                    None => {}
                }
                Ok(OpResult::Layers {
                    key,
                    layers: r.layers.iter().map(LayerRecord::from).collect(),
                    manifest_digest: Some(r.manifest_digest),
                })
            }
            Op::File(file) => {
                let sources: Vec<OpId> = file
                    .actions
                    .iter()
                    .filter_map(|a| match a {
                        FileAction::Copy { source, .. } => Some(*source),
                        _ => None,
                    })
                    .collect();
                self.layer_step(
                    id,
                    op,
                    file.base,
                    &sources,
                    inputs,
                    || self.file_key(id, op, file, inputs),
                    || exec::run_file_op(self, file, inputs),
                )
            }
            Op::Exec(x) => {
                let sources: Vec<OpId> = x
                    .mounts
                    .iter()
                    .filter_map(|m| match m {
                        kiln_llb::ExecMount::Bind { source, .. } => Some(*source),
                        _ => None,
                    })
                    .collect();
                self.layer_step(
                    id,
                    op,
                    x.base,
                    &sources,
                    inputs,
                    || self.exec_key(id, op, x, inputs),
                    || run::run_exec_op(self, id, x, inputs),
                )
            }
        }
    }

    /// A step that adds one layer to `base` and reads `sources`: answered by its definition
    /// key when it reads other stages, else by its content key (`key`), else `run`.
    #[allow(clippy::too_many_arguments)] // the step, its inputs, and how to key and run it
    fn layer_step(
        &self,
        id: OpId,
        op: &Op,
        base: OpId,
        sources: &[OpId],
        inputs: &BTreeMap<OpId, Arc<OpResult>>,
        key: impl FnOnce() -> Result<CacheKey, SolveError>,
        run: impl FnOnce() -> Result<LayerRecord, StepError>,
    ) -> Result<OpResult, SolveError> {
        let base_result = inputs
            .get(&base)
            .ok_or_else(|| SolveError::Definition("missing base".into()))?;
        let def_key = self.definition_key(op, base_result, sources, inputs)?;
        if let Some(hit) = self.definition_hit(id, def_key.as_ref(), base_result) {
            return Ok(hit);
        }
        self.layer_op(id, key()?, def_key, base_result, run)
    }

    fn is_internal(&self, id: OpId) -> bool {
        self.name(id).starts_with("[internal]")
    }

    /// The key of a file op: its parameters, its inputs' keys, and for local sources the
    /// content checksum of what each copy reads.
    fn file_key(
        &self,
        id: OpId,
        op: &Op,
        file: &kiln_llb::FileOp,
        inputs: &BTreeMap<OpId, Arc<OpResult>>,
    ) -> Result<CacheKey, SolveError> {
        let base = inputs
            .get(&file.base)
            .ok_or_else(|| SolveError::Definition("missing base".into()))?;
        let mut reads = Vec::new();
        for a in &file.actions {
            if let FileAction::Copy { source, params } = a {
                let src = inputs
                    .get(source)
                    .ok_or_else(|| SolveError::Definition("missing source".into()))?;
                reads.push(self.read_of(id, src, &params.sources)?);
            }
        }
        Ok(key::step(op, &keyed_base(op, base), &reads))
    }

    /// The definition key of an op that reads other stages: its parameters and its inputs'
    /// keys, without the content it reads from them. Looked up before the content key, so a
    /// hit needs no input's rootfs (an imported cache then never downloads a stage's layers
    /// just to hash them). `None` when an input is a local directory, whose key says nothing
    /// about its content, or when no input is a stage.
    fn definition_key(
        &self,
        op: &Op,
        base: &OpResult,
        sources: &[OpId],
        inputs: &BTreeMap<OpId, Arc<OpResult>>,
    ) -> Result<Option<CacheKey>, SolveError> {
        let mut any_stage = false;
        for s in sources {
            match inputs.get(s).map(|r| r.as_ref()) {
                Some(OpResult::Dir { .. }) => return Ok(None),
                Some(r) if !r.layers().is_empty() => any_stage = true,
                Some(_) => {}
                None => return Err(SolveError::Definition("missing source".into())),
            }
        }
        if !any_stage || self.opts.no_cache {
            return Ok(None);
        }
        let source_keys: Vec<&CacheKey> = sources
            .iter()
            .filter_map(|s| inputs.get(s).map(|r| r.key()))
            .collect();
        Ok(Some(key::definition(
            op,
            &keyed_base(op, base),
            &source_keys,
        )))
    }

    /// The cached result of a definition key, as a layer on `base`.
    fn definition_hit(
        &self,
        id: OpId,
        def_key: Option<&CacheKey>,
        base: &OpResult,
    ) -> Option<OpResult> {
        // A definition key names its inputs by key, not content; a stage re-run for
        // `--no-cache-filter` may have new content under its old key, so only content
        // keys may answer while one is given.
        if self.ignores_cache(id) || !self.opts.no_cache_stages.is_empty() {
            return None;
        }
        let def_key = def_key?;
        let (layer, result_key) = self.lookup(def_key)?;
        let result_key = CacheKey(result_key?);
        self.progress
            .send(Event::new(id.0, self.name(id), EventKind::Cached));
        self.record(def_key, Some(&result_key), &layer);
        self.record(&result_key, None, &layer);
        let mut layers = base.layers().to_vec();
        layers.push(layer);
        Some(OpResult::Layers {
            key: result_key,
            layers,
            manifest_digest: None,
        })
    }

    /// An op that adds one layer to its base: answered from the cache index when `key` was
    /// solved before (and its blob is still present), else run and recorded — under `key`
    /// and, when given, under its definition key too.
    fn layer_op(
        &self,
        id: OpId,
        key: CacheKey,
        def_key: Option<CacheKey>,
        base: &OpResult,
        run: impl FnOnce() -> Result<LayerRecord, StepError>,
    ) -> Result<OpResult, SolveError> {
        let started = Instant::now();
        let name = self.name(id);
        let mut layers = base.layers().to_vec();
        let hit = if self.ignores_cache(id) {
            None
        } else {
            self.lookup(&key).map(|(rec, _)| rec)
        };
        let rec = match hit {
            Some(rec) => {
                self.progress
                    .send(Event::new(id.0, name, EventKind::Cached));
                rec
            }
            None => {
                self.progress
                    .send(Event::new(id.0, name.clone(), EventKind::Started));
                self.explain.ran(id);
                let rec = run().map_err(|e| self.step_failed(id, e))?;
                self.put_entry(id, &key, &rec, None)?;
                self.progress
                    .send(Event::new(id.0, name, EventKind::Done(started.elapsed())));
                rec
            }
        };
        if let Some(dk) = &def_key {
            self.put_entry(id, dk, &rec, Some(&key))?;
            self.record(dk, Some(&key), &rec);
        }
        self.record(&key, None, &rec);
        layers.push(rec);
        Ok(OpResult::Layers {
            key,
            layers,
            manifest_digest: None,
        })
    }

    fn put_entry(
        &self,
        id: OpId,
        key: &CacheKey,
        layer: &LayerRecord,
        result_key: Option<&CacheKey>,
    ) -> Result<(), SolveError> {
        let entry = CacheEntry {
            layer: layer.clone(),
            result_key: result_key.map(|k| k.0.clone()),
        };
        crate::cache::index::put(&self.store, &key.0, &entry)
            .map_err(|e| self.fail(id, e.to_string()))
    }

    /// Notes a record for `--cache-to`.
    fn record(&self, key: &CacheKey, result_key: Option<&CacheKey>, layer: &LayerRecord) {
        if let Ok(mut records) = self.records.lock() {
            records.push(CacheRecord {
                key: key.0.clone(),
                result_key: result_key.map(|k| k.0.clone()),
                layer: layer.clone(),
            });
        }
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
                let root = exec::rootfs_of(self, layers)
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

    /// The key of a RUN: its parameters, its base's key, and the content of what its bind
    /// mounts read; cache-mount contents and secrets are deliberately not part of it.
    fn exec_key(
        &self,
        id: OpId,
        op: &Op,
        x: &kiln_llb::ExecOp,
        inputs: &BTreeMap<OpId, Arc<OpResult>>,
    ) -> Result<CacheKey, SolveError> {
        let base = inputs
            .get(&x.base)
            .ok_or_else(|| SolveError::Definition("missing base".into()))?;
        let mut reads = Vec::new();
        for m in &x.mounts {
            if let kiln_llb::ExecMount::Bind {
                source, selector, ..
            } = m
            {
                let src = inputs
                    .get(source)
                    .ok_or_else(|| SolveError::Definition("missing mount source".into()))?;
                reads.push(self.read_of(id, src, std::slice::from_ref(selector))?);
            }
        }
        Ok(key::step(op, base.key(), &reads))
    }

    /// The layer (and result key) cached under `key`: from the local index while its blob
    /// is still in the store, else from an imported cache (its blob is fetched when needed).
    fn lookup(&self, key: &CacheKey) -> Option<(LayerRecord, Option<String>)> {
        if let Some(entry) = crate::cache::index::get(&self.store, &key.0) {
            return Some((entry.layer, entry.result_key));
        }
        self.opts
            .remote_cache
            .lookup(&key.0)
            .map(|r| (r.layer, r.result_key))
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

/// The base key a step's key is made with: a linked copy's layer never depends on its base.
fn keyed_base(op: &Op, base: &OpResult) -> CacheKey {
    match op {
        Op::File(file) if file.is_linked() => key::linked_base(),
        _ => base.key().clone(),
    }
}
