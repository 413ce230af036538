//! `type=oci` and `type=docker`: the image as an OCI layout (a tarball, as buildx writes it,
//! or with `tar=false` a directory) or a docker archive — to a file, to stdout (`dest=-`), or
//! for a docker archive without `dest=`, loaded into docker or podman.

use std::path::Path;

use super::stdout::{STDOUT, to_stdout};
use super::{Built, Destination, Exported, Exporter, OutputError};
use crate::export::{
    ImageForm, IndexEntry, export_docker_archive, export_oci_layout, export_oci_tar,
    image_descriptor, write_docker_archive, write_oci_tar,
};

/// Writes an OCI layout.
#[derive(Debug)]
pub(super) struct OciExporter {
    pub(super) dest: Destination,
    pub(super) tar: bool,
    /// `name=`; else the build's first `-t` name. Its tag is the layout's ref name.
    pub(super) name: Option<String>,
    pub(super) form: ImageForm,
}

impl Exporter for OciExporter {
    fn export(&self, built: &Built<'_>) -> Result<Exported, OutputError> {
        let digest = built.in_form(&self.form.at_the_edge())?.top;
        let content = built.store.content();
        // Like BuildKit and containerd, the layout's `org.opencontainers.image.ref.name` is
        // the tag (`1.0` for `app:1.0`), which `oci-layout://PATH:1.0` and skopeo's
        // `oci:PATH:1.0` use.
        let ref_name = self
            .name
            .as_deref()
            .or(built.names.first().map(String::as_str))
            .map(tag_of);
        let entry = IndexEntry {
            ref_name: ref_name.as_deref(),
            annotations: &self.form.annotations.manifest_descriptor,
        };
        let descriptor = match &self.dest {
            Destination::Stdout => to_stdout(|out| {
                Ok(write_oci_tar(content, &digest, entry, out, Path::new(STDOUT))?.1)
            })?,
            Destination::Path(dest) if self.tar => {
                refuse_directory(dest, "type=oci")?;
                export_oci_tar(content, &digest, dest, entry)?
            }
            Destination::Path(dest) => export_oci_layout(content, &digest, dest, entry)?,
        };
        Ok(Exported {
            descriptor: Some(descriptor),
            ..Exported::default()
        })
    }
}

/// Why a docker archive cannot hold a multi-platform build (buildx refuses it too: "docker
/// exporter does not currently support exporting manifest lists").
pub const DOCKER_MULTI_PLATFORM: &str = "a docker archive (type=docker, --load) holds one \
     platform's image: export a multi-platform build with type=oci or type=registry, or build \
     one --platform";

/// Writes or loads a docker archive.
#[derive(Debug)]
pub(super) struct DockerExporter {
    /// `None`: `docker load` (or podman's).
    pub(super) dest: Option<Destination>,
    /// `name=`; else the build's `-t` names.
    pub(super) names: Vec<String>,
    pub(super) form: ImageForm,
}

impl Exporter for DockerExporter {
    fn export(&self, built: &Built<'_>) -> Result<Exported, OutputError> {
        if built.is_multi_platform() {
            return Err(OutputError::Unsupported(DOCKER_MULTI_PLATFORM.into()));
        }
        let digest = built.in_form(&self.form.at_the_edge())?.top;
        let content = built.store.content();
        let names = built.names_or(&self.names);
        let mut done = Exported {
            descriptor: Some(image_descriptor(content, &digest)?),
            ..Exported::default()
        };
        match &self.dest {
            Some(Destination::Stdout) => to_stdout(|out| {
                write_docker_archive(content, &digest, names, out, Path::new(STDOUT))?;
                Ok(())
            })?,
            Some(Destination::Path(dest)) => {
                refuse_directory(dest, "type=docker")?;
                export_docker_archive(content, &digest, names, dest)?;
            }
            None => {
                let said = super::load::load(|stdin, label| {
                    write_docker_archive(content, &digest, names, stdin, label)?;
                    Ok(())
                })?;
                done.notes.push(said);
            }
        }
        Ok(done)
    }
}

/// A tarball cannot replace a directory; say how to get a directory instead.
fn refuse_directory(dest: &Path, kind: &str) -> Result<(), OutputError> {
    if dest.is_dir() {
        return Err(OutputError::Unsupported(format!(
            "{}: is a directory, and {kind} writes a tarball there (as buildx does): add \
             tar=false for an OCI layout directory, or name a file",
            dest.display()
        )));
    }
    Ok(())
}

/// The tag of a reference: what follows the last `:` after the last `/`, else `latest`.
fn tag_of(reference: &str) -> String {
    let name = reference.split('@').next().unwrap_or(reference);
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(i) => name[slash + i + 1..].to_owned(),
        None => "latest".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::tag_of;

    #[test]
    fn tags_of_references() {
        assert_eq!(tag_of("app:1.0"), "1.0");
        assert_eq!(tag_of("localhost:5000/app"), "latest");
        assert_eq!(tag_of("localhost:5000/app:v2"), "v2");
    }
}
