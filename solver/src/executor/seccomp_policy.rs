//! The seccomp policy both executors apply, as data: the built-in sandbox compiles it to BPF
//! (seccompiler), the runc executor writes it into the runtime spec. One table, so a step
//! meets the same fence whichever executor runs it.
//!
//! It is the deny-list essence of Docker's default profile: Docker's profile is an allow-list
//! (about 370 syscalls, everything else EPERM) with some syscalls allowed only for containers
//! granted extra capabilities. This policy allows by default and returns EPERM for what that
//! profile denies a container with Docker's default capabilities:
//! - kernel and system control: kexec_load, kexec_file_load, init_module, finit_module,
//!   delete_module, reboot, swapon, swapoff, acct, settimeofday, clock_settime,
//!   clock_adjtime, syslog, vhangup, quotactl, quotactl_fd, lookup_dcookie, nfsservctl and, on
//!   x86-64, create_module, get_kernel_syms, query_module, uselib, ustat, sysfs, _sysctl,
//!   iopl, ioperm;
//! - mounts: mount, umount2, pivot_root, open_tree, move_mount, fsopen, fsconfig, fsmount,
//!   fspick, mount_setattr;
//! - namespaces: setns; unshare and clone with any CLONE_NEW* flag (what Docker allows only
//!   with CAP_SYS_ADMIN, which a step never has); clone3 gets ENOSYS (its flags sit in memory
//!   a filter cannot read; libc then falls back to clone);
//! - tracing and introspection: ptrace, process_vm_readv, process_vm_writev, kcmp,
//!   perf_event_open, bpf, userfaultfd, name_to_handle_at, open_by_handle_at;
//! - keys: keyctl, add_key, request_key;
//! - NUMA policy: get_mempolicy, set_mempolicy, mbind, move_pages;
//! - io_uring_setup, io_uring_enter, io_uring_register (blocked since Docker 25);
//! - personality other than the values Docker allows (0, 8, 0x20000, 0x20008, 0xffffffff);
//! - socket(AF_VSOCK).
//!
//! Why not Docker's allow-list: a deny-list is as strict for what Docker names, stays
//! readable (each line a decision), and does not break a build on a newer kernel's new
//! syscall until someone updates a list of 370 names. The cost — a syscall added to a future
//! kernel is allowed here before it is reviewed — is bounded by the capability set, which is
//! the main fence in Docker's profile too.

use nix::libc;

/// Syscalls that always fail with EPERM: (name for runc, number for the sandbox).
pub(crate) fn always_denied() -> Vec<(&'static str, i64)> {
    let mut list = vec![
        ("kexec_load", libc::SYS_kexec_load),
        ("kexec_file_load", libc::SYS_kexec_file_load),
        ("init_module", libc::SYS_init_module),
        ("finit_module", libc::SYS_finit_module),
        ("delete_module", libc::SYS_delete_module),
        ("reboot", libc::SYS_reboot),
        ("swapon", libc::SYS_swapon),
        ("swapoff", libc::SYS_swapoff),
        ("acct", libc::SYS_acct),
        ("settimeofday", libc::SYS_settimeofday),
        ("clock_settime", libc::SYS_clock_settime),
        ("clock_adjtime", libc::SYS_clock_adjtime),
        ("syslog", libc::SYS_syslog),
        ("vhangup", libc::SYS_vhangup),
        ("quotactl", libc::SYS_quotactl),
        ("quotactl_fd", libc::SYS_quotactl_fd),
        ("lookup_dcookie", libc::SYS_lookup_dcookie),
        ("nfsservctl", libc::SYS_nfsservctl),
        ("mount", libc::SYS_mount),
        ("umount2", libc::SYS_umount2),
        ("pivot_root", libc::SYS_pivot_root),
        ("open_tree", libc::SYS_open_tree),
        ("move_mount", libc::SYS_move_mount),
        ("fsopen", libc::SYS_fsopen),
        ("fsconfig", libc::SYS_fsconfig),
        ("fsmount", libc::SYS_fsmount),
        ("fspick", libc::SYS_fspick),
        ("mount_setattr", libc::SYS_mount_setattr),
        ("setns", libc::SYS_setns),
        ("ptrace", libc::SYS_ptrace),
        ("process_vm_readv", libc::SYS_process_vm_readv),
        ("process_vm_writev", libc::SYS_process_vm_writev),
        ("kcmp", libc::SYS_kcmp),
        ("perf_event_open", libc::SYS_perf_event_open),
        ("bpf", libc::SYS_bpf),
        ("userfaultfd", libc::SYS_userfaultfd),
        ("name_to_handle_at", libc::SYS_name_to_handle_at),
        ("open_by_handle_at", libc::SYS_open_by_handle_at),
        ("keyctl", libc::SYS_keyctl),
        ("add_key", libc::SYS_add_key),
        ("request_key", libc::SYS_request_key),
        ("get_mempolicy", libc::SYS_get_mempolicy),
        ("set_mempolicy", libc::SYS_set_mempolicy),
        ("mbind", libc::SYS_mbind),
        ("move_pages", libc::SYS_move_pages),
        ("io_uring_setup", libc::SYS_io_uring_setup),
        ("io_uring_enter", libc::SYS_io_uring_enter),
        ("io_uring_register", libc::SYS_io_uring_register),
    ];
    #[cfg(target_arch = "x86_64")]
    list.extend([
        // Numbers without a libc constant.
        ("create_module", 174),
        ("get_kernel_syms", 177),
        ("query_module", 178),
        ("uselib", libc::SYS_uselib),
        ("ustat", libc::SYS_ustat),
        ("sysfs", libc::SYS_sysfs),
        ("_sysctl", libc::SYS__sysctl),
        ("iopl", libc::SYS_iopl),
        ("ioperm", libc::SYS_ioperm),
    ]);
    list
}

/// Namespace flags of clone(2) (CLONE_NEWTIME shares its bit with the exit signal there).
pub(crate) const CLONE_NAMESPACES: [u64; 7] = [
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
];

/// CLONE_NEWTIME, which unshare(2) accepts.
pub(crate) const CLONE_NEWTIME: u64 = 0x80;

/// The flags denied to unshare(2).
pub(crate) fn unshare_flags() -> Vec<u64> {
    let mut flags = CLONE_NAMESPACES.to_vec();
    flags.push(CLONE_NEWTIME);
    flags
}

/// personality(2) values Docker's profile allows: PER_LINUX, UNAME26, PER_LINUX32,
/// PER_LINUX32|UNAME26 and the query value.
pub(crate) const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// AF_VSOCK, denied to socket(2).
pub(crate) const AF_VSOCK: u64 = 40;
