//! A RUN's mounts made ready for the executor: binds of stages and contexts (a private copy
//! when `rw`), cache mounts (shared, private or locked; seeded `from` a stage), tmpfs,
//! secrets and SSH agents as private files and sockets, inline files.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kiln_llb::{CacheSharing, ExecMount, OpId};

use crate::executor::MountSpec;
use crate::solve::step_error::{StepError, io_err};
use crate::solve::{Inner, OpResult};

/// What a step holds until its process ends: cache-mount locks and SSH agent relays. Only
/// dropping them matters (the lock is released, the relay stops).
pub(super) enum StepGuard {
    Lock(#[allow(dead_code)] fs::File),
    Ssh(#[allow(dead_code)] super::ssh_proxy::SshProxy),
}

#[allow(clippy::too_many_arguments)] // each out-parameter collects one kind of result
pub(super) fn prepare_mount(
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
        layers => Ok(super::rootfs::rootfs_of(inner, layers)?
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
