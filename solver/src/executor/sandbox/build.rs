//! Turns an [`ExecSpec`] into the child's script ([`ChildPlan`]): which namespaces, which
//! mounts in which order, the identity and the hardening. The order matters and is explained
//! where it is not obvious; the child only follows it.

use std::ffi::{CStr, CString};
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use seccompiler::BpfProgram;

use super::masks::{MASKED_PATHS, READONLY_PATHS};
use super::overlay::OverlayPlan;
use super::plan::{ChildPlan, Ensure, ExecPlan, Mount, Op, cpath, cstring, normalize, prefixes};
use crate::executor::{ExecError, ExecSpec, MountSpec, Network};

/// How the container's root filesystem is made.
#[derive(Debug)]
pub(super) enum RootSource {
    /// An overlay mount of the step's layers.
    Overlay(OverlayPlan),
    /// A bind of a directory holding a merged copy of the layers (the fallback).
    Copy(PathBuf),
}

/// What the parent prepared for this run.
#[derive(Debug)]
pub(super) struct Context<'a> {
    /// Where the root is mounted before `pivot_root` (an empty directory in the temp dir).
    pub mount_point: &'a Path,
    /// How the root is made.
    pub root: &'a RootSource,
    /// The generated /etc/hosts.
    pub hosts: &'a Path,
    /// The generated /etc/resolv.conf.
    pub resolv: &'a Path,
    /// The child's ends: /dev/null, the stdout pipe, the stderr pipe.
    pub stdio: (RawFd, RawFd, RawFd),
    /// The highest capability number the kernel knows.
    pub last_cap: u32,
    /// The compiled seccomp filters.
    pub filters: &'a [BpfProgram],
    /// The `cgroup.procs` files of the step's cgroup (none when the host gives kiln none).
    pub cgroup_procs: &'a [PathBuf],
}

/// Docker's default capability set: CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID,
/// SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP.
pub(super) const DOCKER_DEFAULT_CAPS: u64 = 0x0000_0000_a804_25fb;

/// The hostname when the spec leaves it empty.
pub(super) const DEFAULT_HOSTNAME: &str = "kiln";

/// The device nodes a step may use, bound from the host's /dev (every other device node —
/// one a layer carries, or one the step makes with mknod — sits on a `nodev` mount and cannot
/// be opened: the device cgroup's effect without a device cgroup, also on cgroup v2 and
/// rootless hosts).
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Size of the /dev and /dev/shm tmpfs mounts (runc's and Docker's 64 MiB).
const DEV_TMPFS: &CStr = c"mode=755,size=65536k";
const SHM_TMPFS: &CStr = c"mode=1777,size=65536k";

/// Builds the child's script for `spec`.
pub(super) fn build(spec: &ExecSpec, ctx: &Context<'_>) -> Result<ChildPlan, ExecError> {
    let exec = ExecPlan::new(&spec.args, &spec.env)?;
    let mut b = Builder {
        ops: Vec::new(),
        slots: 0,
    };
    if !ctx.cgroup_procs.is_empty() {
        let files = ctx
            .cgroup_procs
            .iter()
            .map(|p| cpath(p))
            .collect::<Result<Vec<_>, _>>()?;
        b.op(Op::JoinCgroup(files));
    }
    let (stdin, stdout, stderr) = ctx.stdio;
    b.op(Op::Stdio {
        stdin,
        stdout,
        stderr,
    });

    // The PID namespace is made by `clone` itself (a process cannot enter a new one); the
    // rest are unshared here, in the child, so the parent's namespaces are never touched.
    let mut flags = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
    if spec.network == Network::None {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    b.op(Op::Unshare(flags));
    b.op(Op::MakePrivate);
    b.root(ctx)?;

    // Host-side sources are opened before `pivot_root` hides the host; they are bound after
    // it, so every target resolves inside the container (symlinks cannot point outside).
    let hosts = b.open(ctx.hosts)?;
    let resolv = b.open(ctx.resolv)?;
    let mut bind_slots = Vec::new();
    for m in &spec.mounts {
        if let MountSpec::Bind { source, .. } = m {
            bind_slots.push(b.open(source)?);
        }
    }
    let mut device_slots = Vec::new();
    for name in DEVICES {
        device_slots.push((name, b.open(&Path::new("/dev").join(name))?));
    }
    b.op(Op::PivotRoot(cpath(ctx.mount_point)?));

    b.kernel_filesystems(&device_slots)?;
    b.file_bind(hosts, "/etc/hosts")?;
    b.file_bind(resolv, "/etc/resolv.conf")?;
    b.user_mounts(spec, &bind_slots)?;
    b.op(Op::DetachOldRoot);

    let hostname = if spec.hostname.is_empty() {
        DEFAULT_HOSTNAME
    } else {
        &spec.hostname
    };
    b.op(Op::Hostname(cstring(hostname, "hostname")?));
    if spec.network == Network::None {
        b.op(Op::LoopbackUp);
    }
    // BuildKit creates a missing working directory (owned by root) and keeps it in the layer.
    let cwd = normalize(&spec.cwd);
    b.op(Op::Ensure(Ensure {
        prefixes: prefixes(&cwd)?,
        file: false,
        stub: false,
    }));
    b.op(Op::Cwd(cstring(&cwd, "working directory")?));

    b.op(Op::Capabilities {
        keep: DOCKER_DEFAULT_CAPS,
        last_cap: ctx.last_cap,
    });
    b.op(Op::Identity {
        uid: spec.uid,
        gid: spec.gid,
        groups: spec.additional_gids.clone(),
    });
    // After the identity switch: changing credentials clears the parent-death signal.
    b.op(Op::ParentDeathSignal);
    b.op(Op::NoNewPrivs);
    b.op(Op::Seccomp(ctx.filters.to_vec()));

    Ok(ChildPlan {
        ops: b.ops,
        slots: vec![-1; b.slots],
        old_root: -1,
        exec,
    })
}

struct Builder {
    ops: Vec<Op>,
    slots: usize,
}

impl Builder {
    fn op(&mut self, op: Op) {
        self.ops.push(op);
    }

    fn open(&mut self, path: &Path) -> Result<usize, ExecError> {
        let slot = self.slots;
        self.slots += 1;
        self.op(Op::OpenSource {
            path: cpath(path)?,
            slot,
        });
        Ok(slot)
    }

    fn root(&mut self, ctx: &Context<'_>) -> Result<(), ExecError> {
        let target = cpath(ctx.mount_point)?;
        match ctx.root {
            RootSource::Overlay(plan) => {
                if let Some(dir) = &plan.chdir {
                    self.op(Op::Chdir(cpath(dir)?));
                }
                for (source, dest) in &plan.binds {
                    self.op(Op::Mount(Mount {
                        source: Some(cpath(source)?),
                        target: cpath(dest)?,
                        fstype: None,
                        flags: MsFlags::MS_BIND,
                        data: None,
                    }));
                }
                let data = cstring(&plan.data, "overlay options")?;
                let retry = match &plan.data_fallback {
                    Some(d) => Some(cstring(d, "overlay options")?),
                    None => None,
                };
                // nodev: no device node in the image or made by the step can be opened.
                let mount = Mount::fs(c"overlay", target, MsFlags::MS_NODEV, Some(&data));
                self.op(Op::RootMount { mount, retry });
            }
            RootSource::Copy(rootfs) => {
                let mount = Mount {
                    source: Some(cpath(rootfs)?),
                    target: target.clone(),
                    fstype: None,
                    flags: MsFlags::MS_BIND | MsFlags::MS_REC,
                    data: None,
                };
                self.op(Op::RootMount { mount, retry: None });
                self.op(Op::Remount {
                    target,
                    flags: MsFlags::MS_NODEV,
                });
            }
        }
        Ok(())
    }

    /// A directory mount target, created (and reported as a stub) when missing.
    fn ensure_dir(&mut self, path: &str, stub: bool) -> Result<CString, ExecError> {
        let prefixes = prefixes(path)?;
        let target = prefixes.last().cloned().unwrap_or_else(|| c"/".to_owned());
        self.op(Op::Ensure(Ensure {
            prefixes,
            file: false,
            stub,
        }));
        Ok(target)
    }

    /// /proc, /dev (with its nodes, pts, shm, mqueue) and /sys, as runc sets them up for
    /// Docker, then the masked and read-only paths. /dev is `nodev`: its usable nodes are
    /// binds of the host's (`device_slots`, opened before `pivot_root`).
    fn kernel_filesystems(&mut self, device_slots: &[(&str, usize)]) -> Result<(), ExecError> {
        let nosuid_nodev_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        let proc_dir = self.ensure_dir("/proc", true)?;
        self.op(Op::Mount(Mount::fs(
            c"proc",
            proc_dir,
            nosuid_nodev_noexec,
            None,
        )));

        let dev = self.ensure_dir("/dev", true)?;
        let dev_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_STRICTATIME;
        self.op(Op::Mount(Mount::fs(
            c"tmpfs",
            dev,
            dev_flags,
            Some(DEV_TMPFS),
        )));
        for (name, slot) in device_slots {
            use std::os::unix::fs::MetadataExt as _;
            let host = Path::new("/dev").join(name);
            let rdev = std::fs::metadata(&host)
                .map_err(|e| ExecError::Setup(format!("{}: {e}", host.display())))?
                .rdev();
            let target = cstring(&format!("/dev/{name}"), "device")?;
            self.op(Op::DeviceNode {
                path: target.clone(),
                rdev,
            });
            self.op(Op::BindSource {
                slot: *slot,
                target,
                recursive: false,
                remount: None,
            });
        }
        for (link, target) in [
            ("/dev/fd", "/proc/self/fd"),
            ("/dev/stdin", "/proc/self/fd/0"),
            ("/dev/stdout", "/proc/self/fd/1"),
            ("/dev/stderr", "/proc/self/fd/2"),
            ("/dev/ptmx", "pts/ptmx"),
        ] {
            self.op(Op::Symlink {
                target: cstring(target, "link")?,
                link: cstring(link, "link")?,
            });
        }
        // Inside our fresh tmpfs: nothing to report as stubs.
        let pts = self.ensure_dir("/dev/pts", false)?;
        let pts_data = c"newinstance,ptmxmode=0666,mode=0620,gid=5";
        self.op(Op::Mount(Mount::fs(
            c"devpts",
            pts,
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some(pts_data),
        )));
        let shm = self.ensure_dir("/dev/shm", false)?;
        self.op(Op::Mount(Mount::fs(
            c"tmpfs",
            shm,
            nosuid_nodev_noexec,
            Some(SHM_TMPFS),
        )));
        let mqueue = self.ensure_dir("/dev/mqueue", false)?;
        self.op(Op::Mount(Mount::fs(
            c"mqueue",
            mqueue,
            nosuid_nodev_noexec,
            None,
        )));

        let sys = self.ensure_dir("/sys", true)?;
        self.op(Op::Mount(Mount::fs(
            c"sysfs",
            sys,
            nosuid_nodev_noexec | MsFlags::MS_RDONLY,
            None,
        )));

        for path in MASKED_PATHS {
            self.op(Op::Mask(cstring(path, "masked path")?));
        }
        for path in READONLY_PATHS {
            self.op(Op::Readonly(cstring(path, "read-only path")?));
        }
        Ok(())
    }

    /// /etc/hosts and /etc/resolv.conf: read-only binds of generated files (as BuildKit), so
    /// they never land in the layer.
    fn file_bind(&mut self, slot: usize, target: &str) -> Result<(), ExecError> {
        let prefixes = prefixes(target)?;
        let path = prefixes.last().cloned().unwrap_or_else(|| c"/".to_owned());
        self.op(Op::Ensure(Ensure {
            prefixes,
            file: true,
            stub: true,
        }));
        let hardened = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        self.op(Op::BindSource {
            slot,
            target: path,
            recursive: false,
            remount: Some(MsFlags::MS_RDONLY | hardened),
        });
        Ok(())
    }

    fn user_mounts(&mut self, spec: &ExecSpec, bind_slots: &[usize]) -> Result<(), ExecError> {
        let mut slots = bind_slots.iter();
        for m in &spec.mounts {
            match m {
                MountSpec::Bind {
                    source,
                    target,
                    readonly,
                } => {
                    let slot = *slots
                        .next()
                        .ok_or_else(|| ExecError::Setup("bind mount slots out of step".into()))?;
                    let prefixes = target_prefixes(target)?;
                    let path = prefixes.last().cloned().unwrap_or_else(|| c"/".to_owned());
                    let file = !source.is_dir();
                    self.op(Op::Ensure(Ensure {
                        prefixes,
                        file,
                        stub: true,
                    }));
                    let mut flags = MsFlags::MS_NODEV;
                    if *readonly {
                        flags |= MsFlags::MS_RDONLY;
                    }
                    self.op(Op::BindSource {
                        slot,
                        target: path,
                        recursive: true,
                        remount: Some(flags),
                    });
                }
                MountSpec::Tmpfs { target, size } => {
                    let prefixes = target_prefixes(target)?;
                    let path = prefixes.last().cloned().unwrap_or_else(|| c"/".to_owned());
                    self.op(Op::Ensure(Ensure {
                        prefixes,
                        file: false,
                        stub: true,
                    }));
                    let data = match size {
                        Some(bytes) => format!("mode=1777,size={bytes}"),
                        None => "mode=1777".into(),
                    };
                    let data = cstring(&data, "tmpfs options")?;
                    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
                    self.op(Op::Mount(Mount::fs(c"tmpfs", path, flags, Some(&data))));
                }
            }
        }
        Ok(())
    }
}

/// Prefixes of a mount target, refusing `/` itself (it would hide the whole root).
fn target_prefixes(target: &str) -> Result<Vec<CString>, ExecError> {
    let prefixes = prefixes(target)?;
    if prefixes.is_empty() {
        return Err(ExecError::Setup(format!(
            "mount target {target:?} is the root directory"
        )));
    }
    Ok(prefixes)
}
