//! HTTP(S) sources (`ADD https://…`): the URL's content becomes a directory holding one file,
//! mode 0600, its mtime the response's `Last-Modified` (else the epoch), as BuildKit's HTTP
//! source writes it.
//!
//! Downloads stream to disk through a temp directory in the store, hashed on the way, and are
//! renamed into the download cache ([`cache`]). A later build asks with the stored `ETag`
//! (`If-None-Match`) and reuses the stored file on `304 Not Modified`; a pinned `--checksum`
//! whose content is stored already needs no request at all. The source's key is derived from
//! what was downloaded, not from the URL: the same bytes keep the steps after it cached,
//! changed bytes rerun them.

mod cache;
mod checksum;
mod date;
mod error;
mod fetch;

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use kiln_llb::CacheKey;

use crate::context::Context;
use crate::fsutil::tempdir::TempDir;
use crate::progress::Vertex;
use cache::{HttpCache, Record};
use checksum::Pinned;
pub use error::HttpError;
use error::io_failure;
use fetch::{Fetched, Target, fetch};

/// What to download.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request<'a> {
    /// The URL.
    pub(crate) url: &'a str,
    /// `--checksum`, as written.
    pub(crate) checksum: Option<&'a str>,
    /// The name the file gets in its directory.
    pub(crate) filename: &'a str,
}

/// A downloaded source: its key (from its content) and the directory holding the file.
#[derive(Debug)]
pub(crate) struct Downloaded {
    /// The source's cache key.
    pub(crate) key: CacheKey,
    /// The directory, to copy from.
    pub(crate) context: Context,
}

/// Downloads `req` into the download cache of the store at `store_root` (or answers from it:
/// by checksum, or by `ETag` unless `fresh`), reporting to `vertex`.
pub(crate) fn download(
    store_root: &Path,
    req: Request<'_>,
    fresh: bool,
    vertex: Vertex<'_>,
) -> Result<Downloaded, HttpError> {
    let (url, filename) = (req.url, req.filename);
    let shown = redact(url);
    if !is_one_component(filename) {
        return Err(HttpError::FileName {
            url: shown,
            name: filename.to_owned(),
        });
    }
    let pinned = req.checksum.map(|c| Pinned::parse(c, &shown)).transpose()?;
    let cache = HttpCache::new(store_root);
    let record_path = cache.record_path(url, filename);
    let record = if fresh {
        None
    } else {
        cache.usable_record(&record_path, filename)
    };
    let done = |rec: &Record| -> Result<Downloaded, HttpError> {
        Ok(Downloaded {
            key: crate::cache::key::http_content(filename, &rec.digest, rec.mtime),
            context: cache.context(rec, &shown)?,
        })
    };

    // A pinned checksum that the stored download already has: no request (BuildKit).
    if let (Some(pin), Some(rec)) = (&pinned, &record)
        && pin.matches_stored(&rec.digest, &cache.file(rec, filename))
    {
        vertex.cached();
        return done(rec);
    }

    let started = Instant::now();
    let tmp_parent = store_root.join("tmp");
    let tmp = TempDir::new(&tmp_parent, "http").map_err(|e| io_failure(&shown, &tmp_parent, e))?;
    let target = Target {
        url,
        shown: &shown,
        file: tmp.path().join(filename),
        etag: record
            .as_ref()
            .filter(|_| pinned.is_none())
            .and_then(|r| r.etag.as_deref()),
        pinned: pinned.as_ref().map(|p| p.algo),
    };
    let rec = match (fetch(vertex, &target)?, &record) {
        (Fetched::NotModified, Some(rec)) => {
            vertex.cached();
            rec.clone()
        }
        (Fetched::NotModified, None) => {
            return Err(HttpError::UnaskedNotModified { url: shown });
        }
        (Fetched::Body(body), _) => {
            if let Some(pin) = &pinned
                && !pin.matches(&body.digests)
            {
                return Err(HttpError::DigestMismatch {
                    actual: pin.actual(&body.digests),
                    expected: pin.expected.clone(),
                    url: shown,
                });
            }
            let mtime = body
                .last_modified
                .as_deref()
                .and_then(date::parse_http_date)
                .unwrap_or(0);
            finish_file(&target.file, mtime).map_err(|e| io_failure(&shown, &target.file, e))?;
            let rec = Record {
                url: url.to_owned(),
                filename: filename.to_owned(),
                digest: body.digests.sha256,
                etag: body.etag,
                last_modified: body.last_modified,
                mtime,
            };
            cache.store(tmp.path(), &rec, &record_path, &shown)?;
            vertex.done(started.elapsed());
            rec
        }
    };
    done(&rec)
}

/// The file name must be one plain path component: it is joined to a directory.
fn is_one_component(name: &str) -> bool {
    !(name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']))
}

/// Mode 0600 (BuildKit's) and the mtime, once the content is complete.
fn finish_file(file: &Path, mtime: i64) -> std::io::Result<()> {
    fs::set_permissions(file, fs::Permissions::from_mode(0o600))?;
    let secs = Duration::from_secs(mtime.unsigned_abs());
    let time = if mtime >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(secs)
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(secs)
    }
    .unwrap_or(SystemTime::UNIX_EPOCH);
    let times = fs::FileTimes::new().set_accessed(time).set_modified(time);
    fs::File::options().write(true).open(file)?.set_times(times)
}

/// The URL with any password replaced, for messages (BuildKit's `RedactCredentials`).
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:xxxxx@{host}{tail}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("https://u:secret@h:1/p?q#f"),
            "https://u:xxxxx@h:1/p?q#f"
        );
        assert_eq!(redact("https://u@h/p"), "https://u@h/p");
        assert_eq!(redact("https://h/p@x"), "https://h/p@x");
    }

    #[test]
    fn file_names_are_one_component() {
        assert!(is_one_component("a.txt"));
        assert!(is_one_component("__unnamed__"));
        for bad in ["", ".", "..", "a/b", "a\0b"] {
            assert!(!is_one_component(bad), "{bad:?}");
        }
    }
}
