//! What goes wrong while writing an export.

use std::io;
use std::path::{Path, PathBuf};

use oci_spec::image::Digest;

use crate::store::{ContentError, ReferenceError};

/// What went wrong while exporting an image; each variant names the path, digest or reference.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// Reading a blob from the content store failed (missing, corrupt, I/O).
    #[error(transparent)]
    Content(#[from] ContentError),
    /// A layer could not be compressed for the export.
    #[error(transparent)]
    Compress(#[from] crate::cache::compressed::CompressError),
    /// The build was cancelled before the export was complete.
    #[error("export cancelled")]
    Cancelled,
    /// Writing the destination failed.
    #[error("export: {path}: {source}")]
    Io {
        /// The file or directory being written.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The stored manifest does not parse as an image manifest.
    #[error("manifest {digest} in the content store is not a valid image manifest: {source}")]
    BadManifest {
        /// The manifest digest.
        digest: Digest,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The destination directory holds something that is not an OCI layout kiln can extend.
    #[error("{path} is not an OCI image layout kiln can write to: {reason}")]
    NotALayout {
        /// The destination.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The destination layout's `index.json` does not parse.
    #[error("{path}: invalid OCI index: {source}")]
    BadIndex {
        /// The `index.json` file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A `org.opencontainers.image.ref.name` value outside the OCI grammar.
    #[error(
        "invalid OCI ref name {name:?}: expected components of [A-Za-z0-9] joined by -._:@+/ or --"
    )]
    InvalidRefName {
        /// The name as given.
        name: String,
    },
    /// A repo tag for a docker archive does not parse.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// The image could not be rewritten in the form asked (compression, media types).
    #[error("rewriting image {digest}: {detail}")]
    Rewrite {
        /// The manifest or layer involved.
        digest: Digest,
        /// What went wrong.
        detail: String,
    },
    /// A stored image index that lists something kiln cannot export.
    #[error("image index {digest} in the content store: {detail}")]
    BadIndexEntry {
        /// The index.
        digest: Digest,
        /// What is wrong with it.
        detail: String,
    },
    /// Docker archives name images by tag; a digest reference cannot be a repo tag.
    #[error("{reference}: a docker archive repo tag cannot carry a digest")]
    DigestInRepoTag {
        /// The reference as given.
        reference: String,
    },
}

impl ExportError {
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
