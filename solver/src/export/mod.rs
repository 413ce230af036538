//! Image exporters and the OCI-layout importer.
//!
//! Out of the content store: an OCI image layout (a directory, or the same as a tar archive)
//! and a docker archive (what `docker load` and `podman load` read). Into it: the image an
//! OCI layout holds, for `FROM oci-layout://PATH[:tag|@digest]`.
//!
//! Exporters write every destination file under a temp name and rename it into place, so an
//! interrupted export never leaves a half file under its final name. Layers are streamed,
//! never held in memory. This module knows images only as manifests, configs and blobs; it
//! knows nothing of builds or Dockerfiles.

mod atomic;
mod docker_archive;
mod error;
mod image;
mod import;
mod json;
mod layout_dir;
mod oci_layout;
mod oci_tar;
mod platform;
mod read_layout;
mod tar_entries;
#[cfg(test)]
mod test_image;
#[cfg(test)]
mod tool_check;

pub(crate) use atomic::write_atomic;
pub use docker_archive::export_docker_archive;
pub use error::{ExportError, LayoutError};
pub use import::import_oci_layout_blobs;
pub(crate) use layout_dir::LayoutDir;
pub use oci_layout::export_oci_layout;
pub(crate) use oci_layout::{oci_layout_bytes, place_blob};
pub use oci_tar::export_oci_tar;
pub use read_layout::{OciLayoutImage, read_oci_layout};

/// The annotation naming a manifest in an OCI layout's `index.json`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// The layout marker file, holding `{"imageLayoutVersion":"1.0.0"}`.
const OCI_LAYOUT_FILE: &str = "oci-layout";
/// The layout's top-level index.
const INDEX_FILE: &str = "index.json";
/// The only image-layout version there is.
const LAYOUT_VERSION: &str = "1.0.0";
