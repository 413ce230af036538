//! The seccomp filter: `crate::executor::seccomp_policy` compiled to BPF with seccompiler
//! (the EPERM deny-list, clone3 → ENOSYS), plus, on x86-64, EPERM for every x32-ABI syscall
//! (the policy matches x86-64 numbers, which x32 aliases would slip past).
//!
//! Not covered compared with Docker: syscalls unknown to Docker's list (new kernels' calls
//! are allowed here, denied there); argument checks Docker has beyond the policy's; and
//! 32-bit x86 processes, which Docker runs but which this filter kills (seccompiler's arch
//! check): a deny-list by number would need the i386 numbers too.

use std::collections::BTreeMap;

use crate::executor::seccomp_policy::{
    AF_VSOCK, CLONE_NAMESPACES, PERSONALITIES, always_denied, unshare_flags,
};

use nix::errno::Errno;
use nix::libc;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Why the seccomp filters could not be compiled (kept for every later step: shared).
#[derive(Debug, Clone, thiserror::Error)]
#[error("seccomp {stage}: {source}")]
pub struct SeccompError {
    /// What was being made: `architecture`, `rules`, `filter`.
    stage: &'static str,
    /// seccompiler's reason.
    #[source]
    source: std::sync::Arc<seccompiler::BackendError>,
}

fn at(stage: &'static str) -> impl FnOnce(seccompiler::BackendError) -> SeccompError {
    move |e| SeccompError {
        stage,
        source: std::sync::Arc::new(e),
    }
}

/// Compiles the filters (the EPERM deny-list, clone3 → ENOSYS, x32 → EPERM), in install order.
pub(super) fn filters() -> Result<Vec<BpfProgram>, SeccompError> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(at("architecture"))?;
    let deny = compile(deny_rules().map_err(at("rules"))?, libc::EPERM, arch)?;
    let clone3 = compile(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        libc::ENOSYS,
        arch,
    )?;
    #[cfg(target_arch = "x86_64")]
    return Ok(vec![deny, clone3, x32_filter()]);
    #[cfg(not(target_arch = "x86_64"))]
    return Ok(vec![deny, clone3]);
}

/// EPERM for syscall numbers with the x32 bit: seccompiler matches exact x86-64 numbers,
/// which x32 aliases would slip past.
#[cfg(target_arch = "x86_64")]
fn x32_filter() -> BpfProgram {
    use seccompiler::sock_filter;
    const LOAD_NR: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS, offset 0 = seccomp_data.nr
    const JGE: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
    const RET: u16 = 0x06; // BPF_RET | BPF_K
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    vec![
        sock_filter {
            code: LOAD_NR,
            jt: 0,
            jf: 0,
            k: 0,
        },
        sock_filter {
            code: JGE,
            jt: 0,
            jf: 1,
            k: X32_SYSCALL_BIT,
        },
        sock_filter {
            code: RET,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        },
        sock_filter {
            code: RET,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        },
    ]
}

fn compile(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    errno: i32,
    arch: TargetArch,
) -> Result<BpfProgram, SeccompError> {
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        arch,
    )
    .map_err(at("filter"))?;
    filter.try_into().map_err(at("filter"))
}

fn deny_rules() -> Result<BTreeMap<i64, Vec<SeccompRule>>, seccompiler::BackendError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (_, nr) in always_denied() {
        rules.insert(nr, Vec::new());
    }
    let any_flag =
        |flags: &[u64], qword: bool| -> Result<Vec<SeccompRule>, seccompiler::BackendError> {
            flags
                .iter()
                .map(|f| {
                    let len = if qword {
                        SeccompCmpArgLen::Qword
                    } else {
                        SeccompCmpArgLen::Dword
                    };
                    SeccompRule::new(vec![SeccompCondition::new(
                        0,
                        len,
                        SeccompCmpOp::MaskedEq(*f),
                        *f,
                    )?])
                })
                .collect()
        };
    rules.insert(libc::SYS_clone, any_flag(&CLONE_NAMESPACES, true)?);
    rules.insert(libc::SYS_unshare, any_flag(&unshare_flags(), false)?);
    let not_allowed = PERSONALITIES
        .iter()
        .map(|p| SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, *p))
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_personality, vec![SeccompRule::new(not_allowed)?]);
    let vsock = SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, AF_VSOCK)?;
    rules.insert(libc::SYS_socket, vec![SeccompRule::new(vec![vsock])?]);
    Ok(rules)
}

/// Child side: installs the filters (no allocation; sets no_new_privs first, as required).
pub(super) fn apply(filters: &[BpfProgram]) -> nix::Result<()> {
    for filter in filters {
        seccompiler::apply_filter(filter).map_err(|e| match e {
            seccompiler::Error::Prctl(io) | seccompiler::Error::Seccomp(io) => {
                Errno::from_raw(io.raw_os_error().unwrap_or(libc::EINVAL))
            }
            _ => Errno::EINVAL,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_compile() {
        let f = filters().unwrap();
        assert!(f.len() >= 2);
        assert!(f[0].len() > 50);
    }
}
