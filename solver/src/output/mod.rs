//! What a build's image becomes: one [`Exporter`] per `-o` type, BuildKit's
//! `exporter/exporter.go` seam. An [`OutputSpec`] (parsed before anything is built) names the
//! exporter; each takes the committed image ([`Built`]) and reports what it made
//! ([`Exported`]) for the build's summary and `--metadata-file`.
//!
//! - [`image`]: `type=image|registry` — names in kiln's store, pushes;
//! - [`archive`]: `type=oci|docker` — an OCI layout (tarball or directory) or a docker
//!   archive, to a file, to stdout, or loaded into docker/podman (`--load`);
//! - [`rootfs`]: `type=local|tar` — the image's filesystem.
//!
//! The image exporters first rewrite the image into the form asked (compression, media
//! types, annotations: [`crate::export::rewrite_image`]).

mod archive;
mod error;
mod image;
mod load;
mod rootfs;
pub mod spec;
mod stdout;

use std::collections::HashSet;
use std::time::Duration;

use oci_spec::image::{Descriptor, Digest};

pub use error::OutputError;
pub use spec::{Destination, OutputKind, OutputSpec, OutputSpecError};

use crate::cache::LayerRecord;
use crate::export::{Annotations, ImageForm};
use crate::registry::{PushedImage, Registry};
use crate::store::Store;

/// The image a build made, as every exporter sees it.
#[derive(Debug, Clone, Copy)]
pub struct Built<'a> {
    /// The store holding it.
    pub store: &'a Store,
    /// Where pushes go.
    pub registry: &'a Registry,
    /// The committed image's manifest.
    pub manifest: &'a Digest,
    /// Its layers, base first (those with a `created` time were made by this build).
    pub layers: &'a [LayerRecord],
    /// The build's `-t` names.
    pub names: &'a [String],
}

impl<'a> Built<'a> {
    /// An exporter's own `name=` list, else the build's `-t` names.
    fn names_or<'b>(&self, own: &'b [String]) -> &'b [String]
    where
        'a: 'b,
    {
        if own.is_empty() { self.names } else { own }
    }

    /// The blobs of the layers this build made (base layers keep their compression unless
    /// `force-compression`).
    fn own_layers(&self) -> HashSet<Digest> {
        self.layers
            .iter()
            .filter(|l| l.created.is_some())
            .map(|l| l.digest.clone())
            .collect()
    }

    /// The image in `form`: the committed one, or a rewrite of it.
    fn in_form(&self, form: &ImageForm) -> Result<Digest, OutputError> {
        Ok(crate::export::rewrite_image(
            self.store,
            self.manifest,
            form,
            &self.own_layers(),
        )?)
    }
}

/// What an exporter did.
#[derive(Debug, Default)]
pub struct Exported {
    /// The image it wrote (its digest differs from the committed image's when the form
    /// rewrote it), as a descriptor.
    pub descriptor: Option<Descriptor>,
    /// Names given in kiln's store.
    pub tagged: Vec<String>,
    /// Pushes, with how long each took.
    pub pushed: Vec<(PushedImage, Duration)>,
    /// Lines for the user (what `docker load` said, …).
    pub notes: Vec<String>,
}

/// One output of a build.
pub trait Exporter {
    /// Writes `built` out.
    fn export(&self, built: &Built<'_>) -> Result<Exported, OutputError>;
}

impl OutputSpec {
    /// The exporter for this output, with the build's `--annotation`s added to its own.
    pub fn exporter(&self, annotations: &Annotations) -> Result<Box<dyn Exporter>, OutputError> {
        let mut form = self.form.clone();
        let mut all = annotations.clone();
        all.extend(&form.annotations);
        form.annotations = all;
        if !form.annotations.index.is_empty() {
            // BuildKit's rule: a single-platform image has no index to annotate.
            return Err(OutputError::Unsupported(format!(
                "index annotations ({}) need a multi-platform build",
                form.annotations
                    .index
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(match &self.kind {
            OutputKind::Image {
                names,
                push,
                push_by_digest,
                store,
            } => Box::new(image::ImageExporter {
                names: names.clone(),
                push: *push,
                push_by_digest: *push_by_digest,
                store: *store,
                form,
            }),
            OutputKind::Oci { dest, tar, name } => Box::new(archive::OciExporter {
                dest: dest.clone(),
                tar: *tar,
                name: name.clone(),
                form,
            }),
            OutputKind::Docker { dest, names } => Box::new(archive::DockerExporter {
                dest: dest.clone(),
                names: names.clone(),
                form,
            }),
            OutputKind::Local { dest } => Box::new(rootfs::RootfsExporter {
                dest: dest.clone(),
                tar: false,
            }),
            OutputKind::Tar { dest } => Box::new(rootfs::RootfsExporter {
                dest: dest.clone(),
                tar: true,
            }),
        })
    }

    /// True for the outputs that write an image (image, registry, oci, docker), whose
    /// descriptor `--metadata-file` reports.
    pub fn writes_image(&self) -> bool {
        !matches!(self.kind, OutputKind::Local { .. } | OutputKind::Tar { .. })
    }
}
