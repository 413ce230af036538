//! HTTP(S) sources (`ADD https://…`): the URL's content becomes a directory holding one file,
//! mode 0600, its mtime the response's `Last-Modified` (else the epoch), as BuildKit's HTTP
//! source writes it.
//!
//! Downloads stream to disk through a temp directory in the store, hashed on the way, and are
//! renamed into `http-cache/files/<id>` (the id covers content digest, name and mtime), so a
//! directory there is always complete. A record per URL (`http-cache/urls/<hash>.json`) keeps
//! the `ETag` of the last download: later builds ask with `If-None-Match` and reuse the stored
//! file on `304 Not Modified`; a pinned `--checksum` whose content is stored already needs no
//! request at all. The op's key is derived from what was downloaded, not from the URL: the
//! same bytes keep the steps after it cached, changed bytes rerun them.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use kiln_llb::OpId;
use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_NONE_MATCH, LAST_MODIFIED};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256, Sha384, Sha512};

use super::{Event, EventKind, Inner, OpResult, SolveError};
use crate::context::Context;

/// Attempts per download: connection failures, timeouts, broken bodies and 5xx are retried.
const ATTEMPTS: u32 = 4;
/// The first wait between attempts; doubled each time.
const BACKOFF: Duration = Duration::from_millis(250);
/// A response that sends nothing for this long is abandoned (and retried).
/// The most kiln downloads of a body whose length the server does not announce.
const MAX_UNSIZED_BODY: u64 = 16 * 1024 * 1024 * 1024;
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long establishing a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a wait looks at Ctrl-C.
const CANCEL_POLL: Duration = Duration::from_millis(200);

/// Solves an HTTP source: the directory holding the downloaded file.
pub(super) fn solve(
    inner: &Inner,
    id: OpId,
    url: &str,
    checksum: Option<&str>,
    filename: &str,
) -> Result<OpResult, SolveError> {
    let shown = redact(url);
    let fail = |m: String| inner.fail(id, m);
    check_filename(filename).map_err(|m| fail(format!("{shown}: {m}")))?;
    let pinned = checksum
        .map(Pinned::parse)
        .transpose()
        .map_err(|m| fail(format!("{shown}: {m}")))?;
    let cache = HttpCache::new(inner.store.root());
    let record_path = cache.record_path(url, filename);
    let record = if inner.ignores_cache(id) {
        None
    } else {
        cache.usable_record(&record_path, filename)
    };

    // A pinned checksum that the stored download already has: no request (BuildKit).
    if let (Some(pin), Some(rec)) = (&pinned, &record)
        && pin.matches_stored(rec, &cache.file(rec, filename))
    {
        inner
            .progress
            .send(Event::new(id.0, inner.name(id), EventKind::Cached));
        return cache.result(rec, filename).map_err(fail);
    }

    let started = Instant::now();
    let etag = record
        .as_ref()
        .filter(|_| pinned.is_none())
        .and_then(|r| r.etag.clone());
    let tmp = inner
        .temp_dir("http")
        .map_err(|e| inner.step_failed(id, e))?;
    let target = Target {
        file: tmp.path().join(filename),
        etag: etag.as_deref(),
        pinned: pinned.as_ref().map(|p| p.algo),
    };
    let fetched = fetch(inner, id, url, &shown, &target).map_err(&fail)?;
    let rec = match (fetched, record) {
        (Fetched::NotModified, Some(rec)) => {
            inner
                .progress
                .send(Event::new(id.0, inner.name(id), EventKind::Cached));
            rec
        }
        (Fetched::NotModified, None) => {
            return Err(fail(format!(
                "{shown}: the server answered 304 Not Modified to a request that was not conditional"
            )));
        }
        (Fetched::Body(body), _) => {
            if let Some(pin) = &pinned
                && !pin.matches(&body)
            {
                return Err(fail(format!(
                    "digest mismatch for {shown}: {} (expected: {})",
                    pin.actual(&body),
                    pin.expected
                )));
            }
            let mtime = body.last_modified.as_deref().and_then(parse_http_date);
            let file = tmp.path().join(filename);
            finish_file(&file, mtime.unwrap_or(0)).map_err(|m| fail(format!("{shown}: {m}")))?;
            let rec = Record {
                url: url.to_owned(),
                filename: filename.to_owned(),
                digest: body.sha256.clone(),
                etag: body.etag.clone(),
                last_modified: body.last_modified.clone(),
                mtime: mtime.unwrap_or(0),
            };
            cache
                .store(tmp.path(), &rec, &record_path)
                .map_err(|m| fail(format!("{shown}: storing the download: {m}")))?;
            inner.progress.send(Event::new(
                id.0,
                inner.name(id),
                EventKind::Done(started.elapsed()),
            ));
            rec
        }
    };
    cache.result(&rec, filename).map_err(fail)
}

/// What one download left behind, per URL and file name.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    url: String,
    filename: String,
    /// `sha256:…` of the content.
    digest: String,
    etag: Option<String>,
    last_modified: Option<String>,
    /// Seconds since the epoch given to the file.
    mtime: i64,
}

/// `http-cache/` under the store root.
struct HttpCache {
    root: PathBuf,
}

impl HttpCache {
    fn new(store_root: &Path) -> Self {
        HttpCache {
            root: store_root.join("http-cache"),
        }
    }

    fn record_path(&self, url: &str, filename: &str) -> PathBuf {
        let mut h = Sha256::new();
        for field in [url, filename] {
            h.update((field.len() as u64).to_be_bytes());
            h.update(field.as_bytes());
        }
        self.root
            .join("urls")
            .join(format!("{}.json", hex::encode(h.finalize())))
    }

    /// The directory a download with this content, name and mtime lives in.
    fn dir(&self, rec: &Record) -> PathBuf {
        let mut h = Sha256::new();
        for field in [
            rec.digest.as_str(),
            rec.filename.as_str(),
            &rec.mtime.to_string(),
        ] {
            h.update((field.len() as u64).to_be_bytes());
            h.update(field.as_bytes());
        }
        self.root.join("files").join(hex::encode(h.finalize()))
    }

    fn file(&self, rec: &Record, filename: &str) -> PathBuf {
        self.dir(rec).join(filename)
    }

    /// The record for a URL whose file is still stored; anything unreadable counts as none.
    fn usable_record(&self, path: &Path, filename: &str) -> Option<Record> {
        let rec: Record = serde_json::from_slice(&fs::read(path).ok()?).ok()?;
        (rec.filename == filename && self.file(&rec, filename).is_file()).then_some(rec)
    }

    /// Moves a finished download directory into place and records it. Another build that
    /// stored the same content first wins; ours is dropped with the temp dir.
    fn store(&self, tmp_dir: &Path, rec: &Record, record_path: &Path) -> Result<(), String> {
        let files = self.root.join("files");
        fs::create_dir_all(&files).map_err(|e| format!("{}: {e}", files.display()))?;
        let dest = self.dir(rec);
        if let Err(e) = fs::rename(tmp_dir, &dest)
            && !dest.is_dir()
        {
            return Err(format!("{}: {e}", dest.display()));
        }
        let urls = self.root.join("urls");
        fs::create_dir_all(&urls).map_err(|e| format!("{}: {e}", urls.display()))?;
        let bytes = serde_json::to_vec(rec).map_err(|e| e.to_string())?;
        let tmp = urls.join(crate::fsutil::owner::temp_name("record"));
        fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
        fs::rename(&tmp, record_path).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            format!("{}: {e}", record_path.display())
        })
    }

    /// The op's result: the stored directory, keyed by what it holds.
    fn result(&self, rec: &Record, filename: &str) -> Result<OpResult, String> {
        let dir = self.dir(rec);
        // A `.dockerignore` must not filter the one file: the download may be one itself.
        let context = if filename == ".dockerignore" {
            let none = self.root.join("files").join("no");
            let ignore = self.root.join("files").join("no.dockerignore");
            if !ignore.is_file() {
                fs::write(&ignore, b"").map_err(|e| format!("{}: {e}", ignore.display()))?;
            }
            Context::open(&dir, Some(&none))
        } else {
            Context::open(&dir, None)
        }
        .map_err(|e| e.to_string())?;
        Ok(OpResult::Dir {
            key: crate::cache::key::http_content(filename, &rec.digest, rec.mtime),
            context,
        })
    }
}

/// The file name must be one plain path component: it is joined to a directory.
fn check_filename(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(format!("invalid file name {name:?} for a download"));
    }
    Ok(())
}

/// Mode 0600 (BuildKit's) and the mtime, once the content is complete.
fn finish_file(file: &Path, mtime: i64) -> Result<(), String> {
    fs::set_permissions(file, fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let secs = Duration::from_secs(mtime.unsigned_abs());
    let time = if mtime >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(secs)
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(secs)
    }
    .unwrap_or(SystemTime::UNIX_EPOCH);
    let times = fs::FileTimes::new().set_accessed(time).set_modified(time);
    fs::File::options()
        .write(true)
        .open(file)
        .and_then(|f| f.set_times(times))
        .map_err(|e| format!("{}: {e}", file.display()))
}

/// A `--checksum`, parsed.
#[derive(Debug)]
struct Pinned {
    /// As written: `sha256:…`.
    expected: String,
    algo: Algo,
    hex: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algo {
    Sha256,
    Sha384,
    Sha512,
}

impl Pinned {
    fn parse(s: &str) -> Result<Self, String> {
        let (algo, hex) = s
            .split_once(':')
            .ok_or_else(|| format!("invalid checksum {s:?}"))?;
        let (algo, len) = match algo {
            "sha256" => (Algo::Sha256, 64),
            "sha384" => (Algo::Sha384, 96),
            "sha512" => (Algo::Sha512, 128),
            _ => return Err(format!("unsupported checksum algorithm in {s:?}")),
        };
        if hex.len() != len || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("invalid checksum {s:?}"));
        }
        Ok(Pinned {
            expected: s.to_owned(),
            algo,
            hex: hex.to_ascii_lowercase(),
        })
    }

    fn matches(&self, body: &Body) -> bool {
        self.actual(body) == format!("{}:{}", self.algo_name(), self.hex)
    }

    /// The downloaded content's digest in the pinned algorithm.
    fn actual(&self, body: &Body) -> String {
        match self.algo {
            Algo::Sha256 => body.sha256.clone(),
            Algo::Sha384 | Algo::Sha512 => body.other.clone().unwrap_or_default(),
        }
    }

    fn algo_name(&self) -> &'static str {
        match self.algo {
            Algo::Sha256 => "sha256",
            Algo::Sha384 => "sha384",
            Algo::Sha512 => "sha512",
        }
    }

    /// Whether the stored download has this digest (other algorithms re-read the file).
    fn matches_stored(&self, rec: &Record, file: &Path) -> bool {
        let want = format!("{}:{}", self.algo_name(), self.hex);
        match self.algo {
            Algo::Sha256 => rec.digest == want,
            _ => {
                let Ok(mut f) = fs::File::open(file) else {
                    return false;
                };
                let mut h = Hasher::new(Some(self.algo));
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match std::io::Read::read(&mut f, &mut buf) {
                        Ok(0) => break,
                        Ok(n) => h.update(buf.get(..n).unwrap_or_default()),
                        Err(_) => return false,
                    }
                }
                h.finish().1.is_some_and(|d| d == want)
            }
        }
    }
}

/// sha256 always (the content digest), and the pinned algorithm when it is another one.
struct Hasher {
    sha256: Sha256,
    other: Option<OtherHasher>,
}

enum OtherHasher {
    Sha384(Sha384),
    Sha512(Sha512),
}

impl Hasher {
    fn new(pinned: Option<Algo>) -> Self {
        Hasher {
            sha256: Sha256::new(),
            other: match pinned {
                Some(Algo::Sha384) => Some(OtherHasher::Sha384(Sha384::new())),
                Some(Algo::Sha512) => Some(OtherHasher::Sha512(Sha512::new())),
                _ => None,
            },
        }
    }

    fn update(&mut self, data: &[u8]) {
        self.sha256.update(data);
        match &mut self.other {
            Some(OtherHasher::Sha384(h)) => h.update(data),
            Some(OtherHasher::Sha512(h)) => h.update(data),
            None => {}
        }
    }

    fn finish(self) -> (String, Option<String>) {
        let sha256 = format!("sha256:{}", hex::encode(self.sha256.finalize()));
        let other = self.other.map(|o| match o {
            OtherHasher::Sha384(h) => format!("sha384:{}", hex::encode(h.finalize())),
            OtherHasher::Sha512(h) => format!("sha512:{}", hex::encode(h.finalize())),
        });
        (sha256, other)
    }
}

/// A complete response body, written to disk.
#[derive(Debug)]
struct Body {
    sha256: String,
    other: Option<String>,
    etag: Option<String>,
    last_modified: Option<String>,
}

#[derive(Debug)]
enum Fetched {
    NotModified,
    Body(Body),
}

/// Why an attempt failed, and whether another one may succeed.
#[derive(Debug)]
struct Failure {
    message: String,
    retry: bool,
}

impl Failure {
    fn retry(message: String) -> Self {
        Failure {
            message,
            retry: true,
        }
    }

    fn fatal(message: String) -> Self {
        Failure {
            message,
            retry: false,
        }
    }
}

/// Where and how one download goes.
#[derive(Debug)]
struct Target<'a> {
    /// The file to write (created mode 0600).
    file: PathBuf,
    /// The stored download's `ETag`, for a conditional request.
    etag: Option<&'a str>,
    /// A pinned checksum's algorithm, hashed besides sha256.
    pinned: Option<Algo>,
}

/// GETs `url` into the target file, retrying transient failures with backoff.
fn fetch(
    inner: &Inner,
    id: OpId,
    url: &str,
    shown: &str,
    target: &Target<'_>,
) -> Result<Fetched, String> {
    crate::registry::block_on(async {
        let client = reqwest::Client::builder()
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| format!("downloading {shown}: {e}"))?;
        let mut wait = BACKOFF;
        let mut attempt = 1;
        let mut announced = false;
        loop {
            match fetch_once(inner, id, &client, url, target, &mut announced).await {
                Ok(f) => return Ok(f),
                Err(f) if f.retry && attempt < ATTEMPTS => {
                    inner.progress.send(Event::new(
                        id.0,
                        inner.name(id),
                        EventKind::Log(format!(
                            "{shown}: {}; retrying in {} ms (attempt {}/{ATTEMPTS})",
                            f.message,
                            wait.as_millis(),
                            attempt + 1
                        )),
                    ));
                    cancellable(tokio::time::sleep(wait))
                        .await
                        .map_err(|f| f.message)?;
                    wait *= 2;
                    attempt += 1;
                }
                Err(f) if f.retry => {
                    return Err(format!(
                        "downloading {shown}: {} (gave up after {ATTEMPTS} attempts)",
                        f.message
                    ));
                }
                Err(f) => return Err(format!("downloading {shown}: {}", f.message)),
            }
        }
    })
    .map_err(|e| format!("downloading {shown}: {e}"))?
}

/// One GET. `announced` tells whether the vertex was reported as started already.
async fn fetch_once(
    inner: &Inner,
    id: OpId,
    client: &reqwest::Client,
    url: &str,
    target: &Target<'_>,
    announced: &mut bool,
) -> Result<Fetched, Failure> {
    let file = target.file.as_path();
    let mut req = client.get(url);
    if let Some(tag) = target.etag {
        req = req.header(IF_NONE_MATCH, tag);
    }
    let mut resp = cancellable(req.send())
        .await?
        .map_err(|e| transport_failure(&e))?;
    let status = resp.status();
    if status == StatusCode::NOT_MODIFIED && target.etag.is_some() {
        return Ok(Fetched::NotModified);
    }
    if !status.is_success() {
        let message = format!("HTTP {status}");
        let transient = status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT;
        return Err(if transient {
            Failure::retry(message)
        } else {
            Failure::fatal(message)
        });
    }
    let header = |name| {
        resp.headers()
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let etag = header(ETAG);
    let last_modified = header(LAST_MODIFIED);
    if !*announced {
        *announced = true;
        inner
            .progress
            .send(Event::new(id.0, inner.name(id), EventKind::Started));
    }
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(file)
        .map_err(|e| Failure::fatal(format!("{}: {e}", file.display())))?;
    let mut hasher = Hasher::new(target.pinned);
    // A body is read up to its Content-Length, and one of unknown length up to a bound, so a
    // server that never stops cannot fill the disk.
    let limit = resp.content_length().unwrap_or(MAX_UNSIZED_BODY);
    let mut received = 0u64;
    loop {
        let chunk = match next_chunk(&mut resp).await? {
            Some(c) => c,
            None => break,
        };
        received += chunk.len() as u64;
        if received > limit {
            return Err(Failure::fatal(format!(
                "the server sent more than {limit} bytes{}",
                if resp.content_length().is_some() {
                    " (its Content-Length)"
                } else {
                    ", all kiln downloads without a Content-Length"
                }
            )));
        }
        hasher.update(&chunk);
        out.write_all(&chunk)
            .map_err(|e| Failure::fatal(format!("{}: {e}", file.display())))?;
    }
    out.sync_all()
        .map_err(|e| Failure::fatal(format!("{}: {e}", file.display())))?;
    let (sha256, other) = hasher.finish();
    Ok(Fetched::Body(Body {
        sha256,
        other,
        etag,
        last_modified,
    }))
}

/// The next piece of the body; a body that stalls for [`IDLE_TIMEOUT`] fails (retryable).
async fn next_chunk(resp: &mut reqwest::Response) -> Result<Option<bytes::Bytes>, Failure> {
    match tokio::time::timeout(IDLE_TIMEOUT, cancellable(resp.chunk())).await {
        Ok(r) => r?.map_err(|e| transport_failure(&e)),
        Err(_) => Err(Failure::retry(format!(
            "no data for {} s",
            IDLE_TIMEOUT.as_secs()
        ))),
    }
}

fn transport_failure(e: &reqwest::Error) -> Failure {
    // The chain holds the useful part ("connection refused", "unexpected end of file").
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    if e.is_connect() || e.is_timeout() || e.is_request() || e.is_body() || e.is_decode() {
        Failure::retry(message)
    } else {
        Failure::fatal(message)
    }
}

/// Runs `fut`, giving up when the build is cancelled.
async fn cancellable<T>(fut: impl std::future::Future<Output = T>) -> Result<T, Failure> {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            v = &mut fut => return Ok(v),
            () = tokio::time::sleep(CANCEL_POLL) => {
                if crate::cancel::is_cancelled() {
                    return Err(Failure::fatal("build cancelled".to_owned()));
                }
            }
        }
    }
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

/// Seconds since the epoch of an HTTP date, in the three forms Go's `http.ParseTime` takes:
/// `Sun, 06 Nov 1994 08:49:37 GMT`, `Sunday, 06-Nov-94 08:49:37 GMT` and
/// `Sun Nov  6 08:49:37 1994`.
fn parse_http_date(s: &str) -> Option<i64> {
    let s = s.trim();
    let words: Vec<&str> = s.split_whitespace().collect();
    let (day, month, year, time) = match words.as_slice() {
        [_, day, month, year, time, "GMT"] if s.contains(',') => {
            (day.parse().ok()?, *month, year.parse().ok()?, *time)
        }
        [_, date, time, "GMT"] if s.contains(',') => {
            let mut parts = date.split('-');
            let day = parts.next()?.parse().ok()?;
            let month = parts.next()?;
            let yy: i64 = parts.next()?.parse().ok()?;
            // Go's two-digit years: 69–99 are 19xx, the rest 20xx.
            let year = if yy >= 69 { 1900 + yy } else { 2000 + yy };
            (day, month, year, *time)
        }
        [_, month, day, time, year] => (day.parse().ok()?, *month, year.parse().ok()?, *time),
        _ => return None,
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let mut hms = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some()
        || !(1..=31).contains(&day)
        || !(0..24).contains(&h)
        || !(0..60).contains(&m)
        || !(0..61).contains(&sec)
    {
        return None;
    }
    Some(kiln_llb::time::days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_in_all_three_forms() {
        let want = Some(784_111_777);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), want);
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), want);
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), want);
        assert_eq!(
            parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(1_445_412_480)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 12:00:00 GMT"),
            Some(951_825_600)
        );
        for bad in [
            "",
            "yesterday",
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }

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
        assert!(check_filename("a.txt").is_ok());
        assert!(check_filename("__unnamed__").is_ok());
        for bad in ["", ".", "..", "a/b", "a\0b"] {
            assert!(check_filename(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn checksums_parse_and_compare_lowercase() {
        let p = Pinned::parse(&format!("sha256:{}", "AB".repeat(32))).unwrap();
        let body = Body {
            sha256: format!("sha256:{}", "ab".repeat(32)),
            other: None,
            etag: None,
            last_modified: None,
        };
        assert!(p.matches(&body));
        assert!(Pinned::parse("md5:00").is_err());
        assert!(Pinned::parse("sha256:00").is_err());
        let mut h = Hasher::new(Some(Algo::Sha512));
        h.update(b"abc");
        let (sha256, other) = h.finish();
        assert_eq!(
            sha256,
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(other.unwrap().starts_with("sha512:ddaf35a1"));
    }
}
