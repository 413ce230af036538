//! Why a COPY or ADD failed; every variant names the path, user, group or mode at fault.
//!
//! Where BuildKit has a message for the same failure the text follows it, so that a user who
//! searches for the error finds the Docker answers too.

use std::io;
use std::path::PathBuf;

use crate::context::dockerignore::PatternError;

/// A COPY/ADD failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CopyError {
    /// `USER name` (or `:group`) is in no entry of the base's passwd (or group) file —
    /// runc's and BuildKit's words.
    #[error("unable to find {kind} {name}: no matching entries in {file} file")]
    UnknownRunUser {
        /// `user` or `group`.
        kind: &'static str,
        /// The name as given.
        name: String,
        /// `passwd` or `group`.
        file: &'static str,
    },
    /// A source path whose `..` climbs above the source root.
    #[error("source path {path:?} is outside of the {root_kind}")]
    SourceOutsideRoot {
        /// The source as written.
        path: String,
        /// "build context" or "source filesystem".
        root_kind: &'static str,
    },
    /// A source that does not exist (or that `.dockerignore` hides), BuildKit's checksum error.
    #[error("failed to calculate checksum: {path:?}: not found")]
    NotFound {
        /// The source, cleaned and rooted at the source root.
        path: String,
    },
    /// The directory part of a wildcard source does not exist.
    #[error("lstat {path}: no such file or directory")]
    WildcardBaseMissing {
        /// The directory before the first wildcard component, rooted at the source root.
        path: String,
    },
    /// A symlink that must be followed points out of the build context.
    #[error("{path:?}: symlink {link} -> {target} leads out of the build context")]
    SymlinkEscapes {
        /// The source as written.
        path: String,
        /// The symlink, relative to the context root.
        link: String,
        /// Where it points.
        target: String,
    },
    /// Symlinks that point at each other.
    #[error("{path:?}: too many levels of symbolic links")]
    TooManySymlinks {
        /// The path being resolved.
        path: String,
    },
    /// A path component of the destination that exists and is not a directory.
    #[error("mkdir {path}: not a directory")]
    NotADirectory {
        /// The path in the image.
        path: String,
    },
    /// A directory copied onto something that is not a directory.
    #[error("cannot copy to non-directory: {path}")]
    CannotCopyToNonDirectory {
        /// The path in the image.
        path: String,
    },
    /// A file copied onto a directory.
    #[error("cannot replace to directory {path} with file")]
    CannotReplaceDirectory {
        /// The path in the image.
        path: String,
    },
    /// A `--chown` value that is neither a number nor a name.
    #[error("invalid --chown value {spec:?}: {reason}")]
    InvalidChown {
        /// The value as given.
        spec: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `--chmod` value that looks numeric but is not an octal mode up to 07777.
    #[error("invalid chmod parameter: '{spec}'. it should be octal string and between 0 and 07777")]
    ChmodNotOctal {
        /// The value as given.
        spec: String,
    },
    /// A symbolic `--chmod` value chmod(1) would refuse.
    #[error("invalid chmod parameter: '{spec}': invalid syntax")]
    ChmodSyntax {
        /// The value as given.
        spec: String,
    },
    /// An `--exclude` pattern the `.dockerignore` matcher refuses.
    #[error("invalid exclude patterns {patterns:?}: {source}")]
    BadPattern {
        /// The patterns as given.
        patterns: Vec<String>,
        /// What the matcher said.
        source: PatternError,
    },
    /// A source of a kind that cannot be copied.
    #[error("unsupported file type: {path}")]
    UnsupportedFileType {
        /// The source on the host.
        path: PathBuf,
    },
    /// ADD could not extract a local archive (a corrupt tar, an entry climbing out of the
    /// destination, a filesystem error); the layer error names the entry.
    #[error("{archive}: {source}")]
    Archive {
        /// The archive on the host.
        archive: PathBuf,
        /// What went wrong, naming the entry.
        source: crate::layer::LayerError,
    },
    /// A filesystem call that failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("open", "lstat", ...).
        op: &'static str,
        /// The path on the host.
        path: PathBuf,
        /// The system error.
        source: io::Error,
    },
}

impl CopyError {
    /// An [`CopyError::Io`] for `op` on `path`.
    pub(super) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { op, path, source }
    }
}
