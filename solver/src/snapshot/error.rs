//! The one error type of snapshots; every variant names the layer, chain or path at fault.

use std::io;
use std::path::PathBuf;

use oci_spec::image::Digest;

use crate::layer::LayerError;

/// Why a snapshot could not be made, found, exported or removed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// A filesystem operation on the snapshot store or an export destination failed.
    #[error("{path}: {source}")]
    Io {
        /// The path operated on.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The caller's `open_blob` could not open a layer's blob.
    #[error("opening the blob of layer {diff_id}: {source}")]
    OpenBlob {
        /// The layer's diff_id.
        diff_id: Digest,
        /// The caller's error.
        source: Box<SnapshotError>,
    },
    /// An error from outside this module, typically a content store's in an `open_blob`
    /// callback (see [`SnapshotError::other`]).
    #[error("{message}")]
    Other {
        /// What went wrong, naming the blob or path involved.
        message: String,
    },
    /// A layer's tar could not be extracted.
    #[error("extracting layer {diff_id}: {source}")]
    Extract {
        /// The layer's diff_id.
        diff_id: Digest,
        /// What went wrong in the tar.
        source: LayerError,
    },
    /// A layer's uncompressed stream does not hash to the diff_id it was asked for.
    #[error("layer {expected} has diff_id {actual}: the blob does not match")]
    DiffIdMismatch {
        /// The diff_id asked for.
        expected: Digest,
        /// The sha256 of what was read.
        actual: Digest,
    },
    /// A diff_id that is not sha256, which kiln does not store.
    #[error("unsupported digest algorithm in {digest}: only sha256 is stored")]
    UnsupportedDigest {
        /// The digest given.
        digest: Digest,
    },
    /// A chain ID asked of an empty chain (`FROM scratch` has none).
    #[error("an empty chain of layers has no chain ID")]
    EmptyChain,
    /// A merged tree could not be archived by `export_tar`.
    #[error("writing {path}: {source}")]
    Archive {
        /// The tar being written.
        path: PathBuf,
        /// What went wrong while archiving.
        source: LayerError,
    },
    /// `export_local` will not replace a destination that already holds files.
    #[error("export destination {path} exists and is not an empty directory")]
    DestinationNotEmpty {
        /// The destination given.
        path: PathBuf,
    },
    /// A computed sha256 did not form a valid digest (cannot happen with a sane `oci-spec`).
    #[error("building a sha256 digest: {source}")]
    Digest {
        /// The underlying error.
        source: oci_spec::OciSpecError,
    },
}

impl SnapshotError {
    /// An error from a caller's callback (opening a blob); say which blob in `message`.
    pub fn other(message: impl Into<String>) -> Self {
        Self::Other {
            message: message.into(),
        }
    }
}

/// Wraps an `io::Error` with the path it concerns.
pub(super) fn io_error(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> SnapshotError {
    let path = path.into();
    move |source| SnapshotError::Io { path, source }
}
