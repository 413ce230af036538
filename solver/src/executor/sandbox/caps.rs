//! Capabilities: the child keeps Docker's default set and nothing else.
//!
//! The bounding set is cut first (that needs CAP_SETPCAP, which the default set keeps), then
//! effective and permitted are set to the default set and inheritable and ambient emptied.
//! Inheritable stays empty as in Docker since 20.10.14/23.0 (CVE-2022-24769): a non-empty
//! inheritable set lets a non-root step gain capabilities from file capabilities.
//! For uid 0 execve recomputes permitted = bounding, so the command runs with exactly the
//! default set; for other uids `setresuid` clears effective/permitted, as in Docker.

#![allow(unsafe_code)]

use nix::errno::Errno;
use nix::libc;

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets as two 32-bit halves.
const VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct Header {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The highest capability the running kernel knows (`/proc/sys/kernel/cap_last_cap`).
pub(super) fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        // CAP_CHECKPOINT_RESTORE (40) is the highest in kernels of the last years.
        .unwrap_or(40)
}

/// Child side: limits every capability set to `keep` (bit n = capability n).
pub(super) fn apply(keep: u64, last_cap: u32) -> nix::Result<()> {
    for cap in 0..=last_cap.min(63) {
        if keep & (1u64 << cap) != 0 {
            continue;
        }
        // SAFETY: PR_CAPBSET_DROP takes a capability number and touches no memory.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        match Errno::result(rc) {
            Ok(_) | Err(Errno::EINVAL) => {} // a capability this kernel does not have
            Err(e) => return Err(e),
        }
    }
    // SAFETY: clears the ambient set; touches no memory. EINVAL on kernels before 4.3.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    match Errno::result(rc) {
        Ok(_) | Err(Errno::EINVAL) => {}
        Err(e) => return Err(e),
    }
    let low = keep as u32;
    let high = (keep >> 32) as u32;
    let header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let data = [
        Data {
            effective: low,
            permitted: low,
            inheritable: 0,
        },
        Data {
            effective: high,
            permitted: high,
            inheritable: 0,
        },
    ];
    // SAFETY: capset reads a version-3 header and two data structs, which is what we pass.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr()) };
    Errno::result(rc).map(drop)
}
