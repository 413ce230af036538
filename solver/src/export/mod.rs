//! Image exporters.
//!
//! Out of the content store: an OCI image layout (a directory, or the same as a tar archive)
//! and a docker archive (what `docker load` and `podman load` read). Reading layouts is
//! [`crate::image::layout`]'s job.
//!
//! Exporters write every destination file under a temp name and rename it into place, so an
//! interrupted export never leaves a half file under its final name. Layers are streamed,
//! never held in memory. This module knows images only as manifests, configs and blobs; it
//! knows nothing of builds or Dockerfiles.

mod atomic;
mod docker_archive;
mod error;
mod form;
mod image;
mod index;
mod json;
mod oci_layout;
mod oci_tar;
mod tar_entries;
#[cfg(test)]
pub(crate) mod test_image;
#[cfg(test)]
mod tool_check;

pub use atomic::write_atomic;
pub use docker_archive::{export_docker_archive, write_docker_archive};
pub use error::ExportError;
pub use form::{AnnotationError, Annotations, ImageForm, LayerCompression, rewrite_image};
pub use image::{image_descriptor, image_descriptor_and_platform};
pub use index::write_index;
pub use oci_layout::{IndexEntry, export_oci_layout};
pub(crate) use oci_layout::{oci_layout_bytes, place_blob};
pub use oci_tar::{export_oci_tar, write_oci_tar};

pub use crate::image::layout::{INDEX_FILE, LAYOUT_VERSION, OCI_LAYOUT_FILE, REF_NAME_ANNOTATION};
