//! The solver: runs the ops of a `kiln-llb` definition, in parallel where they are
//! independent and once each, answering from the cache index when an op's key was solved
//! before. Every op's key covers its canonical parameters, its inputs' keys and the content
//! it reads (context files, base image manifest digests).

mod commit;
mod events;
mod exec;
mod image_source;
mod result;
mod run;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use kiln_llb::{CacheKey, Definition, Encoder, FileAction, Op, OpId, Source, encode::encode_op};
use tokio::sync::OnceCell;

pub use commit::{CONFIG_MEDIA_TYPE, CommittedImage, MANIFEST_MEDIA_TYPE, commit_image};
pub use events::{Event, EventKind, Progress};
pub use image_source::{ResolvedImage, from_manifest, resolve as resolve_image};
pub use result::{LayerChain, LayerRecord, OpResult};

use crate::context::Context;
use crate::executor::Executor;
use crate::layer::LayerOptions;
use crate::snapshot::Snapshots;
use crate::store::Store;

/// Why a build failed; each variant names the op (its progress name) it failed in.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SolveError {
    /// An op failed.
    #[error("{name}: {message}")]
    Op {
        /// The op's progress name (`[stage 2/4] COPY . /app`).
        name: String,
        /// What went wrong.
        message: String,
        /// The op, for mapping back to the Dockerfile.
        op: usize,
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
    /// How layers are written.
    pub layer: LayerOptions,
    /// Runs RUN steps; `None` makes any RUN fail with a clear error.
    pub executor: Option<Arc<dyn Executor>>,
    /// `--secret id=…` values (never logged, never in a key).
    pub secrets: BTreeMap<String, Vec<u8>>,
    /// `--ssh id=socket` agent sockets.
    pub ssh: BTreeMap<String, PathBuf>,
}

/// A solver over one store.
#[derive(Debug, Clone)]
pub struct Solver {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    snapshots: Snapshots,
    def: Definition,
    opts: SolveOptions,
    cells: Vec<OnceCell<Result<Arc<OpResult>, SolveError>>>,
    progress: Progress,
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
        let cells = (0..def.ops.len()).map(|_| OnceCell::new()).collect();
        Ok(Solver {
            inner: Arc::new(Inner {
                store,
                snapshots,
                def,
                opts,
                cells,
                progress,
            }),
        })
    }

    /// Solves `target` and everything it needs.
    pub async fn solve(&self, target: OpId) -> Result<Arc<OpResult>, SolveError> {
        Inner::eval(self.inner.clone(), target).await
    }

    /// Where extracted rootfs snapshots live.
    pub fn snapshots(&self) -> &Snapshots {
        &self.inner.snapshots
    }
}

type EvalFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Arc<OpResult>, SolveError>> + Send>>;

impl Inner {
    fn name(&self, id: OpId) -> String {
        self.def
            .locations
            .get(id.0)
            .map(|l| l.name.clone())
            .unwrap_or_else(|| format!("op {}", id.0))
    }

    fn eval(self: Arc<Self>, id: OpId) -> EvalFuture {
        Box::pin(async move {
            let cell = self
                .cells
                .get(id.0)
                .ok_or_else(|| SolveError::Definition(format!("no op {}", id.0)))?;
            cell.get_or_init(|| {
                let this = self.clone();
                async move { this.compute(id).await }
            })
            .await
            .clone()
        })
    }

    async fn compute(self: Arc<Self>, id: OpId) -> Result<Arc<OpResult>, SolveError> {
        let op = self
            .def
            .get(id)
            .cloned()
            .ok_or_else(|| SolveError::Definition(format!("no op {}", id.0)))?;
        // Inputs run concurrently; an input always has a smaller index, so no cycles.
        let mut handles = Vec::new();
        for input in op.inputs() {
            if input.0 >= id.0 {
                return Err(SolveError::Definition(format!(
                    "op {} reads op {} defined after it",
                    id.0, input.0
                )));
            }
            handles.push((input, tokio::spawn(Inner::eval(self.clone(), input))));
        }
        let mut inputs = BTreeMap::new();
        for (input, h) in handles {
            let r = h.await.map_err(|e| SolveError::Op {
                name: self.name(input),
                message: format!("task failed: {e}"),
                op: input.0,
            })??;
            inputs.insert(input, r);
        }
        if crate::cancel::is_cancelled() {
            return Err(SolveError::Op {
                name: self.name(id),
                message: "build cancelled".to_owned(),
                op: id.0,
            });
        }
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.compute_blocking(id, &op, &inputs))
            .await
            .map_err(|e| SolveError::Op {
                name: self.name(id),
                message: format!("task failed: {e}"),
                op: id.0,
            })?
            .map(Arc::new)
    }

    fn fail(&self, id: OpId, message: impl Into<String>) -> SolveError {
        let e = SolveError::Op {
            name: self.name(id),
            message: message.into(),
            op: id.0,
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
                    key: CacheKey(format!("local:{name}")),
                    context: ctx.clone(),
                })
            }
            Op::Source(Source::Scratch) => {
                let mut e = Encoder::new();
                encode_op(&mut e, op);
                Ok(OpResult::Layers {
                    key: e.finish(),
                    layers: Vec::new(),
                    manifest_digest: None,
                })
            }
            Op::Source(source) => {
                let r = image_source::resolve(&self.store, source).map_err(|m| self.fail(id, m))?;
                let mut e = Encoder::new();
                encode_op(&mut e, op);
                e.str("manifest", r.manifest_digest.as_ref());
                let key = e.finish();
                // Resolving a base from the store builds nothing: report it like a cache hit.
                if !self.is_internal(id) {
                    self.progress
                        .send(Event::new(id.0, self.name(id), EventKind::Cached));
                }
                Ok(OpResult::Layers {
                    key,
                    layers: r.layers,
                    manifest_digest: Some(r.manifest_digest),
                })
            }
            Op::File(file) => {
                let key = self.file_key(id, op, file, inputs)?;
                self.layer_op(id, key, &inputs[&file.base], || {
                    exec::run_file_op(self, file, inputs)
                })
            }
            Op::Exec(x) => {
                let key = self.exec_key(id, op, x, inputs)?;
                self.layer_op(id, key, &inputs[&x.base], || {
                    run::run_exec_op(self, id, x, inputs)
                })
            }
        }
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
        let mut e = Encoder::new();
        encode_op(&mut e, op);
        let base = inputs
            .get(&file.base)
            .ok_or_else(|| SolveError::Definition("missing base".into()))?;
        e.str("base", &base.key().0);
        for a in &file.actions {
            if let FileAction::Copy { source, params } = a {
                let src = inputs
                    .get(source)
                    .ok_or_else(|| SolveError::Definition("missing source".into()))?;
                // What a copy reads is keyed by content, not by how it was made: a
                // COPY --from of an unchanged file stays cached when other files of the
                // source stage changed (BuildKit's content-based cache keys do the same).
                self.content_key(id, &mut e, src, &params.sources)?;
            }
        }
        Ok(e.finish())
    }

    /// An op that adds one layer to its base: answered from the cache index when `key` was
    /// solved before (and its blob is still present), else run and recorded.
    fn layer_op(
        &self,
        id: OpId,
        key: CacheKey,
        base: &OpResult,
        run: impl FnOnce() -> Result<LayerRecord, String>,
    ) -> Result<OpResult, SolveError> {
        let started = Instant::now();
        let name = self.name(id);
        let mut layers = base.layers().to_vec();
        if !self.opts.no_cache
            && let Some(rec) = self.cached(&key)
        {
            self.progress
                .send(Event::new(id.0, name, EventKind::Cached));
            layers.push(rec);
            return Ok(OpResult::Layers {
                key,
                layers,
                manifest_digest: None,
            });
        }
        self.progress
            .send(Event::new(id.0, name.clone(), EventKind::Started));
        let rec = run().map_err(|m| self.fail(id, m))?;
        let bytes = serde_json::to_vec(&rec).map_err(|e| self.fail(id, e.to_string()))?;
        self.store
            .meta()
            .cache_put(&key.0, &bytes)
            .map_err(|e| self.fail(id, format!("recording the cache entry: {e}")))?;
        self.progress
            .send(Event::new(id.0, name, EventKind::Done(started.elapsed())));
        layers.push(rec);
        Ok(OpResult::Layers {
            key,
            layers,
            manifest_digest: None,
        })
    }

    /// The content key of what a copy or bind mount reads from `src` at `paths`: the
    /// context's checksum (ownership reset by COPY), or the checksum of the paths in a
    /// stage's rootfs including owners.
    fn content_key(
        &self,
        id: OpId,
        e: &mut Encoder,
        src: &OpResult,
        paths: &[String],
    ) -> Result<(), SolveError> {
        match src {
            OpResult::Dir { context, .. } => {
                let sum = context
                    .checksum(paths, self.store.meta())
                    .map_err(|err| self.fail(id, err.to_string()))?;
                e.str("source", &src.key().0).str("content", sum.as_ref());
            }
            layers if layers.layers().is_empty() => {
                e.str("source", &src.key().0);
            }
            layers => {
                let root = exec::rootfs_of(self, layers)
                    .map_err(|m| self.fail(id, m))?
                    .ok_or_else(|| self.fail(id, "internal: empty rootfs"))?;
                let tree =
                    Context::open(&root, None).map_err(|err| self.fail(id, err.to_string()))?;
                let sum = tree
                    .checksum_with_owners(paths, self.store.meta())
                    .map_err(|err| self.fail(id, err.to_string()))?;
                e.str("source", "layers").str("content", sum.as_ref());
            }
        }
        Ok(())
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
        let mut e = Encoder::new();
        encode_op(&mut e, op);
        let base = inputs
            .get(&x.base)
            .ok_or_else(|| SolveError::Definition("missing base".into()))?;
        e.str("base", &base.key().0);
        for m in &x.mounts {
            if let kiln_llb::ExecMount::Bind {
                source, selector, ..
            } = m
            {
                let src = inputs
                    .get(source)
                    .ok_or_else(|| SolveError::Definition("missing mount source".into()))?;
                self.content_key(id, &mut e, src, std::slice::from_ref(selector))?;
            }
        }
        Ok(e.finish())
    }

    /// A cache hit is only good while its blob is still in the store.
    fn cached(&self, key: &CacheKey) -> Option<LayerRecord> {
        let bytes = self.store.meta().cache_get(&key.0).ok()??;
        let rec: LayerRecord = serde_json::from_slice(&bytes).ok()?;
        let digest = rec.digest().ok()?;
        self.store.content().contains(&digest).then_some(rec)
    }

    /// A temp directory under the store root (same filesystem: renames stay atomic).
    fn temp_dir(&self, what: &str) -> Result<TempDir, String> {
        TempDir::new(&self.store.root().join("tmp"), what)
    }
}

/// A directory removed when dropped, also on errors and panics.
#[derive(Debug)]
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    fn new(parent: &std::path::Path, what: &str) -> Result<Self, String> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        let p = parent.join(format!(
            "{what}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(TempDir(p))
    }

    pub(crate) fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
