//! Running an exec op (RUN): the base layers become overlay lowerdirs, mounts are prepared
//! (bind, cache, tmpfs, secret, ssh, inline files), the executor runs the step, and the
//! upperdir — minus the stubs created for mount points — is written as one layer. Secret
//! values are never logged: output lines are redacted before they reach progress.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use kiln_llb::{CacheSharing, ExecMount, ExecOp, NetworkMode, OpId};

use super::step_error::{StepError, io_err};
use super::{Event, EventKind, Inner, LayerRecord, OpResult};
use crate::executor::{ExecSpec, ExitStatus, MountSpec, Network, OutputSink};

/// How many trailing output lines a failure message shows.
const TAIL_LINES: usize = 20;

/// Forwards output to progress, line by line, with secrets redacted, keeping a tail.
struct Sink<'a> {
    inner: &'a Inner,
    vertex: usize,
    name: String,
    state: Mutex<SinkState>,
}

#[derive(Default)]
struct SinkState {
    partial: [Vec<u8>; 2],
    tail: std::collections::VecDeque<String>,
}

impl Sink<'_> {
    fn redact(&self, line: &[u8]) -> String {
        let text = String::from_utf8_lossy(line);
        self.inner.redactor.redact(&text).into_owned()
    }

    fn emit(&self, state: &mut SinkState, line: &[u8]) {
        let text = self.redact(line);
        state.tail.push_back(text.clone());
        if state.tail.len() > TAIL_LINES {
            state.tail.pop_front();
        }
        self.inner.progress.send(Event::new(
            self.vertex,
            self.name.clone(),
            EventKind::Log(text),
        ));
    }

    fn flush(&self) -> Vec<String> {
        let Ok(mut st) = self.state.lock() else {
            return Vec::new();
        };
        for i in 0..2 {
            let rest = std::mem::take(&mut st.partial[i]);
            if !rest.is_empty() {
                self.emit(&mut st, &rest);
            }
        }
        st.tail.iter().cloned().collect()
    }
}

impl OutputSink for Sink<'_> {
    fn write(&self, stream: u8, data: &[u8]) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        let i = usize::from(stream == 2);
        st.partial[i].extend_from_slice(data);
        while let Some(pos) = st.partial[i].iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = st.partial[i].drain(..=pos).collect();
            self.emit(&mut st, &line[..line.len() - 1]);
        }
    }
}

/// Runs `exec` over its base and returns the layer it produced.
pub(super) fn run_exec_op(
    inner: &Inner,
    id: OpId,
    exec: &ExecOp,
    inputs: &BTreeMap<OpId, Arc<OpResult>>,
) -> Result<LayerRecord, StepError> {
    let executor = inner.opts.executor.clone().ok_or_else(|| {
        StepError::Invalid("RUN needs an executor, and none is configured".to_owned())
    })?;
    let base = &inputs[&exec.base];
    let lowerdirs = lower_dirs(inner, base)?;
    let scratch = inner.temp_dir("run")?;
    let upper = scratch.path().join("upper");
    let work = scratch.path().join("work");
    for d in [&upper, &work] {
        fs::create_dir(d).map_err(io_err(d.display()))?;
    }
    let base_rootfs = super::exec::rootfs_of(inner, base)?;
    let (uid, gid) = crate::copy::exec_user(base_rootfs.as_deref(), &exec.user)?;
    let additional_gids = crate::copy::supplementary_gids(base_rootfs.as_deref(), &exec.user)
        .map_err(|e| StepError::Invalid(format!("USER {}: {e}", exec.user)))?;
    let mut env = exec.env.clone();
    // Proxies come after the step's own variables, which win (BuildKit appends them and the
    // process sees the first of two).
    for proxy in &exec.proxy_env {
        let key = proxy.split('=').next().unwrap_or_default();
        if !env.iter().any(|e| e.split('=').next() == Some(key)) {
            env.push(proxy.clone());
        }
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", default_home(inner, base, uid)?));
    }
    let mut mounts = Vec::new();
    let mut locks = Vec::new();
    for (n, m) in exec.mounts.iter().enumerate() {
        prepare_mount(
            inner,
            m,
            n,
            inputs,
            scratch.path(),
            &mut mounts,
            &mut env,
            &mut locks,
        )?;
    }
    let spec = ExecSpec {
        lowerdirs: lowerdirs.clone(),
        upperdir: upper.clone(),
        workdir: work,
        args: exec.args.clone(),
        env,
        cwd: exec.cwd.clone(),
        uid,
        gid,
        additional_gids,
        hostname: exec
            .hostname
            .clone()
            .unwrap_or_else(|| "buildkitsandbox".to_owned()),
        network: match exec.network {
            NetworkMode::Host => Network::Host,
            NetworkMode::None => Network::None,
        },
        mounts,
    };
    let sink = Sink {
        inner,
        vertex: id.0,
        name: inner.name(id),
        state: Mutex::new(SinkState::default()),
    };
    let status = executor.run(&spec, &sink);
    let tail = sink.flush();
    drop(locks);
    let status = status?;
    if status != ExitStatus::Code(0) {
        let how = match status {
            ExitStatus::Code(c) => format!("exit code: {c}"),
            ExitStatus::Signal(s) => format!("killed by signal {s}"),
        };
        return Err(StepError::ProcessFailed {
            command: exec.args.join(" "),
            how,
            tail,
        });
    }
    remove_mount_stubs(&upper, &lowerdirs, &exec.mounts)?;
    prune_unchanged_dirs(&upper, &upper, &lowerdirs)?;
    super::exec::store_layer(inner, &upper)
}

/// The diff id of a layer with no entries (1024 zero bytes): it changes nothing.
const EMPTY_LAYER: &str = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

/// The base's layers as extracted snapshot directories, top-most first. Overlayfs refuses a
/// directory that appears twice (ELOOP), which identical layers — most often empty ones from
/// steps like `RUN true` — would cause: empty layers are left out, and of identical layers
/// the top-most is kept (re-applying the same diff higher up covers the lower copy).
fn lower_dirs(inner: &Inner, base: &OpResult) -> Result<Vec<PathBuf>, StepError> {
    inner.ensure_local(base.layers()).map_err(StepError::from)?;
    let mut dirs: Vec<PathBuf> = Vec::new();
    for l in base.layers().iter().rev() {
        if l.diff_id.as_ref() == EMPTY_LAYER {
            continue;
        }
        let diff_id = l.diff_id.clone();
        let blob = l.digest.clone();
        let content = inner.store.content().clone();
        let dir = inner
            .snapshots
            .layer_dir(&diff_id, move || {
                content
                    .open_blob(&blob)
                    .map_err(|e| crate::snapshot::SnapshotError::other(e.to_string()))
            })
            .map_err(|e| StepError::Invalid(format!("extracting layer {diff_id}: {e}")))?;
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    Ok(dirs)
}

/// HOME as runc sets it when the environment has none (and so as BuildKit and buildah give
/// it to RUN): the home of `uid`'s passwd entry in the base, else `/`.
fn default_home(inner: &Inner, base: &OpResult, uid: u32) -> Result<String, StepError> {
    let rootfs = super::exec::rootfs_of(inner, base)?;
    let entry = crate::copy::passwd_by_uid(rootfs.as_deref(), uid)?;
    Ok(entry
        .and_then(|fields| fields.get(5).cloned())
        .filter(|home| !home.trim().is_empty())
        .unwrap_or_else(|| "/".to_owned()))
}

/// What a step holds until its process ends: cache-mount locks and SSH agent relays. Only
/// dropping them matters (the lock is released, the relay stops).
enum StepGuard {
    Lock(#[allow(dead_code)] fs::File),
    Ssh(#[allow(dead_code)] super::ssh_proxy::SshProxy),
}

#[allow(clippy::too_many_arguments)] // each out-parameter collects one kind of result
fn prepare_mount(
    inner: &Inner,
    m: &ExecMount,
    n: usize,
    inputs: &BTreeMap<OpId, Arc<OpResult>>,
    scratch: &Path,
    mounts: &mut Vec<MountSpec>,
    env: &mut Vec<String>,
    locks: &mut Vec<StepGuard>,
) -> Result<(), StepError> {
    match m {
        ExecMount::Bind {
            source,
            selector,
            target,
            readonly,
        } => {
            let root = source_root(inner, &inputs[source])?;
            let path = inside_root(&root, selector).ok_or_else(|| {
                StepError::Invalid(format!("bind mount source {selector}: not found"))
            })?;
            let source = if *readonly {
                path
            } else {
                // Writes to a rw bind mount are discarded: give the step a private copy.
                let copy = scratch.join(format!("bind-{n}"));
                copy_tree(&path, &copy)?;
                copy
            };
            mounts.push(MountSpec::Bind {
                source,
                target: target.clone(),
                readonly: *readonly,
            });
        }
        ExecMount::Cache {
            id,
            target,
            sharing,
            mode,
            uid,
            gid,
            readonly,
            seed,
        } => {
            let seed_from = seed.as_ref().map(|(src, _)| inputs[src].key());
            let dir = cache_dir(inner, &cache_identity(id, seed_from, *mode, *uid, *gid));
            let (mode, uid, gid) = (mode.unwrap_or(0o755), uid.unwrap_or(0), gid.unwrap_or(0));
            let data = dir.join("data");
            if !data.exists() {
                fs::create_dir_all(&dir).map_err(io_err(format!("cache {id}")))?;
                let fresh = dir.join(format!("new-{}", std::process::id()));
                let _ = fs::remove_dir_all(&fresh);
                match seed {
                    Some((src, path)) => {
                        let root = source_root(inner, &inputs[src])?;
                        let from = inside_root(&root, path).ok_or_else(|| {
                            StepError::Invalid(format!("cache {id}: source {path}: not found"))
                        })?;
                        copy_tree(&from, &fresh)?;
                    }
                    None => fs::create_dir_all(&fresh).map_err(io_err(format!("cache {id}")))?,
                }
                fs::set_permissions(&fresh, fs::Permissions::from_mode(mode))
                    .map_err(io_err(format!("cache {id}")))?;
                std::os::unix::fs::lchown(&fresh, Some(uid), Some(gid))
                    .map_err(io_err(format!("cache {id}")))?;
                // Another build may have created it meanwhile: theirs wins.
                if fs::rename(&fresh, &data).is_err() {
                    let _ = fs::remove_dir_all(&fresh);
                }
            }
            let source = match sharing {
                CacheSharing::Shared => data,
                CacheSharing::Locked => {
                    locks.push(StepGuard::Lock(lock(&dir)?));
                    data
                }
                CacheSharing::Private => match lock_nonblocking(&dir)? {
                    Some(l) => {
                        locks.push(StepGuard::Lock(l));
                        data
                    }
                    None => {
                        let private = scratch.join(format!("cache-{n}"));
                        copy_tree(&data, &private)?;
                        private
                    }
                },
            };
            mounts.push(MountSpec::Bind {
                source,
                target: target.clone(),
                readonly: *readonly,
            });
        }
        ExecMount::Tmpfs { target, size } => mounts.push(MountSpec::Tmpfs {
            target: target.clone(),
            size: *size,
        }),
        ExecMount::Secret {
            id,
            target,
            env: env_name,
            required,
            mode,
            uid,
            gid,
        } => {
            let Some(value) = inner.opts.secrets.get(id) else {
                if *required {
                    return Err(StepError::Invalid(format!(
                        "secret {id}: not provided (use --secret id={id},src=PATH)"
                    )));
                }
                return Ok(());
            };
            if let Some(name) = env_name {
                env.push(format!("{name}={}", String::from_utf8_lossy(value)));
            }
            if let Some(target) = target {
                let file = scratch.join(format!("secret-{n}"));
                write_private(&file, value, *mode, *uid, *gid)?;
                mounts.push(MountSpec::Bind {
                    source: file,
                    target: target.clone(),
                    readonly: true,
                });
            }
        }
        ExecMount::Ssh {
            id,
            target,
            required,
            mode,
            uid,
            gid,
        } => {
            let Some(sock) = inner.opts.ssh.get(id) else {
                if *required {
                    return Err(StepError::Invalid(format!(
                        "ssh agent {id}: not provided (use --ssh {id})"
                    )));
                }
                return Ok(());
            };
            let relay = scratch.join(format!("ssh-{n}.sock"));
            let proxy = super::ssh_proxy::SshProxy::start(sock, &relay, *uid, *gid, *mode)
                .map_err(io_err(format!("ssh agent {id} ({})", sock.display())))?;
            locks.push(StepGuard::Ssh(proxy));
            mounts.push(MountSpec::Bind {
                source: relay,
                target: target.clone(),
                readonly: false,
            });
            env.push(format!("SSH_AUTH_SOCK={target}"));
        }
        ExecMount::Inline { target, data, mode } => {
            let file = scratch.join(format!("inline-{n}"));
            write_private(&file, data, *mode, 0, 0)?;
            mounts.push(MountSpec::Bind {
                source: file,
                target: target.clone(),
                readonly: true,
            });
        }
    }
    Ok(())
}

/// The directory a source state's files are in: a context root or a merged rootfs.
fn source_root(inner: &Inner, r: &OpResult) -> Result<PathBuf, StepError> {
    match r {
        OpResult::Dir { context, .. } => Ok(context.root().to_path_buf()),
        layers => Ok(super::exec::rootfs_of(inner, layers)?
            .unwrap_or_else(|| inner.store.root().join("tmp/empty"))),
    }
}

/// What tells one cache directory from another, as BuildKit keys them (`id` + ":" + the ID
/// of the state the cache starts from): the id; the seed's state, when `from=` gives one;
/// and the directory made for `uid`/`gid`/`mode` when any of them is given — BuildKit makes
/// it in a state of its own (`setCacheUIDGID`), so `uid=10` and no uid are two caches.
fn cache_identity(
    id: &str,
    seed: Option<&kiln_llb::CacheKey>,
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
) -> String {
    let mut key = id.to_owned();
    if let Some(seed) = seed {
        key.push_str(&format!("\0from={}", seed.0));
    }
    if mode.is_some() || uid.is_some() || gid.is_some() {
        key.push_str(&format!(
            "\0mkdir={:o},{},{}",
            mode.unwrap_or(0o755),
            uid.unwrap_or(0),
            gid.unwrap_or(0)
        ));
    }
    key
}

fn cache_dir(inner: &Inner, id: &str) -> PathBuf {
    use sha2::{Digest as _, Sha256};
    let hex = hex::encode(Sha256::digest(id.as_bytes()));
    inner.store.root().join("cache-mounts").join(hex)
}

fn lock(dir: &Path) -> Result<fs::File, StepError> {
    let f = open_lock(dir)?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| io_err(dir.display())(e.into()))?;
    Ok(f)
}

/// The lock when it is free, `None` when another step holds it.
fn lock_nonblocking(dir: &Path) -> Result<Option<fs::File>, StepError> {
    let f = open_lock(dir)?;
    match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(f)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(io_err(dir.display())(e.into())),
    }
}

fn open_lock(dir: &Path) -> Result<fs::File, StepError> {
    fs::create_dir_all(dir).map_err(io_err(dir.display()))?;
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))
        .map_err(io_err(dir.display()))
}

fn write_private(path: &Path, data: &[u8], mode: u32, uid: u32, gid: u32) -> Result<(), StepError> {
    fs::write(path, data).map_err(io_err(path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_err(path.display()))?;
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(io_err(path.display()))
}

/// Where `path` of a mount source leads inside `root`, its symlinks resolved there (an image's
/// `/data -> /etc` is the image's `/etc`: binding the link itself would let mount(2) follow it
/// on the host). `None` when it does not exist.
fn inside_root(root: &Path, path: &str) -> Option<PathBuf> {
    let rel = crate::fsutil::root_path::resolve_path(root, Path::new(path.trim_start_matches('/')))
        .ok()??;
    Some(root.join(rel))
}

/// Copies a tree keeping modes, owners and symlinks (for rw binds and private caches).
fn copy_tree(from: &Path, to: &Path) -> Result<(), StepError> {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .map_err(io_err(format!("cp -a {}", from.display())))?;
    if status.success() {
        Ok(())
    } else {
        Err(StepError::Invalid(format!(
            "copying {} failed",
            from.display()
        )))
    }
}

/// Mount points the executor had to create in the overlay (and parents made only for them)
/// are not part of the step's result: BuildKit drops them from the diff too.
fn remove_mount_stubs(
    upper: &Path,
    lowers: &[PathBuf],
    mounts: &[ExecMount],
) -> Result<(), StepError> {
    let targets = mounts.iter().filter_map(|m| match m {
        ExecMount::Bind { target, .. }
        | ExecMount::Cache { target, .. }
        | ExecMount::Tmpfs { target, .. }
        | ExecMount::Ssh { target, .. }
        | ExecMount::Inline { target, .. } => Some(target.as_str()),
        ExecMount::Secret { target, .. } => target.as_deref(),
    });
    for target in targets {
        let mut rel = PathBuf::from(target.trim_start_matches('/'));
        loop {
            if rel.as_os_str().is_empty() || in_lowers(lowers, &rel) {
                break;
            }
            let p = upper.join(&rel);
            match fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => {
                    // Only an empty stub goes; a directory the step filled stays.
                    if fs::remove_dir(&p).is_err() {
                        break;
                    }
                }
                Ok(m) if m.len() == 0 => {
                    fs::remove_file(&p).map_err(io_err(p.display()))?;
                }
                _ => break,
            }
            if !rel.pop() {
                break;
            }
        }
    }
    Ok(())
}

fn in_lowers(lowers: &[PathBuf], rel: &Path) -> bool {
    lowers
        .iter()
        .any(|l| fs::symlink_metadata(l.join(rel)).is_ok())
}

/// Removes directories that overlay copied up (to hold a mount point, say) but that end the
/// step empty and identical to the lower directory they copy: they change nothing, and
/// keeping them would make the layer depend on how an executor placed its mount points.
/// Returns whether `dir` itself is now empty.
fn prune_unchanged_dirs(upper: &Path, dir: &Path, lowers: &[PathBuf]) -> Result<bool, StepError> {
    use std::os::unix::fs::MetadataExt as _;
    let entries = fs::read_dir(dir).map_err(io_err(dir.display()))?;
    let mut empty = true;
    for entry in entries {
        let entry = entry.map_err(io_err(dir.display()))?;
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).map_err(io_err(path.display()))?;
        if !meta.is_dir() || !prune_unchanged_dirs(upper, &path, lowers)? {
            empty = false;
            continue;
        }
        let Ok(rel) = path.strip_prefix(upper) else {
            empty = false;
            continue;
        };
        let opaque = ["trusted.overlay.opaque", "user.overlay.opaque"]
            .iter()
            .any(|name| xattr_present(&path, name));
        let lower = lowers
            .iter()
            .find_map(|l| fs::symlink_metadata(l.join(rel)).ok());
        let same = lower.is_some_and(|l| {
            l.is_dir()
                && l.mode() == meta.mode()
                && l.uid() == meta.uid()
                && l.gid() == meta.gid()
                && l.mtime() == meta.mtime()
                && l.mtime_nsec() == meta.mtime_nsec()
        });
        if same && !opaque {
            fs::remove_dir(&path).map_err(io_err(path.display()))?;
        } else {
            empty = false;
        }
    }
    Ok(empty)
}

fn xattr_present(path: &Path, name: &str) -> bool {
    rustix::fs::lgetxattr(path, name, &mut [0u8; 4]).is_ok()
}
