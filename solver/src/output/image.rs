//! `type=image` and `type=registry`: the image named in kiln's store and, with `push=true`,
//! pushed to each name (`push-by-digest`: as `name@digest`, no tag). Pushes come before
//! the store's names, so a failed push leaves no new name behind. The store keeps the image
//! as committed (its layers plain tars) unless a compression is asked; a pushed image leaves
//! compressed (gzip by default) and is named in the store in that form. A multi-platform
//! build is named (and pushed) as its index, the store keeping each platform's manifest.

use std::time::Instant;

use super::{Built, Exported, Exporter, OutputError};
use crate::export::{ImageForm, image_descriptor, image_descriptor_and_platform};
use crate::store::{Reference, familiar_name};

/// Names and pushes the image.
#[derive(Debug)]
pub(super) struct ImageExporter {
    /// `name=`; empty: the build's `-t` names.
    pub(super) names: Vec<String>,
    pub(super) push: bool,
    pub(super) push_by_digest: bool,
    /// Name the image in kiln's store.
    pub(super) store: bool,
    pub(super) form: ImageForm,
}

impl Exporter for ImageExporter {
    fn export(&self, built: &Built<'_>) -> Result<Exported, OutputError> {
        // A pushed image is named in the store as it was pushed, so the name and the
        // registry agree on its digest (its compressed blobs are made for the push anyway).
        let form = if self.push {
            self.form.at_the_edge()
        } else {
            self.form.clone()
        };
        let in_form = built.in_form(&form)?;
        let digest = in_form.top.clone();
        let content = built.store.content();
        let (descriptor, platform) = if built.is_multi_platform() {
            (image_descriptor(content, &digest)?, None)
        } else {
            let (descriptor, platform) = image_descriptor_and_platform(content, &digest)?;
            (descriptor, Some(platform))
        };
        let mut done = Exported {
            descriptor: Some(descriptor),
            ..Exported::default()
        };
        let names = built.names_or(&self.names);
        if self.push {
            for name in names {
                if crate::cancel::is_cancelled() {
                    return Err(crate::export::ExportError::Cancelled.into());
                }
                let destination = if self.push_by_digest {
                    let parsed = Reference::parse_normalized(name).map_err(|e| {
                        OutputError::Unsupported(format!("push-by-digest {name}: {e}"))
                    })?;
                    format!("{}@{digest}", parsed.repository())
                } else {
                    name.clone()
                };
                let started = Instant::now();
                let pushed = crate::registry::block_on(built.registry.push(
                    built.store,
                    &digest,
                    &destination,
                ))??;
                done.pushed.push((pushed, started.elapsed()));
            }
        }
        if self.store {
            for name in names {
                if crate::cancel::is_cancelled() {
                    return Err(crate::export::ExportError::Cancelled.into());
                }
                let images = built.store.images();
                let tagged = match &platform {
                    Some(platform) => images.tag_image(name, &digest, platform, false),
                    None => images.tag_built_index(name, &digest, &in_form.manifests),
                };
                let full = tagged.map_err(|source| OutputError::Tag {
                    name: name.clone(),
                    source,
                })?;
                done.tagged.push(familiar_name(&full));
            }
        }
        Ok(done)
    }
}
