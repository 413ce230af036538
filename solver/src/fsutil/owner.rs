//! Temp names that say who owns them, so any kiln process can tell a dead process's leftovers
//! from a live one's work in progress.
//!
//! Every temp file, directory, bundle and cgroup kiln makes is named
//! `kiln-tmp-<pid>-<start>-<n>[.<label>]` (with a leading `.` beside a user's destination):
//! `<pid>` and `<start>` (the process's start time in clock ticks since boot, from
//! `/proc/<pid>/stat`) name the owner, `<n>` tells its temps apart. The start time is what a
//! pid alone cannot give: after a kill -9 the pid is soon reused, and a leftover owned by a
//! recycled pid would otherwise look alive forever. The owner is dead when `/proc/<pid>` is
//! gone or holds a process that started at another time.
//!
//! Names that do not parse are never someone's to remove by this rule (the store's older
//! temps fall back to their age; see `gc`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// What every owned temp name starts with (after an optional `.`).
const MARKER: &str = "kiln-tmp-";

/// A process that owns temps: its pid and start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owner {
    pid: u32,
    start: u64,
}

impl Owner {
    /// This process.
    pub(crate) fn current() -> Owner {
        static ME: OnceLock<Owner> = OnceLock::new();
        *ME.get_or_init(|| {
            let pid = std::process::id();
            Owner {
                pid,
                start: start_time(pid).unwrap_or(0),
            }
        })
    }

    /// The owner a temp name carries, `None` when `name` is not an owned temp name.
    pub(crate) fn of_name(name: &str) -> Option<Owner> {
        let rest = name
            .strip_prefix('.')
            .unwrap_or(name)
            .strip_prefix(MARKER)?;
        let mut fields = rest.splitn(3, '-');
        let pid = fields.next()?.parse().ok()?;
        let start = fields.next()?.parse().ok()?;
        // The counter, up to the label.
        let n = fields.next()?;
        let n = n.split_once('.').map_or(n, |(n, _)| n);
        n.parse::<u64>().ok()?;
        Some(Owner { pid, start })
    }

    /// Whether the owner still runs. When in doubt (an unreadable `/proc`), it does.
    pub(crate) fn is_alive(self) -> bool {
        if self == Owner::current() {
            return true;
        }
        match std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) {
            Ok(stat) => parse_start_time(&stat).is_none_or(|start| start == self.start),
            Err(e) => e.kind() != std::io::ErrorKind::NotFound,
        }
    }
}

/// A fresh owned name: `kiln-tmp-<pid>-<start>-<n>`, then `.<label>` when one is given.
pub(crate) fn temp_name(label: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let me = Owner::current();
    let n = N.fetch_add(1, Ordering::Relaxed);
    let mut name = format!("{MARKER}{}-{}-{n}", me.pid, me.start);
    if !label.is_empty() {
        name.push('.');
        name.push_str(label);
    }
    name
}

/// A fresh hidden owned name, for temps beside a user's destination (`.kiln-tmp-…`).
pub(crate) fn hidden_temp_name(label: &str) -> String {
    format!(".{}", temp_name(label))
}

/// Whether `name` is an owned temp name whose owner is gone.
pub(crate) fn is_dead_temp(name: &str) -> bool {
    Owner::of_name(name).is_some_and(|owner| !owner.is_alive())
}

/// The start time (field 22 of `/proc/<pid>/stat`) of `pid`.
fn start_time(pid: u32) -> Option<u64> {
    parse_start_time(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Field 22 of a `stat` line. The command name (field 2) is in parentheses and may hold spaces
/// and parentheses itself, so fields are counted from the last `)`.
fn parse_start_time(stat: &str) -> Option<u64> {
    let (_, after) = stat.rsplit_once(')')?;
    // `after` starts with field 3 (state); the start time is field 22.
    after.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// The dead owners' temps directly in `dir`, by path. A missing `dir` has none.
pub(crate) fn dead_temps_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(is_dead_temp))
        .map(|e| e.path())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_their_owner() {
        let name = temp_name("layer-ab.c");
        assert!(name.starts_with("kiln-tmp-"));
        assert!(name.ends_with(".layer-ab.c"));
        assert_eq!(Owner::of_name(&name), Some(Owner::current()));
        assert_eq!(
            Owner::of_name(&hidden_temp_name("app.tar")),
            Some(Owner::current())
        );
        assert_eq!(Owner::of_name(&temp_name("")), Some(Owner::current()));
        assert!(Owner::current().start > 0);
        for foreign in [
            "blob-1.tmp",
            "kiln-tmp-",
            "kiln-tmp-12-x-1",
            "kiln-tmp-12-34",
            "kiln-tmp-12-34-x.label",
            "..kiln-tmp-1-2-3",
            "layer-kiln-tmp-1-2-3",
        ] {
            assert_eq!(Owner::of_name(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn the_living_are_told_from_the_dead() {
        assert!(Owner::current().is_alive());
        assert!(!is_dead_temp(&temp_name("mine")));
        // Our parent runs, but not since the start of time.
        let parent = std::os::unix::process::parent_id();
        let start = start_time(parent).unwrap();
        assert!(Owner { pid: parent, start }.is_alive());
        assert!(
            !Owner {
                pid: parent,
                start: start + 1
            }
            .is_alive()
        );
        // No process has a pid above the kernel's limit.
        assert!(
            !Owner {
                pid: u32::MAX,
                start: 1
            }
            .is_alive()
        );
        assert!(is_dead_temp(&format!("kiln-tmp-{}-1-0.x", u32::MAX)));
    }

    #[test]
    fn start_time_survives_odd_command_names() {
        let stat = "42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 \
                    10 18446744073709551615";
        assert_eq!(parse_start_time(stat), Some(98765));
        assert_eq!(parse_start_time("garbage"), None);
    }
}
