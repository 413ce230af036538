//! Whether kiln runs inside a user namespace (rootless: an ordinary user's ids mapped to 0 and
//! a subordinate range), which changes what the kernel lets even "root" do: overlay needs
//! `userxattr` (its markers in `user.overlay.*`), and no device node can be made.

use std::sync::OnceLock;

/// Set in a kiln that re-executed itself in a user namespace, so it never re-executes again:
/// `user` for an ordinary user's kiln (whose store is the user's), `identity` for root's
/// without CAP_SYS_ADMIN (see `executor::rootless`).
pub(crate) const REEXEC_ENV: &str = "_KILN_USERNS";

/// Overlay options that keep an upperdir a plain layer diff (no renamed directories, no
/// metadata-only copy-ups, no index tying it to one lower set), whatever the kernel's
/// defaults. In a user namespace (rootless) the kernel mounts overlay only with its markers in
/// `user.overlay.*` (5.11+; kiln's snapshots fall back to those there) and then refuses
/// `redirect_dir` options: redirects and metacopy are off there anyway.
pub(crate) fn overlay_diff_options() -> &'static str {
    if in_user_namespace() {
        "index=off,userxattr"
    } else {
        "index=off,redirect_dir=off,metacopy=off"
    }
}

/// The identity mapping of the initial user namespace, as `/proc/self/uid_map` shows it.
fn is_initial_map(map: &str) -> bool {
    let fields: Vec<&str> = map.split_whitespace().collect();
    fields == ["0", "0", "4294967295"]
}

/// True when this process's user namespace is not the host's (read once): its map says so,
/// or kiln made it (an identity map, for root without CAP_SYS_ADMIN, looks like the host's).
pub(crate) fn in_user_namespace() -> bool {
    static IN: OnceLock<bool> = OnceLock::new();
    *IN.get_or_init(|| {
        std::env::var_os(REEXEC_ENV).is_some()
            || std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|map| !is_initial_map(&map))
    })
}

/// True when this process may give files to other owners: root on the host, or root in a
/// user namespace that maps more than one id (a rootless kiln with subordinate ids). With
/// only its own id mapped, every file stays the caller's (read once).
pub(crate) fn can_chown() -> bool {
    static CAN: OnceLock<bool> = OnceLock::new();
    *CAN.get_or_init(|| {
        rustix::process::geteuid().is_root()
            && std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|map| mapped_ids(&map) > 1)
    })
}

/// How many ids a `uid_map` maps.
fn mapped_ids(map: &str) -> u64 {
    map.lines()
        .filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::is_initial_map;

    #[test]
    fn tells_the_host_map_from_a_namespace_map() {
        assert!(is_initial_map("         0          0 4294967295\n"));
        assert!(!is_initial_map(
            "         0       1001          1\n         1     100000      65535\n"
        ));
        assert!(!is_initial_map("0 1000 1\n"));
        assert_eq!(super::mapped_ids("0 1000 1\n"), 1);
        assert_eq!(super::mapped_ids("0 1001 1\n1 100000 65535\n"), 65536);
    }
}
