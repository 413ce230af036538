//! `-o/--output` exporters: `type=oci` (layout dir or `tar=true` archive), `type=docker`
//! (docker-archive), `type=local` (the rootfs as a directory), `type=tar` (the rootfs as
//! one tar).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use kiln_solver::export;
use kiln_solver::snapshot::Snapshots;
use kiln_solver::solve::{CommittedImage, LayerChain, LayerRecord};
use kiln_solver::store::Store;

/// A parsed `--output` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutputSpec {
    pub(crate) kind: String,
    pub(crate) dest: PathBuf,
    pub(crate) tar: bool,
    pub(crate) name: Option<String>,
}

/// Parses `type=oci,dest=out,tar=true`; a bare path means `type=local,dest=PATH`, as in
/// docker buildx.
pub(crate) fn parse(spec: &str) -> Result<OutputSpec> {
    if !spec.contains('=') {
        return Ok(OutputSpec {
            kind: "local".into(),
            dest: PathBuf::from(spec),
            tar: false,
            name: None,
        });
    }
    let mut fields = BTreeMap::new();
    for part in spec.split(',') {
        let Some((k, v)) = part.split_once('=') else {
            bail!("--output {spec:?}: {part:?} is not key=value");
        };
        fields.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    let kind = fields.remove("type").unwrap_or_else(|| "local".into());
    if !["oci", "docker", "local", "tar"].contains(&kind.as_str()) {
        bail!("--output {spec:?}: unknown type {kind:?} (oci, docker, local, tar)");
    }
    let Some(dest) = fields.remove("dest") else {
        bail!("--output {spec:?}: dest= is required");
    };
    let tar = match fields.remove("tar").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => bail!("--output {spec:?}: tar={v} is not true or false"),
    };
    let name = fields.remove("name");
    if let Some(k) = fields.keys().next() {
        bail!("--output {spec:?}: unknown option {k:?}");
    }
    Ok(OutputSpec {
        kind,
        dest: PathBuf::from(dest),
        tar,
        name,
    })
}

/// Exports the built image as `spec` says.
pub(crate) fn export(
    store: &Store,
    snapshots: Snapshots,
    spec: &str,
    image: &CommittedImage,
    layers: &[LayerRecord],
    tags: &[String],
) -> Result<()> {
    let out = parse(spec)?;
    let dest = &out.dest;
    let ctx = || format!("exporting to {}", dest.display());
    // Like BuildKit and containerd, the layout's `org.opencontainers.image.ref.name` is the
    // tag (`1.0` for `app:1.0`), which `oci-layout://PATH:1.0` and `skopeo oci:PATH:1.0` use.
    let ref_name = out
        .name
        .as_deref()
        .or(tags.first().map(String::as_str))
        .map(tag_of);
    match out.kind.as_str() {
        "oci" if out.tar => {
            export::export_oci_tar(
                store.content(),
                &image.manifest_digest,
                dest,
                ref_name.as_deref(),
            )
            .with_context(ctx)?;
        }
        "oci" => {
            export::export_oci_layout(
                store.content(),
                &image.manifest_digest,
                dest,
                ref_name.as_deref(),
            )
            .with_context(ctx)?;
        }
        "docker" => {
            export::export_docker_archive(store.content(), &image.manifest_digest, tags, dest)
                .with_context(ctx)?;
        }
        kind => {
            let chain = LayerChain::new(store.content(), layers).map_err(anyhow::Error::msg)?;
            let open = |d: &oci_spec::image::Digest| chain.open(d);
            if kind == "local" {
                snapshots
                    .export_local(&chain.diff_ids, &open, dest)
                    .with_context(ctx)?;
            } else {
                snapshots
                    .export_tar(&chain.diff_ids, &open, dest)
                    .with_context(ctx)?;
            }
        }
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
    use super::*;

    #[test]
    fn output_specs() {
        let o = parse("type=oci,dest=out,tar=true").unwrap();
        assert_eq!((o.kind.as_str(), o.tar), ("oci", true));
        assert_eq!(parse("dir").unwrap().kind, "local");
        assert!(parse("type=nope,dest=x").is_err());
        assert!(parse("type=oci").is_err());
        assert!(parse("type=oci,dest=x,bogus=1").is_err());
    }

    #[test]
    fn tags_of_references() {
        assert_eq!(tag_of("app:1.0"), "1.0");
        assert_eq!(tag_of("localhost:5000/app"), "latest");
        assert_eq!(tag_of("localhost:5000/app:v2"), "v2");
    }
}
