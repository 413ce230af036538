//! Why an image could not be resolved; every variant names the reference, and the digest or
//! platform involved.

use super::manifest::ManifestError;

/// An image that cannot be used as a base.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// Neither the name nor the digest is in the local store.
    #[error("image {reference} is not in the local store (kiln images lists what is)")]
    Missing {
        /// The reference as written.
        reference: String,
    },
    /// The name or digest is known, but not the manifest for the platform wanted.
    #[error("image {reference}: {detail}")]
    Incomplete {
        /// The reference as written.
        reference: String,
        /// What is missing.
        detail: String,
    },
    /// The store or its tag table could not be read.
    #[error("image {reference}: {detail}")]
    Store {
        /// The reference as written.
        reference: String,
        /// The underlying error.
        detail: String,
    },
    /// The manifest or index is unusable.
    #[error("image {reference}: {source}")]
    Manifest {
        /// The reference as written.
        reference: String,
        /// What is wrong with it.
        source: ManifestError,
    },
    /// The config blob is missing or not a config.
    #[error("image {reference}: config {digest}: {detail}")]
    Config {
        /// The reference as written.
        reference: String,
        /// The config's digest.
        digest: String,
        /// What is wrong.
        detail: String,
    },
    /// An index lists no manifest for the platform wanted.
    #[error("image {reference} has no manifest for {wanted} (it has: {available})")]
    NoPlatform {
        /// The reference as written.
        reference: String,
        /// The platform asked for.
        wanted: String,
        /// The platforms the index lists.
        available: crate::image::manifest::PlatformList,
    },
    /// The manifest an index lists for a platform is, by its config, for another one.
    #[error(
        "image {reference}: manifest {digest} is listed for {wanted} but its config says {found}"
    )]
    WrongPlatform {
        /// The reference as written.
        reference: String,
        /// The manifest.
        digest: String,
        /// The platform asked for (and listed).
        wanted: String,
        /// The platform its config names.
        found: String,
    },
    /// An OCI layout (directory or archive) could not be read.
    #[error(transparent)]
    Layout(Box<super::layout::LayoutError>),
}

impl From<super::layout::LayoutError> for ResolveError {
    fn from(e: super::layout::LayoutError) -> Self {
        Self::Layout(Box::new(e))
    }
}
