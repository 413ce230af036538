//! The runtime-spec `config.json` for one step, built with oci-spec's `runtime` builders.
//!
//! It encodes the isolation kiln promises for a RUN step whichever executor runs it: the same
//! namespaces, mounts, capabilities, masked paths and seccomp filter as the built-in sandbox,
//! so both executors produce the same image for the same Dockerfile. It knows nothing of
//! bundles on disk beyond the two files it bind-mounts (`/etc/hosts`, `/etc/resolv.conf`).

use std::path::{Path, PathBuf};

use oci_spec::OciSpecError;
use oci_spec::runtime::{
    Capabilities, Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceCgroupBuilder,
    LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxResourcesBuilder, LinuxSeccomp,
    LinuxSeccompAction, LinuxSeccompBuilder, LinuxSyscallBuilder, Mount, MountBuilder,
    ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder, get_default_maskedpaths,
    get_default_readonly_paths,
};

use super::paths;
use crate::executor::{ExecError, ExecSpec, MountSpec, Network};

/// The directory, relative to the bundle, that runc pivots into.
pub(super) const ROOTFS: &str = "rootfs";

/// Docker's default capability set (moby `oci/caps/defaults.go`).
pub(super) const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Syscalls that fail with EPERM: the built-in sandbox's list. Everything else is allowed,
/// the capability set being the main fence (as in Docker's profile, whose allow-list mostly
/// re-derives these exclusions).
pub(super) const BLOCKED_SYSCALLS: [&str; 15] = [
    "kexec_load",
    "open_by_handle_at",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "bpf",
    "userfaultfd",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "ptrace",
];

/// EPERM, returned by the blocked syscalls.
const EPERM: u32 = 1;

/// The files of the bundle that are bind-mounted into the container.
#[derive(Debug, Clone, Copy)]
pub(super) struct BundleFiles<'a> {
    /// Becomes `/etc/hosts`.
    pub(super) hosts: &'a Path,
    /// Becomes `/etc/resolv.conf`.
    pub(super) resolv_conf: &'a Path,
}

/// The runtime spec for `spec`, with `files` bind-mounted over `/etc`.
pub(super) fn runtime_spec(spec: &ExecSpec, files: BundleFiles<'_>) -> Result<Spec, ExecError> {
    let mut spec_builder = SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path(ROOTFS)
                .readonly(false)
                .build()
                .map_err(oci)?,
        )
        .process(process(spec)?)
        .mounts(mounts(spec, files)?)
        .linux(linux(spec)?);
    if !spec.hostname.is_empty() {
        spec_builder = spec_builder.hostname(spec.hostname.clone());
    }
    let mut out = spec_builder.build().map_err(oci)?;
    // The builders fill unset fields from oci-spec's own defaults (youki's hostname, empty
    // annotations); the spec must say only what kiln means.
    if spec.hostname.is_empty() {
        out.set_hostname(None);
    }
    out.set_annotations(None);
    Ok(out)
}

/// The container process: who, what, where, and with which privileges.
fn process(spec: &ExecSpec) -> Result<oci_spec::runtime::Process, ExecError> {
    let mut user = UserBuilder::default()
        .uid(spec.uid)
        .gid(spec.gid)
        // runc's default too, stated so the image never depends on kiln's own umask.
        .umask(0o022u32);
    if !spec.additional_gids.is_empty() {
        user = user.additional_gids(spec.additional_gids.clone());
    }
    let caps: Capabilities = DEFAULT_CAPABILITIES.into_iter().collect();
    let mut capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .inheritable(Capabilities::new())
        .build()
        .map_err(oci)?;
    // The builder would keep oci-spec's default ambient set; Docker raises none.
    capabilities.set_ambient(None);
    let mut process = ProcessBuilder::default()
        .terminal(false)
        .user(user.build().map_err(oci)?)
        .args(spec.args.clone())
        .env(spec.env.clone())
        .cwd(paths::absolute(&spec.cwd))
        .capabilities(capabilities)
        .no_new_privileges(true)
        .build()
        .map_err(oci)?;
    // oci-spec's default caps open files at 1024; the sandbox inherits kiln's limits, so
    // runc must too.
    process.set_rlimits(None);
    Ok(process)
}

/// Namespaces, masked paths, device allow-list and seccomp.
fn linux(spec: &ExecSpec) -> Result<oci_spec::runtime::Linux, ExecError> {
    let mut namespaces = vec![
        namespace(LinuxNamespaceType::Pid)?,
        namespace(LinuxNamespaceType::Ipc)?,
        namespace(LinuxNamespaceType::Uts)?,
        namespace(LinuxNamespaceType::Mount)?,
    ];
    if spec.network == Network::None {
        // runc brings `lo` up in a network namespace it creates (checked: `ip link` shows
        // LOOPBACK,UP), which is what `Network::None` promises.
        namespaces.push(namespace(LinuxNamespaceType::Network)?);
    }
    // Docker's device rule: nothing but what runc always allows (null, zero, full, random,
    // urandom, tty, ptmx, pts, mknod of anything). Without it CAP_MKNOD would open host disks.
    let deny_all = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
        .map_err(oci)?;
    let resources = LinuxResourcesBuilder::default()
        .devices(vec![deny_all])
        .build()
        .map_err(oci)?;
    LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(resources)
        .masked_paths(get_default_maskedpaths())
        .readonly_paths(get_default_readonly_paths())
        .seccomp(seccomp()?)
        .build()
        .map_err(oci)
}

/// A new namespace of `typ`.
fn namespace(typ: LinuxNamespaceType) -> Result<LinuxNamespace, ExecError> {
    LinuxNamespaceBuilder::default()
        .typ(typ)
        .build()
        .map_err(oci)
}

/// Allow everything but [`BLOCKED_SYSCALLS`], which fail with EPERM. No `architectures`: runc
/// then filters the native ABI only, as seccompiler does for the sandbox.
fn seccomp() -> Result<LinuxSeccomp, ExecError> {
    let blocked = LinuxSyscallBuilder::default()
        .names(
            BLOCKED_SYSCALLS
                .iter()
                .map(|s| (*s).to_owned())
                .collect::<Vec<_>>(),
        )
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(EPERM)
        .build()
        .map_err(oci)?;
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .syscalls(vec![blocked])
        .build()
        .map_err(oci)
}

/// The kernel filesystems (runc's defaults minus the cgroup mount, which the sandbox does not
/// give either), `/etc/hosts` and `/etc/resolv.conf`, then the step's own mounts in order.
fn mounts(spec: &ExecSpec, files: BundleFiles<'_>) -> Result<Vec<Mount>, ExecError> {
    let mut out = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        // Without a network namespace the kernel refuses a fresh sysfs; runc then rbinds the
        // host's /sys, still read-only.
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )?,
        bind("/etc/hosts", files.hosts, &["bind", "ro"])?,
        bind("/etc/resolv.conf", files.resolv_conf, &["bind", "ro"])?,
    ];
    for m in &spec.mounts {
        out.push(match m {
            MountSpec::Bind {
                source,
                target,
                readonly,
            } => {
                // runc resolves a relative source against the bundle, not kiln's cwd.
                let source = std::path::absolute(source).map_err(|e| {
                    ExecError::Setup(format!("bind mount source {}: {e}", source.display()))
                })?;
                let options: &[&str] = if *readonly {
                    &["rbind", "ro"]
                } else {
                    &["rbind"]
                };
                bind(&paths::absolute(target), &source, options)?
            }
            MountSpec::Tmpfs { target, size } => {
                let mut options = vec!["nosuid".to_owned(), "nodev".to_owned()];
                if let Some(size) = size {
                    options.push(format!("size={size}"));
                }
                MountBuilder::default()
                    .destination(paths::absolute(target))
                    .typ("tmpfs")
                    .source("tmpfs")
                    .options(options)
                    .build()
                    .map_err(oci)?
            }
        });
    }
    Ok(out)
}

/// A kernel filesystem mount.
fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, ExecError> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| (*o).to_owned()).collect::<Vec<_>>())
        .build()
        .map_err(oci)
}

/// A bind mount of host path `source` at `dest`.
fn bind(dest: &str, source: &Path, options: &[&str]) -> Result<Mount, ExecError> {
    MountBuilder::default()
        .destination(dest)
        .typ("bind")
        .source(PathBuf::from(source))
        .options(options.iter().map(|o| (*o).to_owned()).collect::<Vec<_>>())
        .build()
        .map_err(oci)
}

/// oci-spec only fails on a builder bug; still an error, never a panic.
fn oci(e: OciSpecError) -> ExecError {
    ExecError::Setup(format!("building the runtime spec: {e}"))
}
