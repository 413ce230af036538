//! Removing what dead kiln processes left: the temps named after an owner that is gone
//! ([`super::owner`]), with anything still mounted below them detached first. The primitive
//! under `reclaim` (stores, exports) and the executors' own sweeps alike.

use std::path::{Path, PathBuf};

use super::owner;

/// Removes the dead owners' temps directly in `dir`; returns how many went.
pub(crate) fn sweep_dir(dir: &Path) -> usize {
    owner::dead_temps_in(dir)
        .iter()
        .filter(|path| remove_leftover(path).is_ok())
        .count()
}

/// Removes a leftover file or directory tree. Anything still mounted below it (a leftover of a
/// kiln that mounted in the host's namespace) is detached first, so the removal never reaches
/// into a mounted layer or a user's bind mount.
pub(crate) fn remove_leftover(path: &Path) -> std::io::Result<()> {
    for mount in mounts_under(path) {
        let _ = nix::mount::umount2(&mount, nix::mount::MntFlags::MNT_DETACH);
    }
    crate::fsutil::remove_path(path)
}

/// Mount points at or below `path` in this process's namespace, deepest first.
fn mounts_under(path: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mountinfo(field)))
        .filter(|point| point.starts_with(path))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found
}

/// mountinfo writes space, tab, newline and backslash as three octal digits after `\`.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(code) = bytes
                .get(i + 1..i + 4)
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        {
            out.push(code);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_dir::TestDir;

    #[test]
    fn only_dead_owners_temps_go() {
        let dir = TestDir::new("reclaim-sweep");
        let dead_dir = dir.path().join(format!("kiln-tmp-{}-1-0.layer", u32::MAX));
        std::fs::create_dir_all(dead_dir.join("a/b")).unwrap();
        std::fs::write(dead_dir.join("a/b/file"), "x").unwrap();
        let dead_file = dir
            .path()
            .join(format!(".kiln-tmp-{}-1-1.app.tar", u32::MAX));
        std::fs::write(&dead_file, "half").unwrap();
        let mine = dir.path().join(owner::temp_name("mine"));
        std::fs::create_dir(&mine).unwrap();
        let foreign = dir.path().join("blob-1.tmp");
        std::fs::write(&foreign, "?").unwrap();

        assert_eq!(sweep_dir(dir.path()), 2);
        assert!(!dead_dir.exists() && !dead_file.exists());
        assert!(mine.is_dir() && foreign.is_file());
        assert_eq!(sweep_dir(&dir.path().join("missing")), 0);
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo(r"/a\040b\134c"), "/a b\\c");
        assert_eq!(unescape_mountinfo(r"/plain\04"), r"/plain\04");
    }
}
