//! The child's script: every step the container process takes between `clone` and `execve`,
//! prepared in the parent as plain data ([`Op`]s holding ready `CString`s).
//!
//! The child of a multi-threaded parent must not allocate or take locks (another thread may
//! have held the allocator's lock at `clone` time), so everything that needs memory is built
//! here, before the fork. Ops are numbered: a failing child reports the index and the errno,
//! and the parent turns that into a message with [`Op::describe`].

use std::ffi::{CStr, CString};
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use seccompiler::BpfProgram;

use crate::executor::ExecError;

/// One `mount(2)` call.
#[derive(Debug)]
pub(super) struct Mount {
    pub source: Option<CString>,
    pub target: CString,
    pub fstype: Option<CString>,
    pub flags: MsFlags,
    pub data: Option<CString>,
}

impl Mount {
    /// A mount of a kernel filesystem (`proc`, `tmpfs`…) with options.
    pub(super) fn fs(fstype: &CStr, target: CString, flags: MsFlags, data: Option<&CStr>) -> Self {
        Mount {
            source: Some(fstype.to_owned()),
            target,
            fstype: Some(fstype.to_owned()),
            flags,
            data: data.map(CStr::to_owned),
        }
    }
}

/// Creates the missing components of a path (a mount target or the working directory).
#[derive(Debug)]
pub(super) struct Ensure {
    /// `/a`, `/a/b`, `/a/b/c`: every prefix of the path, outermost first.
    pub prefixes: Vec<CString>,
    /// The last component is a regular file (a bind target for a file), not a directory.
    pub file: bool,
    /// Report what was created so the parent can remove it from the layer afterwards
    /// (mount targets: BuildKit does the same), and keep the parent directory's times.
    pub stub: bool,
}

/// One step of the child's setup.
#[derive(Debug)]
pub(super) enum Op {
    /// stdin from /dev/null, stdout and stderr to the parent's pipes.
    Stdio {
        stdin: RawFd,
        stdout: RawFd,
        stderr: RawFd,
    },
    /// Joins the step's cgroup: writes `0` (this process) to each `cgroup.procs` file, before
    /// anything else, so every process of the step is counted.
    JoinCgroup(Vec<CString>),
    /// `unshare(2)` the namespaces that are not made at `clone` time.
    Unshare(CloneFlags),
    /// Cut mount propagation so nothing mounted here reaches the host.
    MakePrivate,
    /// `chdir(2)`, so overlay options can use short relative paths.
    Chdir(CString),
    /// A plain `mount(2)`.
    Mount(Mount),
    /// The container's root: overlay (or the copy fallback's bind). A failure here means
    /// "overlay unavailable"; `retry` drops options older kernels reject (`volatile`).
    RootMount {
        mount: Mount,
        retry: Option<CString>,
    },
    /// Opens a host path (`O_PATH`) into `slot`, for binding it after `pivot_root`.
    OpenSource { path: CString, slot: usize },
    /// `pivot_root` into this directory; the old root stays stacked until [`Op::DetachOldRoot`].
    PivotRoot(CString),
    /// Bind-mounts the file opened into `slot` at `target`, then remounts it with `remount`'s
    /// flags (`MS_NODEV` for everything from outside, `MS_RDONLY` for read-only binds); a
    /// device node bound from the host's /dev is not remounted.
    BindSource {
        slot: usize,
        target: CString,
        recursive: bool,
        remount: Option<MsFlags>,
    },
    /// Remounts the bind at `target` with `flags` (the copy fallback's root gets `MS_NODEV`).
    Remount { target: CString, flags: MsFlags },
    /// Creates missing path components.
    Ensure(Ensure),
    /// A character device node `path` (mode 0666) on the nodev /dev: inert itself, it is the
    /// mount point the host's node is bound onto, and what a directory listing shows (a
    /// plain file there would make `find /dev -type c` miss the device).
    DeviceNode { path: CString, rdev: u64 },
    /// A symbolic link `link` → `target`.
    Symlink { target: CString, link: CString },
    /// Hides a path: /dev/null over a file, a read-only tmpfs over a directory.
    Mask(CString),
    /// Makes a path a read-only bind of itself.
    Readonly(CString),
    /// Unmounts the host's root, stacked on ours since `pivot_root`.
    DetachOldRoot,
    /// `sethostname(2)` in the new UTS namespace.
    Hostname(CString),
    /// Brings `lo` up in the new network namespace.
    LoopbackUp,
    /// `chdir(2)` into the working directory (after [`Op::Ensure`] made it).
    Cwd(CString),
    /// Bounding set limited to `keep`; effective = permitted = `keep`, inheritable empty.
    Capabilities { keep: u64, last_cap: u32 },
    /// Supplementary groups, gid, uid (in that order: each needs the privilege the next drops).
    Identity {
        uid: u32,
        gid: u32,
        groups: Vec<u32>,
    },
    /// The process dies with its parent (kiln), so a killed kiln leaves no container behind.
    ParentDeathSignal,
    /// `PR_SET_NO_NEW_PRIVS`.
    NoNewPrivs,
    /// Seccomp filters, installed in order.
    Seccomp(Vec<BpfProgram>),
}

impl Op {
    /// What the op does, with the path it touches, for an error message.
    pub(super) fn describe(&self) -> String {
        match self {
            Op::Stdio { .. } => "redirecting stdin/stdout/stderr".into(),
            Op::JoinCgroup(files) => match files.first() {
                Some(f) => format!("joining the step's cgroup ({})", show(f)),
                None => "joining the step's cgroup".into(),
            },
            Op::Unshare(flags) => format!("unshare({flags:?})"),
            Op::MakePrivate => "making mounts private (mount --make-rprivate /)".into(),
            Op::Chdir(p) => format!("chdir {}", show(p)),
            Op::Mount(m) => describe_mount(m),
            Op::RootMount { mount, .. } => describe_mount(mount),
            Op::OpenSource { path, .. } => format!("opening {}", show(path)),
            Op::PivotRoot(p) => format!("pivot_root into {}", show(p)),
            Op::BindSource { target, .. } => format!("bind-mounting onto {}", show(target)),
            Op::Remount { target, .. } => format!("remounting {}", show(target)),
            Op::Ensure(e) => match e.prefixes.last() {
                Some(p) => format!("creating {}", show(p)),
                None => "creating /".into(),
            },
            Op::DeviceNode { path, .. } => format!("creating device {}", show(path)),
            Op::Symlink { link, .. } => format!("creating symlink {}", show(link)),
            Op::Mask(p) => format!("masking {}", show(p)),
            Op::Readonly(p) => format!("making {} read-only", show(p)),
            Op::DetachOldRoot => "unmounting the host root".into(),
            Op::Hostname(h) => format!("setting hostname {}", show(h)),
            Op::LoopbackUp => "bringing up lo".into(),
            Op::Cwd(p) => format!("entering working directory {}", show(p)),
            Op::Capabilities { .. } => "setting capabilities".into(),
            Op::Identity { uid, gid, groups } => {
                format!("switching to uid {uid}, gid {gid}, groups {groups:?}")
            }
            Op::ParentDeathSignal => "setting the parent-death signal".into(),
            Op::NoNewPrivs => "setting no_new_privs".into(),
            Op::Seccomp(_) => "installing the seccomp filter".into(),
        }
    }
}

fn describe_mount(m: &Mount) -> String {
    let fstype = m.fstype.as_deref().map_or("bind".into(), show);
    let mut text = format!("mounting {fstype} on {}", show(&m.target));
    if let Some(data) = &m.data {
        let data = show(data);
        // Overlay option strings run to a page; the start names the layers well enough.
        let cut: String = data.chars().take(240).collect();
        let ellipsis = if cut.len() < data.len() { "…" } else { "" };
        text.push_str(&format!(" ({cut}{ellipsis})"));
    }
    text
}

fn show(c: &CStr) -> String {
    c.to_string_lossy().into_owned()
}

/// Everything the child needs, built by the parent before `clone`.
#[derive(Debug)]
pub(super) struct ChildPlan {
    /// The setup steps, in order.
    pub ops: Vec<Op>,
    /// File descriptors the child opens with [`Op::OpenSource`]; -1 until then.
    pub slots: Vec<RawFd>,
    /// The descriptor the child opens on the host root before `pivot_root`; -1 until then.
    pub old_root: RawFd,
    /// The command.
    pub exec: ExecPlan,
}

/// argv, envp and the places argv[0] may be, resolved against the step's PATH.
#[derive(Debug)]
pub(super) struct ExecPlan {
    /// Full paths to try in order (execvp's rule: the first that is not missing wins).
    pub candidates: Vec<CString>,
    /// Keeps the strings `argv_ptrs` points into alive.
    _argv: Vec<CString>,
    /// Keeps the strings `env_ptrs` points into alive.
    _env: Vec<CString>,
    /// NULL-terminated pointer array for `execve`.
    pub argv_ptrs: Vec<*const nix::libc::c_char>,
    /// NULL-terminated pointer array for `execve`.
    pub env_ptrs: Vec<*const nix::libc::c_char>,
    /// The PATH searched, for the "not found" message.
    pub search_path: Option<String>,
}

/// PATH when the step's environment has none (BuildKit's and runc's default).
pub(super) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl ExecPlan {
    /// Prepares argv/envp and the PATH candidates for `args[0]`.
    pub(super) fn new(args: &[String], env: &[String]) -> Result<Self, ExecError> {
        let command = args.first().ok_or_else(|| ExecError::Start {
            command: String::new(),
            message: "empty command".into(),
        })?;
        let argv = args
            .iter()
            .map(|a| cstring(a, "argument"))
            .collect::<Result<Vec<_>, _>>()?;
        let envs = env
            .iter()
            .map(|e| cstring(e, "environment entry"))
            .collect::<Result<Vec<_>, _>>()?;
        let (candidates, search_path) = if command.contains('/') {
            (vec![cstring(command, "command")?], None)
        } else if command.is_empty() {
            return Err(ExecError::Start {
                command: command.clone(),
                message: "empty command".into(),
            });
        } else {
            let path = env
                .iter()
                .rev()
                .find_map(|e| e.strip_prefix("PATH="))
                .unwrap_or(DEFAULT_PATH)
                .to_owned();
            let mut list = Vec::new();
            for dir in path.split(':') {
                // POSIX: an empty PATH entry means the current directory.
                let dir = if dir.is_empty() { "." } else { dir };
                list.push(cstring(
                    &format!("{}/{command}", dir.trim_end_matches('/')),
                    "PATH entry",
                )?);
            }
            (list, Some(path))
        };
        let argv_ptrs = pointers(&argv);
        let env_ptrs = pointers(&envs);
        Ok(ExecPlan {
            candidates,
            _argv: argv,
            _env: envs,
            argv_ptrs,
            env_ptrs,
            search_path,
        })
    }
}

fn pointers(strings: &[CString]) -> Vec<*const nix::libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// A `CString` from text that must not hold NUL.
pub(super) fn cstring(text: &str, what: &str) -> Result<CString, ExecError> {
    CString::new(text).map_err(|_| ExecError::Setup(format!("{what} {text:?} contains a NUL byte")))
}

/// A `CString` from a host path.
pub(super) fn cpath(path: &Path) -> Result<CString, ExecError> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| ExecError::Setup(format!("path {} contains a NUL byte", path.display())))
}

/// The components of an absolute container path, `.` and `..` resolved lexically
/// (`..` never climbs above `/`, as in the container).
pub(super) fn container_components(path: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts
}

/// `/a`, `/a/b`, `/a/b/c` for a container path.
pub(super) fn prefixes(path: &str) -> Result<Vec<CString>, ExecError> {
    let mut out = Vec::new();
    let mut acc = String::new();
    for part in container_components(path) {
        acc.push('/');
        acc.push_str(part);
        out.push(cstring(&acc, "container path")?);
    }
    Ok(out)
}

/// The normalised absolute form of a container path.
pub(super) fn normalize(path: &str) -> String {
    let parts = container_components(path);
    if parts.is_empty() {
        "/".into()
    } else {
        format!("/{}", parts.join("/"))
    }
}
