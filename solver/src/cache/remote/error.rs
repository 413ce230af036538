//! What goes wrong importing or exporting a cache; each names the file, digest or cache.

use std::io;

use oci_spec::image::Digest;

use crate::export::ExportError;
use crate::image::layout::LayoutError;
use crate::registry::RegistryError;
use crate::store::ContentError;

/// A cache that could not be read, written or fetched from.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteCacheError {
    /// The content store failed.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// A layer could not be compressed for the export.
    #[error(transparent)]
    Compress(#[from] crate::cache::compressed::CompressError),
    /// Writing the cache's layout failed.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// Reading the cache's layout failed (boxed: the other errors stay small).
    #[error(transparent)]
    Layout(Box<LayoutError>),
    /// A file of the cache could not be read or copied.
    #[error("{what}: {source}")]
    Io {
        /// The file.
        what: String,
        /// Why.
        source: io::Error,
    },
    /// A JSON document of the cache does not parse or encode.
    #[error("{what}: {source}")]
    Json {
        /// The document.
        what: String,
        /// Why.
        source: serde_json::Error,
    },
    /// The cache is not one kiln can use.
    #[error("{what}: {reason}")]
    Invalid {
        /// What was read.
        what: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// A layer could not be fetched from the cache that recorded it.
    #[error("{cache}: {source}")]
    Fetch {
        /// The cache (`cache REF` or `cache DIR`).
        cache: String,
        /// Why.
        source: Box<RemoteCacheError>,
    },
    /// A layer is in no imported cache either.
    #[error("layer {0} is neither in the store nor in an imported cache")]
    Missing(Digest),
    /// The registry holding the cache failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl From<LayoutError> for RemoteCacheError {
    fn from(e: LayoutError) -> Self {
        Self::Layout(Box::new(e))
    }
}

impl RemoteCacheError {
    pub(super) fn json(what: impl Into<String>) -> impl FnOnce(serde_json::Error) -> Self {
        let what = what.into();
        move |source| Self::Json { what, source }
    }

    pub(super) fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}
