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
    LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder,
    LinuxResourcesBuilder, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg,
    LinuxSeccompArgBuilder, LinuxSeccompBuilder, LinuxSeccompOperator, LinuxSyscallBuilder, Mount,
    MountBuilder, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
    get_default_maskedpaths, get_default_readonly_paths,
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

/// EPERM, returned by the denied syscalls.
const EPERM: u32 = 1;
/// ENOSYS, returned by clone3 (libc then falls back to clone, whose flags a filter can read).
const ENOSYS: u32 = 38;

/// The files of the bundle that are bind-mounted into the container.
#[derive(Debug, Clone, Copy)]
pub(super) struct BundleFiles<'a> {
    /// Becomes `/etc/hosts`.
    pub(super) hosts: &'a Path,
    /// Becomes `/etc/resolv.conf`.
    pub(super) resolv_conf: &'a Path,
}

/// The runtime spec for `spec`, with `files` bind-mounted over `/etc`.
pub(super) fn runtime_spec(
    spec: &ExecSpec,
    files: BundleFiles<'_>,
    cgroup: &str,
) -> Result<Spec, ExecError> {
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
        .linux(linux(spec, cgroup)?);
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
fn linux(spec: &ExecSpec, cgroup: &str) -> Result<oci_spec::runtime::Linux, ExecError> {
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
    // The pids limit of crate::executor::cgroup, which runc applies in the cgroup it makes.
    let pids = LinuxPidsBuilder::default()
        .limit(crate::executor::cgroup::PIDS_LIMIT as i64)
        .build()
        .map_err(oci)?;
    let resources = LinuxResourcesBuilder::default()
        .devices(vec![deny_all])
        .pids(pids)
        .build()
        .map_err(oci)?;
    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .masked_paths(get_default_maskedpaths())
        .readonly_paths(get_default_readonly_paths())
        .seccomp(seccomp()?);
    // Rootless, the host gives kiln no cgroup to make, and runc fails making one: the step
    // runs without (as the sandbox does there).
    let linux = if crate::fsutil::userns::in_user_namespace() {
        linux
    } else {
        linux
            .cgroups_path(PathBuf::from(cgroup))
            .resources(resources)
    };
    linux.build().map_err(oci)
}

/// A new namespace of `typ`.
fn namespace(typ: LinuxNamespaceType) -> Result<LinuxNamespace, ExecError> {
    LinuxNamespaceBuilder::default()
        .typ(typ)
        .build()
        .map_err(oci)
}

/// `crate::executor::seccomp_policy`, the sandbox's policy, as a runtime-spec filter: allow
/// by default; EPERM for the denied syscalls, for clone/unshare with a namespace flag (one
/// rule per flag: rules are alternatives), for personality outside Docker's values and for
/// AF_VSOCK sockets; ENOSYS for clone3. No `architectures`: runc then filters the native ABI
/// and kills other ABIs' calls, as seccompiler's arch check does for the sandbox.
fn seccomp() -> Result<LinuxSeccomp, ExecError> {
    use crate::executor::seccomp_policy as policy;
    let rule = |name: &str, errno: u32, args: Vec<LinuxSeccompArg>| {
        let mut b = LinuxSyscallBuilder::default()
            .names(vec![name.to_owned()])
            .action(LinuxSeccompAction::ScmpActErrno)
            .errno_ret(errno);
        if !args.is_empty() {
            b = b.args(args);
        }
        b.build().map_err(oci)
    };
    let arg = |value: u64, value_two: Option<u64>, op: LinuxSeccompOperator| {
        let mut b = LinuxSeccompArgBuilder::default()
            .index(0usize)
            .value(value)
            .op(op);
        if let Some(two) = value_two {
            b = b.value_two(two);
        }
        b.build().map_err(oci)
    };
    let denied: Vec<String> = policy::always_denied()
        .iter()
        .map(|(name, _)| (*name).to_owned())
        .collect();
    let mut syscalls = vec![
        LinuxSyscallBuilder::default()
            .names(denied)
            .action(LinuxSeccompAction::ScmpActErrno)
            .errno_ret(EPERM)
            .build()
            .map_err(oci)?,
        rule("clone3", ENOSYS, Vec::new())?,
    ];
    for (name, flags) in [
        ("clone", policy::CLONE_NAMESPACES.to_vec()),
        ("unshare", policy::unshare_flags()),
    ] {
        for flag in flags {
            let masked = arg(flag, Some(flag), LinuxSeccompOperator::ScmpCmpMaskedEq)?;
            syscalls.push(rule(name, EPERM, vec![masked])?);
        }
    }
    for (mask, value) in personality_denials() {
        let masked = arg(mask, Some(value), LinuxSeccompOperator::ScmpCmpMaskedEq)?;
        syscalls.push(rule("personality", EPERM, vec![masked])?);
    }
    let beyond = arg(u64::from(u32::MAX), None, LinuxSeccompOperator::ScmpCmpGt)?;
    syscalls.push(rule("personality", EPERM, vec![beyond])?);
    let vsock = arg(policy::AF_VSOCK, None, LinuxSeccompOperator::ScmpCmpEq)?;
    syscalls.push(rule("socket", EPERM, vec![vsock])?);
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .syscalls(syscalls)
        .build()
        .map_err(oci)
}

/// personality(2) outside Docker's values, as rules that are alternatives (runc splits the
/// conditions of one rule on the same argument into separate rules, so "none of these
/// values" cannot be written as one rule of `!=`). The allowed values use only bits 3 and 17,
/// or every bit (the query `0xffffffff`); any other value has, among the remaining 30 low
/// bits, some set bit whose next one (cyclically) is clear — one masked-equal rule per bit
/// catches it. Values past 32 bits are the separate `>` rule.
fn personality_denials() -> Vec<(u64, u64)> {
    let kept: u64 = crate::executor::seccomp_policy::PERSONALITIES[1..4]
        .iter()
        .fold(0, |acc, v| acc | v);
    let bits: Vec<u64> = (0..32)
        .map(|i| 1u64 << i)
        .filter(|b| b & kept == 0)
        .collect();
    (0..bits.len())
        .map(|i| {
            let (this, next) = (bits[i], bits[(i + 1) % bits.len()]);
            (this | next, this)
        })
        .collect()
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
        // host's /sys, still read-only. Rootless it refuses one even so: the host's, bound
        // (runc's own `spec --rootless`).
        if crate::fsutil::userns::in_user_namespace() {
            bind(
                "/sys",
                Path::new("/sys"),
                &["rbind", "nosuid", "noexec", "nodev", "ro"],
            )?
        } else {
            mount(
                "/sys",
                "sysfs",
                "sysfs",
                &["nosuid", "noexec", "nodev", "ro"],
            )?
        },
        bind("/etc/hosts", files.hosts, &["bind", "ro", "nodev"])?,
        bind(
            "/etc/resolv.conf",
            files.resolv_conf,
            &["bind", "ro", "nodev"],
        )?,
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
                    &["rbind", "ro", "nodev"]
                } else {
                    &["rbind", "nodev"]
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

#[cfg(test)]
mod tests {
    use super::personality_denials;

    fn denied(v: u64) -> bool {
        v > u64::from(u32::MAX) || personality_denials().iter().any(|(m, x)| v & m == *x)
    }

    #[test]
    fn personality_rules_deny_exactly_what_docker_denies() {
        for allowed in crate::executor::seccomp_policy::PERSONALITIES {
            assert!(!denied(allowed), "{allowed:#x}");
        }
        for v in [
            0x1,
            0x4,
            0x40000,
            0x40008,
            0x20001,
            0xfffffffe,
            0x8000_0000,
            1 << 33,
        ] {
            assert!(denied(v), "{v:#x}");
        }
        // Every value made of one or two bits other than the allowed ones.
        for i in 0..32 {
            for j in 0..32 {
                let v = (1u64 << i) | (1u64 << j);
                let ok = crate::executor::seccomp_policy::PERSONALITIES.contains(&v);
                assert_eq!(denied(v), !ok, "{v:#x}");
            }
        }
    }
}
