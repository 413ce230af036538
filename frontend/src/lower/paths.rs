//! Path rules of the Dockerfile: WORKDIR joins, destinations relative to WORKDIR.

/// `path.Clean` for slash paths (Go semantics: `..` at the root stays at the root).
pub(crate) fn clean(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// The new WORKDIR after `WORKDIR path` in a stage whose WORKDIR is `current`: BuildKit's
/// `NormalizeWorkdir`, which keeps an absolute path as written (`/tmp/` stays `/tmp/` in the
/// config) and joins a relative one to the current directory with `path.Join`.
pub(crate) fn workdir(current: &str, path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        let base = if current.is_empty() { "/" } else { current };
        clean(&format!("{base}/{path}"))
    }
}

/// A COPY/ADD destination made absolute against WORKDIR, keeping a trailing `/` (which
/// means "a directory"); `.` and the empty string are the working directory itself.
pub(crate) fn dest(workdir: &str, dest: &str) -> String {
    let dest = if dest == "." || dest.is_empty() {
        "./"
    } else {
        dest
    };
    let trailing = dest.ends_with('/') || dest.ends_with("/.");
    let base = if workdir.is_empty() { "/" } else { workdir };
    let joined = if dest.starts_with('/') {
        clean(dest)
    } else {
        clean(&format!("{base}/{dest}"))
    };
    if trailing && !joined.ends_with('/') {
        format!("{joined}/")
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_like_go() {
        assert_eq!(clean("/a/../../b/./c/"), "/b/c");
        assert_eq!(clean("a/.."), ".");
        assert_eq!(clean("../a"), "../a");
    }

    #[test]
    fn workdir_joins() {
        assert_eq!(workdir("", "app"), "/app");
        assert_eq!(workdir("/app", "src/.."), "/app");
        assert_eq!(workdir("/app", "/srv"), "/srv");
        assert_eq!(workdir("/app", "/tmp/"), "/tmp/");
        assert_eq!(workdir("/tmp/", "x/"), "/tmp/x");
    }

    #[test]
    fn dest_keeps_directory_slash() {
        assert_eq!(dest("/app", "."), "/app/");
        assert_eq!(dest("/app", "x"), "/app/x");
        assert_eq!(dest("/app", "x/"), "/app/x/");
        assert_eq!(dest("", "/etc/"), "/etc/");
        assert_eq!(dest("/w", ""), "/w/");
    }
}
