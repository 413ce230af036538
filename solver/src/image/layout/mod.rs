//! Reading an image out of an OCI image layout someone else wrote — a directory, an OCI
//! archive (the same as a tar), or a `docker save` archive — trusting nothing: every JSON blob
//! is size-capped and digest-verified, every layer checked present with its size, before
//! anything is imported into the content store.

mod archive;
mod dir;
mod error;
mod import;
mod read;

pub use archive::open_layout;
pub(crate) use dir::LayoutDir;
pub use error::LayoutError;
pub use import::import_oci_layout_blobs;
pub use read::{OciLayoutImage, read_oci_layout};

/// The annotation naming a manifest in an OCI layout's `index.json`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// The layout marker file, holding `{"imageLayoutVersion":"1.0.0"}`.
pub const OCI_LAYOUT_FILE: &str = "oci-layout";
/// The layout's top-level index.
pub const INDEX_FILE: &str = "index.json";
/// The only image-layout version there is.
pub const LAYOUT_VERSION: &str = "1.0.0";
