//! Why a step failed, kept whole until it is shown (BuildKit's `errdefs` wrap the same way):
//! the error of the module that failed — copy, layer, snapshot, store, cache, executor — or
//! what the step itself found wrong. [`super::SolveError::Op`] wraps it with the op.

use std::io;

use crate::cache::index::IndexError;
use crate::cache::remote::RemoteCacheError;
use crate::copy::CopyError;
use crate::executor::ExecError;
use crate::layer::LayerError;
use crate::snapshot::SnapshotError;
use crate::source::http::HttpError;
use crate::source::image::ImageSourceError;
use crate::store::ContentError;

/// A step's failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// COPY/ADD failed.
    #[error(transparent)]
    Copy(#[from] CopyError),
    /// Writing or reading a layer failed.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// Preparing a rootfs or a layer directory failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The content store failed.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// Recording the step in the cache index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The step's process could not be run.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// A file or directory the step needed (`what` names it).
    #[error("{what}: {source}")]
    Io {
        /// The path, or what it is for (`cache go-build`).
        what: String,
        /// Why.
        source: io::Error,
    },
    /// The step's process ran and did not succeed.
    #[error("{}", failed_message(command, how, tail))]
    ProcessFailed {
        /// The command line.
        command: String,
        /// `exit code: 1`, `killed by signal 9`.
        how: String,
        /// The last lines the process printed.
        tail: Vec<String>,
    },
    /// A layer chain's blobs could not be fetched from an imported cache (boxed: the other
    /// errors stay small).
    #[error(transparent)]
    RemoteCache(Box<RemoteCacheError>),
    /// A base image could not be pulled or resolved.
    #[error(transparent)]
    Image(Box<ImageSourceError>),
    /// A named local directory the build was not given.
    #[error(transparent)]
    UnknownContext(#[from] crate::source::local::UnknownContext),
    /// An `ADD <url>` could not be downloaded.
    #[error(transparent)]
    Http(Box<HttpError>),
    /// The step asks for something the build does not provide or cannot do (a mount source
    /// that is missing, a secret or agent not given, an owner not found).
    #[error("{0}")]
    Invalid(String),
}

impl From<ImageSourceError> for StepError {
    fn from(e: ImageSourceError) -> Self {
        Self::Image(Box::new(e))
    }
}

impl From<crate::image::ResolveError> for StepError {
    fn from(e: crate::image::ResolveError) -> Self {
        ImageSourceError::from(e).into()
    }
}

impl From<HttpError> for StepError {
    fn from(e: HttpError) -> Self {
        Self::Http(Box::new(e))
    }
}

impl From<RemoteCacheError> for StepError {
    fn from(e: RemoteCacheError) -> Self {
        Self::RemoteCache(Box::new(e))
    }
}

fn failed_message(command: &str, how: &str, tail: &[String]) -> String {
    let mut msg = format!("process {command:?} did not complete successfully: {how}");
    if !tail.is_empty() {
        msg.push_str("\n--- last lines of output ---\n");
        msg.push_str(&tail.join("\n"));
    }
    msg
}

/// An I/O error about `what` (a path's display, or what the path is for).
pub(super) fn io_err(what: impl std::fmt::Display) -> impl FnOnce(io::Error) -> StepError {
    let what = what.to_string();
    move |source| StepError::Io { what, source }
}
