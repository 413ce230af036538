//! Cache insight (`kiln build --explain-cache`): what each step's cache key was made of in a
//! build, recorded after every successful build, and why a step missed compared with the
//! last build of the same Dockerfile and target.
//!
//! Keys are opaque digests, so a record keeps their *components*: the instruction text, the
//! op's parameters in readable form, a RUN's environment, the parent step's key, a base
//! image's manifest digest and, per path, what was hashed of the files a step reads. Steps
//! are matched between builds by stage name and position in the stage (`[app 3/5]`), never
//! by key. Secret values are never part of an op, so never part of a record either.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use kiln_llb::{Definition, ExecMount, FileAction, Op, OpId, Source};
use oci_spec::image::Digest;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

mod compare;
mod listings;
mod params;

pub use compare::{Cause, Explained, Place, explain};
use params::params;

use super::result::OpResult;

/// Bumped when a record changes meaning; a record of another version is ignored.
pub const RECORD_VERSION: u32 = 2;

/// Everything recorded of one build of a Dockerfile and target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildRecord {
    /// [`RECORD_VERSION`].
    pub version: u32,
    /// The Dockerfile's absolute path (`-` plus the context for standard input).
    pub dockerfile: String,
    /// `--target`, empty for the last stage.
    pub target: String,
    /// Names declared with ARG or given with `--build-arg`: a change of one of these in a
    /// RUN's environment is a build arg change, any other an ENV change.
    pub build_args: BTreeSet<String>,
    /// The build ran with `--no-cache`.
    pub no_cache: bool,
    /// `--no-cache-filter` stages (lowercase `AS` names).
    #[serde(default)]
    pub no_cache_stages: BTreeSet<String>,
    /// The steps solved, in definition order.
    pub steps: Vec<StepRecord>,
}

/// The components of one step's cache key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Index of the op in its build's definition.
    pub op: usize,
    /// The progress name (`[app 3/5] COPY . /src`).
    pub name: String,
    /// A source (FROM, a build context, a download) rather than a step adding a layer.
    pub source: bool,
    /// The op's own parameters, readable, by field; env and input keys are elsewhere.
    pub params: BTreeMap<String, String>,
    /// A RUN's environment (ENV plus the ARGs in scope).
    pub env: BTreeMap<String, String>,
    /// The step it builds on: its name and key.
    pub parent: Option<ParentRecord>,
    /// For an image source: the reference as written and the manifest digest it resolved to.
    pub image: Option<ImageRecord>,
    /// What it read from each copy or bind-mount source, in the op's order.
    pub reads: Vec<ContentRead>,
    /// The step's cache key.
    pub key: String,
    /// The step ran (missed the cache).
    pub ran: bool,
}

/// The step a step builds on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentRecord {
    /// Its progress name.
    pub name: String,
    /// Its key in this build.
    pub key: String,
}

/// An image source's resolution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The reference as written (already expanded).
    pub reference: String,
    /// The manifest digest it resolved to.
    pub digest: String,
}

/// What a copy or bind mount read from one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentRead {
    /// The source step's progress name.
    pub from: String,
    /// The local context's name when the source is a local directory.
    pub local: Option<String>,
    /// The content checksum the key holds.
    pub digest: String,
    /// Per path: what was hashed of it (type, mode, size, content digest or link target).
    /// Kept beside the record, by `digest` (see `listings`), not in its JSON.
    #[serde(skip)]
    pub files: BTreeMap<String, String>,
}

/// What one op read from each of its sources: the content digest, and what was hashed of
/// each path.
type Reads = Vec<(String, BTreeMap<String, String>)>;

/// What the solver observed of one op.
#[derive(Debug, Default)]
struct Observed {
    key: Option<String>,
    manifest: Option<String>,
    ran: bool,
    reads: Reads,
}

/// Collects, while solving, what the records need beyond the definition.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    ops: Mutex<BTreeMap<usize, Observed>>,
}

impl Recorder {
    fn with(&self, id: OpId, f: impl FnOnce(&mut Observed)) {
        if let Ok(mut ops) = self.ops.lock() {
            f(ops.entry(id.0).or_default());
        }
    }

    /// `id` read content with checksum `digest` (listed per path) from its next source.
    pub(crate) fn read(&self, id: OpId, digest: &Digest, listing: Vec<(String, String)>) {
        let files = listing.into_iter().collect();
        self.with(id, |o| o.reads.push((digest.to_string(), files)));
    }

    /// `id` missed the cache and runs.
    pub(crate) fn ran(&self, id: OpId) {
        self.with(id, |o| o.ran = true);
    }

    /// `id` was solved to `result`.
    pub(crate) fn done(&self, id: OpId, result: &OpResult) {
        self.with(id, |o| {
            o.key = Some(result.key().0.clone());
            if let OpResult::Layers {
                manifest_digest: Some(d),
                ..
            } = result
            {
                o.manifest = Some(d.to_string());
            }
        });
    }

    /// The records of every op solved, in definition order. The per-file listings are moved
    /// into them (a 100,000-file context's listing is tens of MiB), so a second call has
    /// none.
    pub(crate) fn take_steps(&self, def: &Definition) -> Vec<StepRecord> {
        let Ok(mut ops) = self.ops.lock() else {
            return Vec::new();
        };
        let mut reads: BTreeMap<usize, Reads> = ops
            .iter_mut()
            .map(|(&i, o)| (i, std::mem::take(&mut o.reads)))
            .collect();
        let ops = &*ops;
        let name = |id: OpId| {
            def.locations
                .get(id.0)
                .map_or_else(|| format!("op {}", id.0), |l| l.name.clone())
        };
        // A source stage by its name: its last step's `[builder 4/4]` changes whenever the
        // stage gains an instruction, which says nothing about this step.
        let source_name = |id: OpId| {
            let n = name(id);
            match Place::of(&n).stage {
                Some(stage) => format!("stage {stage}"),
                None => n,
            }
        };
        let mut steps = Vec::new();
        for (&i, obs) in ops.iter() {
            let (Some(op), Some(key)) = (def.ops.get(i), &obs.key) else {
                continue;
            };
            let parent = base_of(op).map(|b| ParentRecord {
                name: name(b),
                key: ops
                    .get(&b.0)
                    .and_then(|o| o.key.clone())
                    .unwrap_or_default(),
            });
            let image = match (op, &obs.manifest) {
                (Op::Source(Source::Image { reference, .. }), Some(d)) => Some(ImageRecord {
                    reference: reference.clone(),
                    digest: d.clone(),
                }),
                _ => None,
            };
            let reads = read_sources(op)
                .into_iter()
                .zip(reads.remove(&i).unwrap_or_default())
                .map(|(src, (digest, files))| ContentRead {
                    from: name(src),
                    local: match def.ops.get(src.0) {
                        Some(Op::Source(Source::Local { name })) => Some(name.clone()),
                        _ => None,
                    },
                    digest,
                    files,
                })
                .collect();
            steps.push(StepRecord {
                op: i,
                name: name(OpId(i)),
                source: matches!(op, Op::Source(_)),
                params: params(op, &source_name),
                env: match op {
                    Op::Exec(x) => x
                        .env
                        .iter()
                        .map(|kv| {
                            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                            (k.to_owned(), v.to_owned())
                        })
                        .collect(),
                    _ => BTreeMap::new(),
                },
                parent,
                image,
                reads,
                key: key.clone(),
                ran: obs.ran,
            });
        }
        steps
    }
}

fn base_of(op: &Op) -> Option<OpId> {
    match op {
        Op::Source(_) => None,
        Op::File(f) => Some(f.base),
        Op::Exec(x) => Some(x.base),
    }
}

/// The sources whose content the solver hashes into the key, in the order it hashes them.
fn read_sources(op: &Op) -> Vec<OpId> {
    match op {
        Op::Source(_) => Vec::new(),
        Op::File(f) => f
            .actions
            .iter()
            .filter_map(|a| match a {
                FileAction::Copy { source, .. } => Some(*source),
                _ => None,
            })
            .collect(),
        Op::Exec(x) => x
            .mounts
            .iter()
            .filter_map(|m| match m {
                ExecMount::Bind { source, .. } => Some(*source),
                _ => None,
            })
            .collect(),
    }
}

/// Where the record of builds of `dockerfile` (its identity, see [`BuildRecord::dockerfile`])
/// and `target` lives in the store at `root`.
pub fn record_path(root: &Path, dockerfile: &str, target: &str) -> PathBuf {
    let mut h = Sha256::new();
    h.update(dockerfile.as_bytes());
    h.update([0]);
    h.update(target.as_bytes());
    root.join("explain")
        .join(format!("{}.json", hex::encode(h.finalize())))
}

/// Why an explain record could not be read or written; it names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Reading or writing the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The record file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The record does not parse or encode.
    #[error("{}: {source}", path.display())]
    Json {
        /// The record file.
        path: std::path::PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// Writing it into place failed.
    #[error(transparent)]
    Write(#[from] crate::export::ExportError),
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> RecordError {
    let path = path.to_path_buf();
    move |source| RecordError::Io { path, source }
}

fn json_at(path: &Path) -> impl FnOnce(serde_json::Error) -> RecordError {
    let path = path.to_path_buf();
    move |source| RecordError::Json { path, source }
}

/// The record at `path`; `None` when there is none or it is of another version.
pub fn load(path: &Path) -> Result<Option<BuildRecord>, RecordError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_at(path)(e)),
    };
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    match serde_json::from_slice::<Version>(&bytes) {
        Ok(v) if v.version == RECORD_VERSION => {
            let mut record: BuildRecord = serde_json::from_slice(&bytes).map_err(json_at(path))?;
            listings::load(path, &mut record);
            Ok(Some(record))
        }
        Ok(_) => Ok(None),
        Err(e) => Err(json_at(path)(e)),
    }
}

/// Writes `record` to `path` through a temp file, fsync and rename (its reads' listings go
/// beside it, see `listings`): a reader sees the old record or the new one, never half of
/// one (concurrent builds: the last one wins).
pub fn save(
    path: &Path,
    record: &BuildRecord,
    redactor: &crate::secrets::Redactor,
) -> Result<(), RecordError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_at(dir))?;
    // The listings first: a record never names a listing that was not written.
    listings::save(path, record, redactor)?;
    // Build args and environments are recorded: a secret value among them never is. With
    // no secrets the record is written as it is, without a JSON tree of it in between.
    let bytes = redacted_json(record, redactor, path)?;
    // A rebuild that changed nothing writes nothing (and waits on no fsync).
    if same_content(path, &bytes) {
        return Ok(());
    }
    Ok(crate::export::write_atomic(path, &bytes)?)
}

/// Whether the file at `path` holds exactly `bytes`, read a block at a time (a record can be
/// tens of MiB).
fn same_content(path: &Path, bytes: &[u8]) -> bool {
    use std::io::Read as _;
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    if file.metadata().map(|m| m.len()).ok() != Some(bytes.len() as u64) {
        return false;
    }
    let mut block = vec![0u8; 64 * 1024];
    let mut rest = bytes;
    while !rest.is_empty() {
        let want = rest.len().min(block.len());
        if file.read_exact(&mut block[..want]).is_err() || block[..want] != rest[..want] {
            return false;
        }
        rest = &rest[want..];
    }
    true
}

#[cfg(test)]
mod tests;

/// `value` as JSON with every secret value masked; with no secrets, written as it is, without
/// a JSON tree of it in between.
fn redacted_json<T: Serialize>(
    value: &T,
    redactor: &crate::secrets::Redactor,
    path: &Path,
) -> Result<Vec<u8>, RecordError> {
    if redactor.is_empty() {
        return serde_json::to_vec(value).map_err(json_at(path));
    }
    let mut tree = serde_json::to_value(value).map_err(json_at(path))?;
    redactor.redact_json(&mut tree);
    serde_json::to_vec(&tree).map_err(json_at(path))
}
