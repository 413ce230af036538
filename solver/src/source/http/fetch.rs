//! One download: a GET (conditional when an `ETag` is stored) streamed to a file and hashed
//! on the way, retried with backoff when the connection, a timeout, the body or a 5xx/429/408
//! answer fails.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_NONE_MATCH, LAST_MODIFIED};

use super::checksum::{Algo, Digests, Hasher};
use super::error::{Failure, HttpError, io_failure};
use crate::progress::Vertex;
use crate::retry::{Backoff, GaveUp, cancellable, error_chain};

/// Attempts per download, and the waits between them.
const POLICY: Backoff = Backoff {
    attempts: 4,
    first: Duration::from_millis(250),
    max: Duration::from_secs(8),
};
/// The most kiln downloads of a body whose length the server does not announce.
const MAX_UNSIZED_BODY: u64 = 16 * 1024 * 1024 * 1024;
/// A response that sends nothing for this long is abandoned (and retried).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long establishing a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A complete response body, written to disk.
#[derive(Debug)]
pub(super) struct Body {
    pub(super) digests: Digests,
    pub(super) etag: Option<String>,
    pub(super) last_modified: Option<String>,
}

/// What a GET gave.
#[derive(Debug)]
pub(super) enum Fetched {
    /// `304`: the stored download is current.
    NotModified,
    /// A new body.
    Body(Body),
}

/// Where and how one download goes.
#[derive(Debug)]
pub(super) struct Target<'a> {
    /// The URL.
    pub(super) url: &'a str,
    /// The URL as messages show it (password masked).
    pub(super) shown: &'a str,
    /// The file to write (created mode 0600).
    pub(super) file: PathBuf,
    /// The stored download's `ETag`, for a conditional request.
    pub(super) etag: Option<&'a str>,
    /// A pinned checksum's algorithm, hashed besides sha256.
    pub(super) pinned: Option<Algo>,
}

/// GETs the target's URL into its file, retrying transient failures with backoff; the
/// vertex is reported started when a body begins, and each retry is logged to it.
pub(super) fn fetch(vertex: Vertex<'_>, target: &Target<'_>) -> Result<Fetched, HttpError> {
    let shown = target.shown;
    let download = |detail: String| HttpError::Download {
        url: shown.to_owned(),
        detail,
    };
    crate::registry::block_on(async {
        crate::tls::install_provider();
        let client = reqwest::Client::builder()
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| HttpError::Client {
                url: shown.to_owned(),
                detail: error_chain(&e),
            })?;
        let announced = std::sync::atomic::AtomicBool::new(false);
        crate::retry::retry(
            &POLICY,
            || fetch_once(vertex, &client, target, &announced),
            |r| {
                vertex.log(format!(
                    "{shown}: {}; retrying in {} ms (attempt {}/{})",
                    r.message,
                    r.wait.as_millis(),
                    r.next,
                    r.of
                ));
            },
        )
        .await
        .map_err(|gave_up| match gave_up {
            GaveUp::Fatal(e) => e,
            GaveUp::Exhausted { attempts, last } => HttpError::GaveUp {
                url: shown.to_owned(),
                last,
                attempts,
            },
            GaveUp::Cancelled => HttpError::Cancelled {
                url: shown.to_owned(),
            },
        })
    })
    .map_err(|e| download(e.to_string()))?
}

/// One GET. `announced` tells whether the vertex was reported as started already.
async fn fetch_once(
    vertex: Vertex<'_>,
    client: &reqwest::Client,
    target: &Target<'_>,
    announced: &std::sync::atomic::AtomicBool,
) -> Result<Fetched, Failure> {
    let file = target.file.as_path();
    let shown = target.shown;
    let fatal_io = |e| Failure::Fatal(io_failure(shown, file, e));
    let mut req = client.get(target.url);
    if let Some(tag) = target.etag {
        req = req.header(IF_NONE_MATCH, tag);
    }
    let mut resp = cancelled_or(shown, req.send())
        .await?
        .map_err(|e| transport_failure(shown, &e))?;
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
            Failure::Transient(message)
        } else {
            Failure::Fatal(HttpError::Download {
                url: shown.to_owned(),
                detail: message,
            })
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
    if !announced.swap(true, std::sync::atomic::Ordering::Relaxed) {
        vertex.started();
    }
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(file)
        .map_err(fatal_io)?;
    let mut hasher = Hasher::new(target.pinned);
    // A body is read up to its Content-Length, and one of unknown length up to a bound, so a
    // server that never stops cannot fill the disk.
    let limit = resp.content_length().unwrap_or(MAX_UNSIZED_BODY);
    let mut received = 0u64;
    while let Some(chunk) = next_chunk(shown, &mut resp).await? {
        received += chunk.len() as u64;
        if received > limit {
            return Err(Failure::Fatal(HttpError::Download {
                url: shown.to_owned(),
                detail: format!(
                    "the server sent more than {limit} bytes{}",
                    if resp.content_length().is_some() {
                        " (its Content-Length)"
                    } else {
                        ", all kiln downloads without a Content-Length"
                    }
                ),
            }));
        }
        hasher.update(&chunk);
        out.write_all(&chunk).map_err(fatal_io)?;
    }
    out.sync_all().map_err(fatal_io)?;
    Ok(Fetched::Body(Body {
        digests: hasher.finish(),
        etag,
        last_modified,
    }))
}

/// The next piece of the body; a body that stalls for [`IDLE_TIMEOUT`] fails (retryable).
async fn next_chunk(
    shown: &str,
    resp: &mut reqwest::Response,
) -> Result<Option<bytes::Bytes>, Failure> {
    match tokio::time::timeout(IDLE_TIMEOUT, cancelled_or(shown, resp.chunk())).await {
        Ok(r) => r?.map_err(|e| transport_failure(shown, &e)),
        Err(_) => Err(Failure::Transient(format!(
            "no data for {} s",
            IDLE_TIMEOUT.as_secs()
        ))),
    }
}

/// Runs `fut`, failing for good when the build is cancelled.
async fn cancelled_or<T>(
    shown: &str,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, Failure> {
    cancellable(fut).await.ok_or_else(|| {
        Failure::Fatal(HttpError::Cancelled {
            url: shown.to_owned(),
        })
    })
}

fn transport_failure(shown: &str, e: &reqwest::Error) -> Failure {
    // The chain holds the useful part ("connection refused", "unexpected end of file").
    let message = error_chain(e);
    if let Some(refused) = crate::tls::refused_certificate(e) {
        return Failure::Fatal(HttpError::Download {
            url: shown.to_owned(),
            detail: refused,
        });
    }
    if e.is_connect() || e.is_timeout() || e.is_request() || e.is_body() || e.is_decode() {
        Failure::Transient(message)
    } else {
        Failure::Fatal(HttpError::Download {
            url: shown.to_owned(),
            detail: message,
        })
    }
}
