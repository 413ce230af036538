//! ADD from `http://` and `https://` URLs, as BuildKit's `dispatchCopy` lowers them: each URL
//! becomes an HTTP source op holding one file, named after the last segment of the URL's
//! path, which a copy action then places at the destination. Remote files are not unpacked
//! unless `--unpack=true` asks for it. The download itself is the solver's business.

use kiln_llb::{CopyParams, FileAction, Op, Source};

use super::Lowering;
use crate::diagnostics::Diagnostic;
use crate::span::Span;

/// BuildKit's name for a download whose URL path has no last segment.
const UNNAMED: &str = "__unnamed__";

/// Whether `src` is an HTTP(S) URL to download. An `http(s)://…` URL whose path ends in
/// `.git` is a git repository (BuildKit's `ParseGitRef` takes it first), not a download.
pub(super) fn is_http_url(src: &str) -> bool {
    let Some(rest) = strip_scheme(src) else {
        return false;
    };
    let (_, path) = split_authority(rest);
    !path_part(path).ends_with(".git")
}

/// The file name a download gets: the last segment of the URL's path, percent-decoded
/// (Go's `path.Base(url.Path)`), or `__unnamed__` when there is none or the URL does not
/// parse.
pub(super) fn url_filename(src: &str) -> String {
    let Some(rest) = strip_scheme(src) else {
        return UNNAMED.to_owned();
    };
    let (_, path) = split_authority(rest);
    let Some(decoded) = percent_decode(path_part(path)) else {
        return UNNAMED.to_owned();
    };
    let base = decoded
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    match base {
        "" | "." | ".." => UNNAMED.to_owned(),
        b if b.contains('\0') => UNNAMED.to_owned(),
        b => b.to_owned(),
    }
}

/// Checks a `--checksum` value the way BuildKit's `digest.Parse` does: a known algorithm
/// and the right number of lowercase hex digits.
pub(super) fn check_checksum(value: &str, span: Span) -> Result<(), Diagnostic> {
    let bad = |why: &str| {
        Diagnostic::error(format!("invalid checksum {value:?}: {why}"), span)
            .with_hint("write it as sha256:<64 hex digits> (sha384 and sha512 work too)")
    };
    let Some((algo, hex)) = value.split_once(':') else {
        return Err(bad("invalid checksum digest format"));
    };
    let len = match algo {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(bad("unsupported digest algorithm")),
    };
    if hex.len() != len {
        return Err(bad("invalid checksum digest length"));
    }
    if !hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(bad("invalid checksum digest format"));
    }
    Ok(())
}

/// A copy source path that names exactly the downloaded file: its name, unless the name
/// holds wildcard characters, where `*` (the directory holds that one file) does the job
/// without the name being read as a pattern.
fn copy_source(filename: &str) -> String {
    if filename.contains(['*', '?', '[']) {
        "*".to_owned()
    } else {
        filename.to_owned()
    }
}

/// What a URL's copy action shares with the instruction's other sources.
pub(super) struct UrlCopy<'a> {
    /// The step's progress name, which the download shows under too (as in BuildKit).
    pub(super) name: &'a str,
    /// The expanded, absolute destination.
    pub(super) dest: &'a str,
    /// `--chown`, expanded.
    pub(super) chown: Option<&'a str>,
    /// `--chmod`, expanded.
    pub(super) chmod: Option<&'a str>,
    /// `--checksum`, expanded and checked.
    pub(super) checksum: Option<&'a str>,
    /// `--unpack`, as given.
    pub(super) unpack: Option<bool>,
    /// `--link`.
    pub(super) link: bool,
    /// The instruction.
    pub(super) span: Span,
}

impl Lowering<'_> {
    /// The HTTP source op for `url` and the copy action that places its file.
    pub(super) fn url_copy(&mut self, url: &str, c: &UrlCopy<'_>) -> FileAction {
        let filename = url_filename(url);
        let source = self.def.push(
            Op::Source(Source::Http {
                url: url.to_owned(),
                checksum: c.checksum.map(str::to_owned),
                filename: filename.clone(),
            }),
            self.location(c.name.to_owned(), c.span),
        );
        FileAction::Copy {
            source,
            params: CopyParams {
                sources: vec![copy_source(&filename)],
                dest: c.dest.to_owned(),
                chown: c.chown.map(str::to_owned),
                chmod: c.chmod.map(str::to_owned),
                parents: false,
                excludes: Vec::new(),
                // Remote archives stay archives unless `--unpack=true` (BuildKit).
                unpack_archives: c.unpack.unwrap_or(false),
                link: c.link,
            },
        }
    }
}

/// The URL after its scheme; case-sensitive, as BuildKit's `isHTTPSource` (`HTTP://x` is a
/// local path there).
fn strip_scheme(src: &str) -> Option<&str> {
    src.strip_prefix("https://")
        .or_else(|| src.strip_prefix("http://"))
}

/// Splits `host[:port]` (with any `user@`) from the rest, which starts with `/`, `?`, `#` or
/// is empty.
fn split_authority(rest: &str) -> (&str, &str) {
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    rest.split_at(end)
}

/// The path without query and fragment.
fn path_part(path: &str) -> &str {
    let end = path.find(['?', '#']).unwrap_or(path.len());
    &path[..end]
}

/// `%XX` escapes decoded; `None` for a malformed escape (Go's `url.Parse` fails then).
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_git_repositories() {
        assert!(is_http_url("https://example.com/a.tar.gz"));
        assert!(is_http_url("http://127.0.0.1:8080/x"));
        assert!(!is_http_url("HTTPS://example.com/x"));
        assert!(is_http_url("https://example.com/repo.git/file"));
        assert!(!is_http_url("https://github.com/moby/buildkit.git"));
        assert!(!is_http_url("https://github.com/moby/buildkit.git#v0.10.1"));
        assert!(!is_http_url("git@github.com:moby/buildkit.git"));
        assert!(!is_http_url("./http://x"));
        assert!(!is_http_url("ftp://example.com/x"));
    }

    #[test]
    fn filenames_follow_go_path_base() {
        assert_eq!(url_filename("https://h/dir/file.txt"), "file.txt");
        assert_eq!(url_filename("https://h/dir/sub/"), "sub");
        assert_eq!(url_filename("https://h/f.txt?x=1#frag"), "f.txt");
        assert_eq!(url_filename("https://h/my%20file.txt"), "my file.txt");
        assert_eq!(url_filename("https://h/a%2Fb"), "b");
        assert_eq!(url_filename("https://h"), "__unnamed__");
        assert_eq!(url_filename("https://h/"), "__unnamed__");
        assert_eq!(url_filename("https://h/?q=a/b"), "__unnamed__");
        assert_eq!(url_filename("https://h/.."), "__unnamed__");
        assert_eq!(url_filename("https://h/bad%zz"), "__unnamed__");
        assert_eq!(url_filename("https://user:pw@h:8443/x/y"), "y");
    }

    #[test]
    fn wildcard_names_are_not_patterns() {
        assert_eq!(copy_source("a.txt"), "a.txt");
        assert_eq!(copy_source("file[1].txt"), "*");
        assert_eq!(copy_source("what?"), "*");
    }

    #[test]
    fn checksums_are_checked_like_digest_parse() {
        let span = Span::default();
        let ok = format!("sha256:{}", "a".repeat(64));
        assert!(check_checksum(&ok, span).is_ok());
        assert!(check_checksum(&format!("sha512:{}", "0".repeat(128)), span).is_ok());
        for bad in [
            "abc".to_owned(),
            "sha256:abc".to_owned(),
            format!("md5:{}", "a".repeat(32)),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}", "g".repeat(64)),
        ] {
            assert!(check_checksum(&bad, span).is_err(), "{bad}");
        }
    }
}
