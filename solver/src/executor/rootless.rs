//! Rootless kiln: an ordinary user's kiln re-executes itself in a user namespace where it is
//! root — its own id mapped to 0 and its subordinate ids (`/etc/subuid`, `/etc/subgid`, set
//! by `newuidmap`/`newgidmap`, Debian's `uidmap`) to 1…N — as buildah's `unshare` and
//! rootlesskit do. Inside, files keep their in-image owners (stored under the mapped ids on
//! disk), overlay mounts with `userxattr`, and the sandbox makes its namespaces as it does as
//! root, so layers are the same bytes as a root build's.
//!
//! Without subordinate ids (or without `newuidmap`), only the user's own id is mapped: every
//! file is then the user's, and a step that gives a file to another user fails — said in a
//! warning. Where no user namespace can be made at all (a container's seccomp profile, a
//! sysctl), kiln says which setting is missing and goes on without one.
#![allow(unsafe_code)]

use std::ffi::OsString;
use std::io::{Read as _, Write as _};
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::os::unix::process::CommandExt as _;
use std::process::Command;

use nix::libc;

use crate::fsutil::userns::REEXEC_ENV;

/// What a RUN step's namespaces being refused means, and what allows them.
pub const NAMESPACES_REFUSED: &str = ": this environment refuses the namespaces a RUN step \
     runs in — kiln is not root and could not make a user namespace, or it runs in a \
     container without CAP_SYS_ADMIN whose seccomp profile also refuses user namespaces. \
     Give the container `--cap-add SYS_ADMIN --security-opt seccomp=unconfined \
     --security-opt apparmor=unconfined` (or `--privileged`), or allow unprivileged user \
     namespaces (`--security-opt seccomp=unconfined` is enough for kiln's rootless mode)";

/// The effective capabilities include CAP_SYS_ADMIN (what namespaces and mounts need).
fn has_sys_admin() -> bool {
    const CAP_SYS_ADMIN: u32 = 21;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let hex = status
                .lines()
                .find_map(|l| l.strip_prefix("CapEff:"))?
                .trim()
                .to_owned();
            u64::from_str_radix(&hex, 16).ok()
        })
        .is_some_and(|caps| caps & (1 << CAP_SYS_ADMIN) != 0)
}

/// One `name:start:count` range of `/etc/subuid` or `/etc/subgid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    /// First subordinate id.
    pub start: u32,
    /// How many.
    pub count: u32,
}

/// The ranges `/etc/subuid`-format `text` gives `user` (by name or by numeric id), in order.
pub fn ranges_for(text: &str, user: &str, id: u32) -> Vec<IdRange> {
    let id = id.to_string();
    text.lines()
        .filter_map(|line| {
            let mut f = line.trim().split(':');
            let (owner, start, count) = (f.next()?, f.next()?, f.next()?);
            if owner != user && owner != id {
                return None;
            }
            Some(IdRange {
                start: start.trim().parse().ok()?,
                count: count.trim().parse().ok().filter(|c| *c > 0)?,
            })
        })
        .collect()
}

/// The `newuidmap`/`newgidmap` arguments after the pid: the caller's id as 0, then the
/// ranges from 1 on.
fn map_args(own: u32, ranges: &[IdRange]) -> Vec<String> {
    let mut args = vec!["0".to_owned(), own.to_string(), "1".to_owned()];
    let mut inside: u64 = 1;
    for r in ranges {
        args.extend([inside.to_string(), r.start.to_string(), r.count.to_string()]);
        inside += u64::from(r.count);
    }
    args
}

/// What running rootless needs said before the build starts.
#[derive(Debug)]
pub enum Notice {
    /// Only the user's own id could be mapped.
    SingleId(String),
    /// No user namespace could be made; kiln runs as the user, unmapped.
    NoNamespace(String),
}

/// For a non-root kiln outside any user namespace: runs this same command again inside one
/// and returns its exit status (`Ok(Some(code))`); `Ok(None)` when kiln is root, already in
/// its namespace, or none could be made (then `notice` has said why). Root without
/// CAP_SYS_ADMIN (an unprivileged container) goes into one too, its ids mapped to
/// themselves: there it has the capabilities a RUN step's namespaces need.
pub fn reexec_in_user_namespace(notice: &mut dyn FnMut(Notice)) -> std::io::Result<Option<i32>> {
    let uid = nix::unistd::geteuid();
    if std::env::var_os(REEXEC_ENV).is_some() || (uid.is_root() && has_sys_admin()) {
        return Ok(None);
    }
    if uid.is_root() {
        return reexec(IdMaps::Identity, notice);
    }
    let gid = nix::unistd::getegid();
    let name = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name);
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let sub_uids = ranges_for(&read("/etc/subuid"), &name, uid.as_raw());
    let sub_gids = ranges_for(&read("/etc/subgid"), &name, uid.as_raw());
    let helpers = which("newuidmap").is_some() && which("newgidmap").is_some();
    let (uid, gid) = (uid.as_raw(), gid.as_raw());
    let maps = if helpers && !sub_uids.is_empty() && !sub_gids.is_empty() {
        IdMaps::Subordinate {
            uid,
            gid,
            sub_uids,
            sub_gids,
        }
    } else {
        notice(Notice::SingleId(format!(
            "no subordinate ids for {name} in /etc/subuid and /etc/subgid{}: kiln runs with only \
             your own id mapped, so every file is yours and a step that gives one to another user \
             (chown, a package adding a user) fails; add a range with `usermod --add-subuids \
             100000-165535 --add-subgids 100000-165535 {name}`",
            if helpers {
                ""
            } else {
                " (or newuidmap/newgidmap: Debian's uidmap)"
            }
        )));
        IdMaps::Single { uid, gid }
    };
    reexec(maps, notice)
}

/// How the new user namespace's ids map to this one's.
#[derive(Debug)]
enum IdMaps {
    /// Root without CAP_SYS_ADMIN: every id to itself (root may write that map).
    Identity,
    /// The user as 0, its subordinate ranges from 1 (newuidmap/newgidmap check them).
    Subordinate {
        uid: u32,
        gid: u32,
        sub_uids: Vec<IdRange>,
        sub_gids: Vec<IdRange>,
    },
    /// The user as 0, nothing else.
    Single { uid: u32, gid: u32 },
}

/// Runs this command again in a new user namespace mapped as `maps` says; its exit status,
/// or `None` when no namespace could be made (`notice` says why).
fn reexec(maps: IdMaps, notice: &mut dyn FnMut(Notice)) -> std::io::Result<Option<i32>> {
    let (pid_r, pid_w) = nix::unistd::pipe().map_err(std::io::Error::from)?;
    let (go_r, go_w) = nix::unistd::pipe().map_err(std::io::Error::from)?;
    let mut cmd = Command::new("/proc/self/exe");
    let mode = if matches!(maps, IdMaps::Identity) {
        "identity"
    } else {
        "user"
    };
    cmd.args(std::env::args_os().skip(1))
        .env(REEXEC_ENV, mode)
        .arg0(
            std::env::args_os()
                .next()
                .unwrap_or_else(|| OsString::from("kiln")),
        );
    let (pid_w_fd, go_r_fd) = (pid_w.as_raw_fd(), go_r.as_raw_fd());
    // SAFETY: runs in the forked child before exec, using only async-signal-safe syscalls
    // (prctl, unshare, getpid, write, read) on descriptors the parent keeps open across fork.
    unsafe {
        cmd.pre_exec(move || {
            // Killing the parent (a CI timeout) stops the build too, cleanly.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            let status: i32 = if libc::unshare(libc::CLONE_NEWUSER) == 0 {
                libc::getpid()
            } else {
                -*libc::__errno_location()
            };
            let bytes = status.to_ne_bytes();
            libc::write(pid_w_fd, bytes.as_ptr().cast(), bytes.len());
            if status < 0 {
                return Err(std::io::Error::from_raw_os_error(-status));
            }
            let mut go = [0u8; 1];
            if libc::read(go_r_fd, go.as_mut_ptr().cast(), 1) != 1 || go[0] != 1 {
                return Err(std::io::Error::other(
                    "the user namespace could not be mapped",
                ));
            }
            Ok(())
        });
    }
    let mapper = std::thread::spawn(move || map_child(pid_r, go_w, &maps));
    let spawned = cmd.spawn();
    // The parent's copies of the child's ends go, so the mapper sees EOF if the child died.
    drop(cmd);
    drop(pid_w);
    drop(go_r);
    let mapped = mapper
        .join()
        .unwrap_or_else(|_| Err("the id mapper panicked".to_owned()));
    let mut child = match (spawned, mapped) {
        (Ok(child), Ok(())) => child,
        (Ok(mut child), Err(why)) => {
            let _ = child.kill();
            let _ = child.wait();
            notice(Notice::NoNamespace(why));
            return Ok(None);
        }
        (Err(_), Err(why)) => {
            notice(Notice::NoNamespace(why));
            return Ok(None);
        }
        (Err(e), Ok(())) => return Err(e),
    };
    // The terminal's Ctrl-C reaches the child too; it stops the build and says so.
    // SAFETY: SIG_IGN for SIGINT in this process; no handler runs.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    let status = child.wait()?;
    Ok(Some(status.code().unwrap_or_else(|| {
        128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(1)
    })))
}

/// The parent's side: reads the child's pid (or the errno its `unshare` failed with), writes
/// its maps, and lets it go on. Errors say what is missing and how to allow it.
fn map_child(pid_r: OwnedFd, go_w: OwnedFd, maps: &IdMaps) -> Result<(), String> {
    let mut pid_r = std::fs::File::from(pid_r);
    let mut go_w = std::fs::File::from(go_w);
    let mut buf = [0u8; 4];
    pid_r.read_exact(&mut buf).map_err(|_| {
        "kiln's re-executed process ended before it made its user namespace".to_owned()
    })?;
    let status = i32::from_ne_bytes(buf);
    if status < 0 {
        let errno = std::io::Error::from_raw_os_error(-status);
        return Err(match maps {
            IdMaps::Identity => format!(
                "kiln is root without CAP_SYS_ADMIN and could not make a user namespace to \
                 build in ({errno}): the container's seccomp profile (Docker's default) refuses \
                 it. Run the container with `--security-opt seccomp=unconfined \
                 --security-opt apparmor=unconfined` (kiln then builds in a user namespace), or \
                 add `--cap-add SYS_ADMIN` too"
            ),
            _ => format!(
                "creating a user namespace failed ({errno}): unprivileged user namespaces are \
                 off here. On a host: `sysctl kernel.unprivileged_userns_clone=1` (Debian) and \
                 `user.max_user_namespaces` > 0; in a container: run it with \
                 `--security-opt seccomp=unconfined --security-opt apparmor=unconfined` \
                 (Docker's default profile refuses unshare(CLONE_NEWUSER))"
            ),
        });
    }
    let pid = status.to_string();
    let result = match maps {
        IdMaps::Subordinate {
            uid,
            gid,
            sub_uids,
            sub_gids,
        } => run_map("newuidmap", &pid, &map_args(*uid, sub_uids))
            .and_then(|()| run_map("newgidmap", &pid, &map_args(*gid, sub_gids))),
        IdMaps::Single { uid, gid } => {
            write_maps(&pid, true, &format!("0 {uid} 1"), &format!("0 {gid} 1"))
        }
        IdMaps::Identity => write_maps(&pid, false, "0 0 4294967295", "0 0 4294967295"),
    };
    let go = u8::from(result.is_ok());
    // The child waits for this byte; a failed write means it is gone already.
    let _ = go_w.write_all(&[go]);
    result
}

/// Runs `newuidmap PID ARGS…` (or newgidmap), which checks the ranges against /etc/sub*id.
fn run_map(tool: &str, pid: &str, args: &[String]) -> Result<(), String> {
    let out = Command::new(tool)
        .arg(pid)
        .args(args)
        .output()
        .map_err(|e| format!("{tool}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{tool} {pid} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Writes the child's maps directly: the user's own id (which an unprivileged process may
/// map for its own child after denying it setgroups), or root's identity map.
fn write_maps(pid: &str, deny_setgroups: bool, uid_map: &str, gid_map: &str) -> Result<(), String> {
    let write = |file: &str, text: &str| {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, text).map_err(|e| format!("{path}: {e}"))
    };
    if deny_setgroups {
        write("setgroups", "deny")?;
    }
    write("uid_map", uid_map)?;
    write("gid_map", gid_map)
}

/// The first `name` on PATH.
fn which(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subordinate_ranges_by_name_or_id_in_order() {
        let text = "alice:100000:65536\nbob:165536:65536\n# note\n1000:300000:10\nalice:400000:0\n";
        assert_eq!(
            ranges_for(text, "alice", 1000),
            [
                IdRange {
                    start: 100000,
                    count: 65536
                },
                IdRange {
                    start: 300000,
                    count: 10
                }
            ]
        );
        assert!(ranges_for(text, "carol", 1002).is_empty());
        assert_eq!(
            map_args(1000, &ranges_for(text, "alice", 1000)),
            [
                "0", "1000", "1", "1", "100000", "65536", "65537", "300000", "10"
            ]
        );
    }
}
