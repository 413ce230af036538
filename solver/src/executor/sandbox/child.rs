//! The container process between `clone` and `execve`: follows the [`ChildPlan`] op by op,
//! then executes the command.
//!
//! It runs in a copy of a multi-threaded parent, so it must not allocate, lock or unwind: it
//! only makes system calls on data the parent prepared, and on failure it writes a fixed-size
//! record to the status pipe and `_exit`s.

#![allow(unsafe_code)]

use std::ffi::{CStr, OsStr};
use std::os::fd::{AsRawFd, BorrowedFd, IntoRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
use nix::libc;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
use nix::sys::stat::{Mode, UtimensatFlags, stat, umask, utimensat};
use nix::sys::time::TimeSpec;
use nix::unistd::{chdir, fchdir, mkdir, pivot_root, sethostname, setsid};

use super::plan::{ChildPlan, Ensure, Mount, Op};
use super::status::Record;
use super::{caps, seccomp};

/// Exit code when setup failed (the status record says why).
const SETUP_FAILED: i32 = 126;
/// Exit code when the command could not be executed.
const EXEC_FAILED: i32 = 127;

/// The child's entry point; never returns.
pub(super) fn main(plan: &mut ChildPlan, status: RawFd) -> ! {
    prelude();
    // SAFETY: `status` is the write end of the status pipe, open (close-on-exec) in this
    // process until it execs or exits, which ends every use of this borrow.
    let status = unsafe { BorrowedFd::borrow_raw(status) };
    let ChildPlan {
        ops,
        slots,
        old_root,
        exec,
    } = plan;
    for (index, op) in ops.iter().enumerate() {
        if let Err(errno) = run(op, index, slots, old_root, status) {
            Record::OpFailed {
                op: index as u32,
                errno: errno as i32,
            }
            .send(status);
            exit(SETUP_FAILED);
        }
    }

    umask(Mode::from_bits_truncate(0o022));
    let mut got_eacces = false;
    let mut last = Errno::ENOENT;
    for candidate in &exec.candidates {
        // SAFETY: the path is a valid C string; argv_ptrs and env_ptrs are NULL-terminated
        // arrays of pointers into C strings the plan owns, alive until exec replaces us.
        unsafe {
            libc::execve(
                candidate.as_ptr(),
                exec.argv_ptrs.as_ptr(),
                exec.env_ptrs.as_ptr(),
            )
        };
        // execvp's rules: keep looking past missing entries, remember a permission problem.
        match Errno::last() {
            Errno::EACCES => got_eacces = true,
            Errno::ENOENT | Errno::ENOTDIR | Errno::ESTALE | Errno::ENODEV | Errno::ETIMEDOUT => {}
            other => {
                last = other;
                got_eacces = false;
                break;
            }
        }
    }
    let errno = if got_eacces { Errno::EACCES } else { last };
    Record::ExecFailed {
        errno: errno as i32,
    }
    .send(status);
    exit(EXEC_FAILED)
}

fn exit(code: i32) -> ! {
    // SAFETY: `_exit` ends the process without running the parent's atexit handlers or
    // flushing its stdio copies, which is exactly what a forked child must do.
    unsafe { libc::_exit(code) }
}

/// Undoes what the parent's state would otherwise leak into the container: signal
/// dispositions and mask (the parent blocked everything around `clone`; Rust ignores
/// SIGPIPE), the controlling terminal (so a Ctrl-C reaches kiln, which kills the step, and not
/// the step directly), and the umask (setup creates files with exact modes).
fn prelude() {
    for sig in 1..=libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: an all-zero `sigaction` is a valid SIG_DFL action with an empty mask.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = libc::SIG_DFL;
        // SAFETY: `action` is a valid sigaction; glibc refuses its reserved signals (EINVAL),
        // which is fine to ignore.
        unsafe { libc::sigaction(sig, &action, std::ptr::null_mut()) };
    }
    let _ = nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
    let _ = setsid();
    umask(Mode::empty());
}

fn run(
    op: &Op,
    index: usize,
    slots: &mut [RawFd],
    old_root: &mut RawFd,
    status: BorrowedFd<'_>,
) -> nix::Result<()> {
    match op {
        Op::Stdio {
            stdin,
            stdout,
            stderr,
        } => stdio(*stdin, *stdout, *stderr),
        Op::JoinCgroup(files) => {
            for file in files {
                let fd = open(
                    file.as_c_str(),
                    OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )?;
                nix::unistd::write(&fd, b"0")?;
            }
            Ok(())
        }
        Op::Unshare(flags) => nix::sched::unshare(*flags),
        Op::MakePrivate => mount(
            None::<&CStr>,
            c"/",
            None::<&CStr>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&CStr>,
        ),
        Op::Chdir(dir) | Op::Cwd(dir) => chdir(dir.as_c_str()),
        Op::Mount(m) => match do_mount(m, m.data.as_deref()) {
            // sysfs is mounted only from a user namespace that owns the network namespace;
            // rootless with the host's network it is refused: the host's /sys, bound
            // read-only, as runc does rootless.
            Err(Errno::EPERM) if m.fstype.as_deref() == Some(c"sysfs") => {
                mount(
                    Some(c"/sys"),
                    m.target.as_c_str(),
                    None::<&CStr>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&CStr>,
                )?;
                remount(m.target.as_c_str(), m.flags | MsFlags::MS_RDONLY)
            }
            // devpts's gid=5 (tty) is refused where group 5 is not mapped (rootless with only
            // the user's own id): without it, as runc does rootless.
            Err(Errno::EINVAL) if m.fstype.as_deref() == Some(c"devpts") => {
                do_mount(m, Some(c"newinstance,ptmxmode=0666,mode=0620"))
            }
            other => other,
        },
        Op::RootMount { mount, retry } => match (do_mount(mount, mount.data.as_deref()), retry) {
            (Err(Errno::EINVAL), Some(data)) => do_mount(mount, Some(data)),
            (result, _) => result,
        },
        Op::OpenSource { path, slot } => {
            let fd = open(
                path.as_c_str(),
                OFlag::O_PATH | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            let slot = slots.get_mut(*slot).ok_or(Errno::EBADF)?;
            *slot = fd.into_raw_fd();
            Ok(())
        }
        Op::PivotRoot(root) => {
            let fd = open(
                c"/",
                OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            *old_root = fd.into_raw_fd();
            chdir(root.as_c_str())?;
            // runc's trick: with new_root == put_old the old root ends up stacked on the new
            // one, so no directory has to be made in the image for it.
            pivot_root(c".", c".")
        }
        Op::BindSource {
            slot,
            target,
            recursive,
            remount: after,
        } => {
            let fd = *slots.get(*slot).ok_or(Errno::EBADF)?;
            let mut buf = [0u8; 32];
            let source = fd_path(fd, &mut buf)?;
            let mut flags = MsFlags::MS_BIND;
            if *recursive {
                flags |= MsFlags::MS_REC;
            }
            mount(
                Some(source),
                target.as_c_str(),
                None::<&CStr>,
                flags,
                None::<&CStr>,
            )?;
            match after {
                Some(flags) => remount(target, *flags),
                None => Ok(()),
            }
        }
        Op::Remount { target, flags } => remount(target, *flags),
        Op::Ensure(ensure) => ensure_path(ensure, index, status),
        Op::DeviceNode { path, rdev } => match nix::sys::stat::mknod(
            path.as_c_str(),
            nix::sys::stat::SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            *rdev,
        ) {
            // In a user namespace (rootless) no device node can be made: an empty file is the
            // mount point the host's node is bound over instead, as runc does rootless.
            Err(Errno::EPERM) => nix::fcntl::open(
                path.as_c_str(),
                nix::fcntl::OFlag::O_CREAT
                    | nix::fcntl::OFlag::O_WRONLY
                    | nix::fcntl::OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o666),
            )
            .map(drop),
            other => other,
        },
        Op::Symlink { target, link } => {
            // SAFETY: both are valid C strings.
            Errno::result(unsafe { libc::symlink(target.as_ptr(), link.as_ptr()) }).map(drop)
        }
        Op::Mask(path) => mask(path),
        Op::Readonly(path) => {
            match mount(
                Some(path.as_c_str()),
                path.as_c_str(),
                None::<&CStr>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&CStr>,
            ) {
                Err(Errno::ENOENT) => return Ok(()),
                other => other?,
            }
            remount(
                path,
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            )
        }
        Op::DetachOldRoot => {
            // SAFETY: `old_root` was opened by Op::PivotRoot and is owned by this process.
            let fd = unsafe { BorrowedFd::borrow_raw(*old_root) };
            fchdir(fd)?;
            umount2(c".", MntFlags::MNT_DETACH)?;
            // The sources are bound; dropping them lets the detached host tree go.
            for fd in slots.iter().copied().chain(std::iter::once(*old_root)) {
                // SAFETY: each is a descriptor this process opened and no longer uses.
                unsafe { libc::close(fd) };
            }
            chdir(c"/")
        }
        Op::Hostname(name) => sethostname(OsStr::from_bytes(name.to_bytes())),
        Op::LoopbackUp => loopback_up(),
        Op::Capabilities { keep, last_cap } => caps::apply(*keep, *last_cap),
        Op::Identity { uid, gid, groups } => set_identity(*uid, *gid, groups),
        Op::ParentDeathSignal => nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL),
        Op::NoNewPrivs => nix::sys::prctl::set_no_new_privs(),
        Op::Seccomp(filters) => seccomp::apply(filters),
    }
}

/// Raw system calls, not libc's wrappers: glibc applies credential changes to every thread
/// it knows of, and in this copy of a multi-threaded parent those threads do not exist (it
/// would wait for them forever). The kernel changes the calling thread, the only one here.
fn set_identity(uid: u32, gid: u32, groups: &[u32]) -> nix::Result<()> {
    // SAFETY: setgroups reads `groups.len()` gid_t values from the pointer.
    match Errno::result(unsafe {
        libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr())
    }) {
        // A user namespace with only the user's own id mapped denies setgroups: no groups to
        // set is no loss (the inherited ones are unmapped, so they grant nothing inside).
        Err(Errno::EPERM) if groups.is_empty() => {}
        other => {
            other?;
        }
    }
    // SAFETY: plain integer arguments.
    Errno::result(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) })?;
    // SAFETY: plain integer arguments.
    Errno::result(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) }).map(drop)
}

fn do_mount(m: &Mount, data: Option<&CStr>) -> nix::Result<()> {
    mount(
        m.source.as_deref(),
        m.target.as_c_str(),
        m.fstype.as_deref(),
        m.flags,
        data,
    )
}

/// A bind mount's flags can only change by remounting it.
fn remount(target: &CStr, flags: MsFlags) -> nix::Result<()> {
    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags;
    mount(None::<&CStr>, target, None::<&CStr>, flags, None::<&CStr>)
}

/// Puts the parent's descriptors on 0, 1 and 2. They go through fresh numbers first: a pipe
/// end may itself be 0, 1 or 2 (when kiln was started with one closed) and would be clobbered.
fn stdio(stdin: RawFd, stdout: RawFd, stderr: RawFd) -> nix::Result<()> {
    let mut high = [0; 3];
    for (slot, fd) in high.iter_mut().zip([stdin, stdout, stderr]) {
        // SAFETY: the parent keeps these descriptors open across `clone`.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        *slot = fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(3))?;
    }
    for (target, fd) in high.into_iter().enumerate() {
        // SAFETY: `fd` is open; dup2 onto 0..2 gives descriptors without close-on-exec.
        Errno::result(unsafe { libc::dup2(fd, target as RawFd) })?;
    }
    // Everything else kiln has open (other builds' pipes, registry sockets…) stays out.
    // SAFETY: marks descriptors close-on-exec; no memory is involved. Old kernels: no-op.
    unsafe { libc::close_range(3, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as libc::c_int) };
    Ok(())
}

/// "/proc/self/fd/N" in `buf`, without allocating.
fn fd_path(fd: RawFd, buf: &mut [u8; 32]) -> nix::Result<&CStr> {
    const PREFIX: &[u8] = b"/proc/self/fd/";
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; 10];
    let mut n = u32::try_from(fd).map_err(|_| Errno::EBADF)?;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut pos = PREFIX.len();
    for d in digits[..len].iter().rev() {
        buf[pos] = *d;
        pos += 1;
    }
    buf[pos] = 0;
    CStr::from_bytes_with_nul(&buf[..=pos]).map_err(|_| Errno::EINVAL)
}

/// Creates missing components of a path; for mount stubs, reports the first one created and
/// puts back the times of the directory it was created in (so a copied-up parent keeps its
/// original metadata in the layer).
fn ensure_path(ensure: &Ensure, index: usize, status: BorrowedFd<'_>) -> nix::Result<()> {
    let mut restore: Option<(&CStr, TimeSpec, TimeSpec)> = None;
    let mut created = false;
    let count = ensure.prefixes.len();
    for (i, path) in ensure.prefixes.iter().enumerate() {
        match stat(path.as_c_str()) {
            Ok(_) => continue,
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        if ensure.stub && !created {
            let parent = if i == 0 {
                c"/"
            } else {
                ensure.prefixes[i - 1].as_c_str()
            };
            let st = stat(parent)?;
            let atime = TimeSpec::new(st.st_atime, st.st_atime_nsec);
            let mtime = TimeSpec::new(st.st_mtime, st.st_mtime_nsec);
            restore = Some((parent, atime, mtime));
        }
        let result = if i + 1 == count && ensure.file {
            let flags = OFlag::O_CREAT
                | OFlag::O_EXCL
                | OFlag::O_WRONLY
                | OFlag::O_CLOEXEC
                | OFlag::O_NOFOLLOW;
            open(path.as_c_str(), flags, Mode::from_bits_truncate(0o644)).map(drop)
        } else {
            mkdir(path.as_c_str(), Mode::from_bits_truncate(0o755))
        };
        match result {
            // A dangling symlink: nothing to create; the mount on it reports the problem.
            Err(Errno::EEXIST) => continue,
            Err(e) => return Err(e),
            Ok(()) => {}
        }
        if ensure.stub && !created {
            Record::Stub {
                op: index as u32,
                first: i as u32,
            }
            .send(status);
        }
        created = true;
    }
    if let Some((parent, atime, mtime)) = restore {
        utimensat(
            nix::fcntl::AT_FDCWD,
            parent,
            &atime,
            &mtime,
            UtimensatFlags::FollowSymlink,
        )?;
    }
    Ok(())
}

/// runc's masking: /dev/null over a file, an empty read-only tmpfs over a directory.
fn mask(path: &CStr) -> nix::Result<()> {
    match mount(
        Some(c"/dev/null"),
        path,
        None::<&CStr>,
        MsFlags::MS_BIND,
        None::<&CStr>,
    ) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::ENOTDIR) => mount(
            Some(c"tmpfs"),
            path,
            Some(c"tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&CStr>,
        ),
        Err(e) => Err(e),
    }
}

/// A new network namespace has `lo`, down; `SIOCSIFFLAGS` brings it up.
fn loopback_up() -> nix::Result<()> {
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: `ifreq` is plain data; all-zero is a valid value (empty name, zero flags).
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    req.ifr_name[0] = b'l' as libc::c_char;
    req.ifr_name[1] = b'o' as libc::c_char;
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags member of a valid `ifreq`.
    Errno::result(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) })?;
    // SAFETY: after SIOCGIFFLAGS the union holds the flags member.
    unsafe { req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads the name and the flags member of a valid `ifreq`.
    Errno::result(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) }).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_paths_are_formatted_without_allocating() {
        let mut buf = [0u8; 32];
        assert_eq!(fd_path(7, &mut buf).unwrap(), c"/proc/self/fd/7");
        assert_eq!(fd_path(1234, &mut buf).unwrap(), c"/proc/self/fd/1234");
        assert_eq!(fd_path(0, &mut buf).unwrap(), c"/proc/self/fd/0");
    }
}
