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

pub use archive::DOCKER_MULTI_PLATFORM;
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
    /// The committed image of each platform, in `--platform` order: one for a
    /// single-platform build; more make a multi-platform image (an index).
    pub images: &'a [PlatformImage],
    /// The build's `-t` names.
    pub names: &'a [String],
}

/// One platform's committed image.
#[derive(Debug, Clone)]
pub struct PlatformImage {
    /// Its manifest.
    pub manifest: Digest,
    /// Its layers, base first (those with a `created` time were made by this build).
    pub layers: Vec<LayerRecord>,
    /// The platform it was built for.
    pub platform: kiln_llb::Platform,
}

/// An image in an export's form: its top digest (the manifest, or the index of a
/// multi-platform build) and each platform's manifest.
#[derive(Debug, Clone)]
pub(crate) struct InForm {
    pub(crate) top: Digest,
    pub(crate) manifests: Vec<(kiln_llb::Platform, Digest)>,
}

impl<'a> Built<'a> {
    /// An exporter's own `name=` list, else the build's `-t` names.
    fn names_or<'b>(&self, own: &'b [String]) -> &'b [String]
    where
        'a: 'b,
    {
        if own.is_empty() { self.names } else { own }
    }

    /// Whether the build made one image per platform of several (exported as an index).
    pub fn is_multi_platform(&self) -> bool {
        self.images.len() > 1
    }

    /// The blobs of the layers this build made (base layers keep their compression unless
    /// `force-compression`).
    fn own_layers(&self) -> HashSet<Digest> {
        self.images
            .iter()
            .flat_map(|i| &i.layers)
            .filter(|l| l.created.is_some())
            .map(|l| l.digest.clone())
            .collect()
    }

    /// The image in `form`: the committed one, or a rewrite of it; for a multi-platform
    /// build, each platform's so and an index of them.
    fn in_form(&self, form: &ImageForm) -> Result<InForm, OutputError> {
        let own = self.own_layers();
        let manifests = self
            .images
            .iter()
            .map(|i| {
                let digest = crate::export::rewrite_image(self.store, &i.manifest, form, &own)?;
                Ok((i.platform.clone(), digest))
            })
            .collect::<Result<Vec<_>, OutputError>>()?;
        let top = match manifests.as_slice() {
            [(_, only)] => only.clone(),
            [] => return Err(OutputError::Unsupported("a build with no image".into())),
            many => {
                let digests: Vec<Digest> = many.iter().map(|(_, d)| d.clone()).collect();
                crate::export::write_index(self.store.content(), &digests, form)?
            }
        };
        Ok(InForm { top, manifests })
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
