//! What goes wrong while writing a build's outputs; each names the path, reference or tool.

use crate::export::ExportError;
use crate::registry::RegistryError;
use crate::snapshot::SnapshotError;
use crate::store::ImageError;

/// An output that could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutputError {
    /// Writing an image (layout, archive, rewrite) failed.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// Writing the image's filesystem failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// A push failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Naming the image in kiln's store failed.
    #[error("tagging {name}: {source}")]
    Tag {
        /// The name.
        name: String,
        /// Why.
        source: ImageError,
    },
    /// A tar stream was to go to a terminal.
    #[error(
        "refusing to write a tar archive to a terminal: redirect stdout (`> out.tar`) or name a file with dest="
    )]
    Terminal,
    /// `--load` found neither docker nor podman, or the tool refused the image.
    #[error("loading the image: {0}")]
    Load(String),
    /// An option this build cannot honour.
    #[error("{0}")]
    Unsupported(String),
}
