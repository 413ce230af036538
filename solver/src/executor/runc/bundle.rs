//! The OCI bundle of one run, a private directory under the executor's bundle root:
//!
//! ```text
//! kiln-tmp-<owner>-<n>.runc/ also the container id (owner: see fsutil::owner)
//!   config.json             see config.rs
//!   hosts, resolv.conf      bind-mounted read-only over /etc
//!   runc.log                runc's own messages (--log, json), told apart from the step's
//!   state/                  runc --root: nothing shared with other runc users or runs
//!   rootfs/                 the overlay mount point (mounted only in a private mount namespace)
//!   layers/                 the cwd of the overlay mount, so its options name layers briefly:
//!     0, 1, …               symlinks to the lowerdirs, top-most first
//!     s/                    the stub layer, bottom-most (below)
//!     u, w                  symlinks to the upperdir and workdir
//! ```
//!
//! Overlay's option string is limited to one page; absolute layer paths of ~80 bytes would cap
//! a step at ~50 layers. Short relative names resolved from the mounting thread's own cwd
//! (overlay follows the symlinks at mount time) keep 500 layers — overlay's maximum — under
//! 2 KiB, and no path needs escaping for `:` or `,`.
//!
//! The **stub layer** holds an empty file or directory at every mount point the container
//! needs (`/proc`, `/dev`, `/sys`, `/etc/hosts`, `/etc/resolv.conf`, the step's own mounts).
//! Lying below every real layer it only shows where the image has nothing, and then runc finds
//! its mount points there instead of creating them in the upperdir: a step on `scratch` or an
//! image without `/etc/hosts` leaves no mount-point litter in its layer diff.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use super::paths;
use crate::executor::{ExecError, ExecSpec, MountSpec};

/// Overlay reads at most one page of options.
const MAX_OPTIONS: usize = 4095;

/// Used when the host has no readable `/etc/resolv.conf` (Docker's fallback).
const DEFAULT_RESOLV_CONF: &str = "nameserver 8.8.8.8\nnameserver 8.8.4.4\n";

/// What a mount point has to be before something is mounted on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
}

/// One run's bundle directory; see the module docs for its layout.
#[derive(Debug)]
pub(super) struct Bundle {
    dir: PathBuf,
    id: String,
    lowers: usize,
    /// Mount points, relative to the rootfs.
    stubs: Vec<(PathBuf, Kind)>,
}

impl Bundle {
    /// Creates a fresh bundle for `spec` under `root` (created if missing). On error nothing
    /// is left behind.
    pub(super) fn create(root: &Path, spec: &ExecSpec) -> Result<Self, ExecError> {
        fs::create_dir_all(root).map_err(|e| setup(root, e))?;
        let (dir, id) = fresh_dir(root)?;
        let bundle = Bundle {
            dir,
            id,
            lowers: spec.lowerdirs.len(),
            stubs: stubs(spec),
        };
        if let Err(e) = bundle.populate(spec) {
            // Nothing is mounted yet, so removing recursively cannot reach a layer.
            let _ = fs::remove_dir_all(&bundle.dir);
            return Err(e);
        }
        Ok(bundle)
    }

    /// The bundle directory (runc's `--bundle`).
    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The container id, unique on this host while the bundle exists.
    pub(super) fn id(&self) -> &str {
        &self.id
    }

    /// The overlay mount point.
    pub(super) fn rootfs(&self) -> PathBuf {
        self.dir.join(super::config::ROOTFS)
    }

    /// runc's `--root`.
    pub(super) fn state(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// runc's `--log`.
    pub(super) fn log(&self) -> PathBuf {
        self.dir.join("runc.log")
    }

    /// Where `config.json` goes.
    pub(super) fn config(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// Becomes the container's `/etc/hosts`.
    pub(super) fn hosts(&self) -> PathBuf {
        self.dir.join("hosts")
    }

    /// Becomes the container's `/etc/resolv.conf`.
    pub(super) fn resolv_conf(&self) -> PathBuf {
        self.dir.join("resolv.conf")
    }

    /// The directory the overlay options are relative to.
    pub(super) fn layers(&self) -> PathBuf {
        self.dir.join("layers")
    }

    /// The overlay options, relative to [`Bundle::layers`]. Renamed directories and metadata-only
    /// copy-ups are turned off whatever the kernel's defaults, so the upperdir stays a plain diff
    /// (the sandbox passes the same). `volatile` (Linux 5.10+) skips syncing the whole upper
    /// filesystem at unmount: the diff is archived, and the archive synced, right after.
    pub(super) fn overlay_options(&self, volatile: bool) -> Result<String, ExecError> {
        let mut lower: Vec<String> = (0..self.lowers).map(|i| i.to_string()).collect();
        lower.push("s".to_owned());
        let mut options = format!(
            "lowerdir={},upperdir=u,workdir=w,{}",
            lower.join(":"),
            crate::fsutil::userns::overlay_diff_options()
        );
        if volatile {
            options.push_str(",volatile");
        }
        if options.len() > MAX_OPTIONS {
            return Err(ExecError::Setup(format!(
                "{} lower layers do not fit in overlay's mount options",
                self.lowers
            )));
        }
        Ok(options)
    }

    /// Removes from `upper` the mount points runc had to create after all (the stub layer was
    /// hidden: a whiteout, an opaque directory, a symlinked parent). They are still empty,
    /// having been covered by a mount all along. Their parents stay: the step may have written
    /// there.
    pub(super) fn remove_stubs(&self, upper: &Path) -> io::Result<()> {
        for (rel, kind) in &self.stubs {
            let path = upper.join(rel);
            let meta = match fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            match kind {
                Kind::File if meta.is_file() && meta.len() == 0 => fs::remove_file(&path)?,
                Kind::Dir if meta.is_dir() && fs::read_dir(&path)?.next().is_none() => {
                    fs::remove_dir(&path)?
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Deletes the bundle. Must run in kiln's own mount namespace, where `rootfs` was never a
    /// mount point: it is removed first and alone, so a rootfs that somehow holds files (a
    /// mounted overlay) stops the removal instead of being emptied into the layers below.
    pub(super) fn remove(&self) -> io::Result<()> {
        match fs::remove_dir(self.rootfs()) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        fs::remove_dir_all(&self.dir)
    }

    /// Writes everything but `config.json`.
    fn populate(&self, spec: &ExecSpec) -> Result<(), ExecError> {
        let mkdir = |p: PathBuf| fs::create_dir(&p).map_err(|e| setup(&p, e));
        mkdir(self.state())?;
        mkdir(self.rootfs())?;
        mkdir(self.layers())?;
        let layers = self.layers();
        let stub_root = layers.join("s");
        mkdir(stub_root.clone())?;
        let link = |target: &Path, name: &str| {
            let at = layers.join(name);
            // A relative target would resolve against `layers/`, not kiln's cwd.
            let target = std::path::absolute(target).map_err(|e| setup(target, e))?;
            symlink(&target, &at).map_err(|e| setup(&at, e))
        };
        for (i, lower) in spec.lowerdirs.iter().enumerate() {
            link(lower, &i.to_string())?;
        }
        link(&spec.upperdir, "u")?;
        link(&spec.workdir, "w")?;
        for (rel, kind) in &self.stubs {
            // Best effort: a stub that cannot be made (a file where a directory is needed)
            // is created by runc in the upperdir instead, and removed by `remove_stubs`.
            let _ = make_stub(&stub_root, rel, *kind);
        }
        let hosts = hosts_file(&spec.hostname);
        fs::write(self.hosts(), hosts).map_err(|e| setup(&self.hosts(), e))?;
        let resolv = fs::read("/etc/resolv.conf")
            .ok()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| DEFAULT_RESOLV_CONF.as_bytes().to_vec());
        fs::write(self.resolv_conf(), resolv).map_err(|e| setup(&self.resolv_conf(), e))
    }
}

/// A new, empty, private directory under `root`, and its name.
fn fresh_dir(root: &Path) -> Result<(PathBuf, String), ExecError> {
    // Named after its owner, so a bundle a killed kiln (and its watchdog) left is recognized
    // as stale and removed by the next kiln (`executor::sweep_stale`).
    let id = crate::fsutil::owner::temp_name("runc");
    let dir = root.join(&id);
    match fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => Ok((dir, id)),
        Err(e) => Err(setup(&dir, e)),
    }
}

/// Every mount point of the container, relative to its root.
fn stubs(spec: &ExecSpec) -> Vec<(PathBuf, Kind)> {
    let mut out: Vec<(PathBuf, Kind)> = vec![
        ("proc".into(), Kind::Dir),
        ("dev".into(), Kind::Dir),
        ("sys".into(), Kind::Dir),
        ("etc/hosts".into(), Kind::File),
        ("etc/resolv.conf".into(), Kind::File),
    ];
    for m in &spec.mounts {
        let (target, kind) = match m {
            MountSpec::Bind { source, target, .. } => {
                let is_dir = fs::metadata(source).map(|m| m.is_dir()).unwrap_or(true);
                (target, if is_dir { Kind::Dir } else { Kind::File })
            }
            MountSpec::Tmpfs { target, .. } => (target, Kind::Dir),
        };
        let rel = paths::relative(target);
        if !rel.as_os_str().is_empty() {
            out.push((rel, kind));
        }
    }
    out
}

/// An empty `kind` at `root/rel`, parents included, with the modes runc would give them
/// (whatever kiln's umask): a step that writes into a stub directory copies it up into its diff.
fn make_stub(root: &Path, rel: &Path, kind: Kind) -> io::Result<()> {
    let depth = rel.components().count();
    let mut at = root.to_path_buf();
    for (i, c) in rel.components().enumerate() {
        at.push(c);
        let (made, mode) = if i + 1 == depth && kind == Kind::File {
            let made = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&at)
                .map(drop);
            (made, 0o644)
        } else {
            (fs::create_dir(&at), 0o755)
        };
        match made {
            Ok(()) => fs::set_permissions(&at, fs::Permissions::from_mode(mode))?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The container's `/etc/hosts`: loopback names and its own hostname.
fn hosts_file(hostname: &str) -> String {
    let own = if hostname.is_empty() {
        String::new()
    } else {
        format!(" {hostname}")
    };
    format!("127.0.0.1\tlocalhost{own}\n::1\tlocalhost ip6-localhost ip6-loopback\n")
}

/// An I/O error while preparing `path`.
fn setup(path: &Path, e: io::Error) -> ExecError {
    ExecError::Setup(format!("{}: {e}", path.display()))
}
