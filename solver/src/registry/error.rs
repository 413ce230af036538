//! What can go wrong talking to a registry; every variant names the reference or digest.

/// A registry operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The reference is not a valid image reference.
    #[error(transparent)]
    Reference(#[from] crate::store::ReferenceError),
    /// The registry refused our credentials (or asked for some we do not have).
    #[error(
        "{reference}: unauthorized: {detail}\nhint: check the credentials for {registry} in $DOCKER_CONFIG/config.json (or ~/.docker/config.json)"
    )]
    Unauthorized {
        /// The reference being pulled or pushed.
        reference: String,
        /// The registry host.
        registry: String,
        /// What the registry said.
        detail: String,
    },
    /// The manifest or blob does not exist.
    #[error("{reference}: not found: {detail}")]
    NotFound {
        /// The reference being pulled.
        reference: String,
        /// What was missing.
        detail: String,
    },
    /// A transfer kept failing after every retry.
    #[error("{reference}: {what} failed after {attempts} attempts: {detail}")]
    Transfer {
        /// The reference being pulled or pushed.
        reference: String,
        /// What was being transferred (a manifest, a blob digest…).
        what: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last error.
        detail: String,
    },
    /// The registry's answer is not something kiln can use.
    #[error("{reference}: {detail}")]
    Invalid {
        /// The reference being pulled.
        reference: String,
        /// What is wrong with it.
        detail: String,
    },
    /// No manifest in the index matches the wanted platform.
    #[error("{reference}: no image for platform {platform} (the index has: {available})")]
    NoPlatform {
        /// The reference being pulled.
        reference: String,
        /// The platform wanted.
        platform: String,
        /// The platforms the index lists.
        available: crate::image::manifest::PlatformList,
    },
    /// Reading docker's credential configuration failed.
    #[error("credentials for {registry}: {detail}")]
    Credentials {
        /// The registry host.
        registry: String,
        /// What failed.
        detail: String,
    },
    /// The local store failed.
    #[error("{reference}: {detail}")]
    Store {
        /// The reference being pulled or pushed.
        reference: String,
        /// What failed.
        detail: String,
    },
    /// What the registry sent is larger than kiln reads: a blob past the size its descriptor
    /// announces, or a manifest or config over the limit.
    #[error("{reference}: {what} is larger than {limit} bytes, which is all kiln reads of it")]
    TooLarge {
        /// The reference being pulled.
        reference: String,
        /// The manifest, config or blob.
        what: String,
        /// The bound.
        limit: u64,
    },
    /// The build was cancelled.
    #[error("{reference}: cancelled")]
    Cancelled {
        /// The reference being pulled or pushed.
        reference: String,
    },
    /// The async runtime could not be started.
    #[error("starting the network runtime: {0}")]
    Runtime(String),
}
