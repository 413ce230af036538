//! Paths inside the container, cleaned lexically the way a runtime resolves them against the
//! rootfs: always absolute, `.` dropped, `..` popping one component and never climbing above
//! `/`. Symlinks are not followed here; whoever touches the filesystem resolves them inside
//! the rootfs (`openat2(RESOLVE_IN_ROOT)`, runc's securejoin).

use std::path::PathBuf;

/// The cleaned components of container path `path` (relative or absolute, taken from `/`).
pub(super) fn components(path: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// `path` as a clean absolute container path (`/` for the root).
pub(super) fn absolute(path: &str) -> String {
    let mut out = String::from("/");
    out.push_str(&components(path).join("/"));
    out
}

/// `path` relative to the root, for joining onto a directory that stands for `/`.
pub(super) fn relative(path: &str) -> PathBuf {
    components(path).iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_like_a_rootfs_join() {
        assert_eq!(absolute(""), "/");
        assert_eq!(absolute("a/./b//c/"), "/a/b/c");
        assert_eq!(absolute("/../../etc/../x"), "/x");
        assert_eq!(relative("/a/b"), PathBuf::from("a/b"));
        assert_eq!(relative("/.."), PathBuf::new());
    }
}
