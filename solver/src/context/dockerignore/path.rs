//! Lexical path helpers with Go's `path/filepath` semantics on Unix.
//!
//! Docker normalises patterns (and, in the deprecated API, paths) with `filepath.Clean` and finds
//! parents with `filepath.Dir`; matching must agree with it byte for byte, so these are ports of
//! those rules rather than `std::path`, which keeps `..` and treats `a/./b` differently.

/// Cleans a slash-separated path exactly like Go's `filepath.Clean` on Unix: collapses `//`,
/// drops `.` elements and trailing slashes, resolves `..` lexically, and gives `.` for nothing.
pub fn clean_path(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                // A `..` directly under the root stays at the root.
                _ if rooted => {}
                _ => parts.push(".."),
            },
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// Go's `filepath.Dir`: everything before the last `/`, cleaned; `.` when there is no `/`.
pub(crate) fn parent_dir(path: &str) -> String {
    match path.rfind('/') {
        Some(slash) => clean_path(&path[..=slash]),
        None => ".".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{clean_path, parent_dir};

    #[test]
    fn clean_matches_go() {
        // Cases from Go's own filepath.Clean table.
        let cases = [
            ("", "."),
            ("abc", "abc"),
            ("abc/def", "abc/def"),
            ("a/b/c", "a/b/c"),
            (".", "."),
            ("..", ".."),
            ("../..", "../.."),
            ("../../abc", "../../abc"),
            ("/abc", "/abc"),
            ("/", "/"),
            ("abc/", "abc"),
            ("abc/def/", "abc/def"),
            ("/abc/", "/abc"),
            ("abc//def//ghi", "abc/def/ghi"),
            ("//abc", "/abc"),
            ("///abc", "/abc"),
            ("//abc//", "/abc"),
            ("abc/./def", "abc/def"),
            ("/./abc/def", "/abc/def"),
            ("abc/.", "abc"),
            ("abc/def/ghi/../jkl", "abc/def/jkl"),
            ("abc/def/../ghi/../jkl", "abc/jkl"),
            ("abc/def/..", "abc"),
            ("abc/def/../..", "."),
            ("/abc/def/../..", "/"),
            ("abc/def/../../..", ".."),
            ("/abc/def/../../..", "/"),
            ("abc/def/../../../ghi/jkl/../../../mno", "../../mno"),
            ("/../abc", "/abc"),
            ("abc/./../def", "def"),
            ("abc//./../def", "def"),
            ("abc/../../././../def", "../../def"),
            ("!docs/../x", "x"),
        ];
        for (input, want) in cases {
            assert_eq!(clean_path(input), want, "Clean({input:?})");
        }
    }

    #[test]
    fn dir_matches_go() {
        let cases = [
            ("", "."),
            ("file", "."),
            ("a/b", "a"),
            ("a/b/", "a/b"),
            ("file/", "file"),
            ("/", "/"),
            ("/a", "/"),
            ("a//b", "a"),
        ];
        for (input, want) in cases {
            assert_eq!(parent_dir(input), want, "Dir({input:?})");
        }
    }
}
