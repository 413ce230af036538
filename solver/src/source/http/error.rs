//! Why an HTTP source failed; every variant names the URL (its password masked).

use std::path::PathBuf;

/// An `ADD <url>` that could not be made.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The file name the download is given is not one plain path component.
    #[error("{url}: invalid file name {name:?} for a download")]
    FileName {
        /// The URL.
        url: String,
        /// The name asked for.
        name: String,
    },
    /// `--checksum` is not `sha256|sha384|sha512:<hex>`.
    #[error("{url}: {reason} {checksum:?}")]
    Checksum {
        /// The URL.
        url: String,
        /// The checksum as written.
        checksum: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The content does not have the pinned checksum.
    #[error("digest mismatch for {url}: {actual} (expected: {expected})")]
    DigestMismatch {
        /// The URL.
        url: String,
        /// The content's digest in the pinned algorithm.
        actual: String,
        /// The pinned checksum.
        expected: String,
    },
    /// A 304 to a request that asked nothing conditional.
    #[error("{url}: the server answered 304 Not Modified to a request that was not conditional")]
    UnaskedNotModified {
        /// The URL.
        url: String,
    },
    /// The server refused, or the transfer failed for good.
    #[error("downloading {url}: {detail}")]
    Download {
        /// The URL.
        url: String,
        /// What the server or the connection said.
        detail: String,
    },
    /// Every attempt failed transiently.
    #[error("downloading {url}: {last} (gave up after {attempts} attempts)")]
    GaveUp {
        /// The URL.
        url: String,
        /// What the last attempt said.
        last: String,
        /// How many attempts were made.
        attempts: u32,
    },
    /// The build was cancelled while downloading.
    #[error("downloading {url}: build cancelled")]
    Cancelled {
        /// The URL.
        url: String,
    },
    /// A file of the download could not be written or stored.
    #[error("{url}: {}: {source}", path.display())]
    Io {
        /// The URL.
        url: String,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The stored download could not be opened as a directory to copy from.
    #[error("{url}: {source}")]
    Context {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: crate::context::ContextError,
    },
    /// No HTTP client could be made (TLS set-up).
    #[error("downloading {url}: {detail}")]
    Client {
        /// The URL.
        url: String,
        /// What failed.
        detail: String,
    },
}

/// A failure of one attempt at a download; `retry` tells whether another may succeed.
pub(super) type Failure = crate::retry::Failure<HttpError>;

/// An I/O failure on `path` while downloading `url`, as an error for good.
pub(super) fn io_failure(url: &str, path: &std::path::Path, source: std::io::Error) -> HttpError {
    HttpError::Io {
        url: url.to_owned(),
        path: path.to_path_buf(),
        source,
    }
}
