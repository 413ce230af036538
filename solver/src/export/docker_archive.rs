//! Export to a docker archive, the format of `docker save`, read by `docker load`,
//! `podman load` and `skopeo`'s `docker-archive:`.
//!
//! ```text
//! manifest.json          [{"Config":"<hex>.json","RepoTags":[…],"Layers":["blobs/…",…]}]
//! <config hex>.json      the image config
//! blobs/sha256/<hex>     each layer blob as stored (gzip); loaders decompress what they find
//! repositories           {"<repo>":{"<tag>":"<top layer hex>"}}, for pre-1.10 loaders
//! ```
//!
//! Layers keep their stored compression rather than being inflated: `docker load` (since
//! 1.10) and containers/image both sniff and decompress, and the export stays a plain copy.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use oci_spec::image::Digest;
use serde::Serialize;

use super::atomic::AtomicFile;
use super::error::ExportError;
use super::image::StoredImage;
use super::oci_tar::blob_path;
use super::tar_entries::TarOut;
use crate::store::{ContentStore, Reference};

/// One image in `manifest.json`; field names and order as docker writes them.
#[derive(Debug, Serialize)]
struct ArchiveManifest {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: Vec<String>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// Writes the image `manifest_digest` as a docker archive at `dest_file` (replacing it
/// atomically), tagged with `repo_tags` (`app:1.0`, normalized and shown as docker does).
pub fn export_docker_archive(
    store: &ContentStore,
    manifest_digest: &Digest,
    repo_tags: &[String],
    dest_file: &Path,
) -> Result<(), ExportError> {
    let file = AtomicFile::create(dest_file)?;
    write_docker_archive(store, manifest_digest, repo_tags, file, dest_file)?.commit()
}

/// Streams the image `manifest_digest` as a docker archive into `out` (`dest` names it in
/// errors), tagged with `repo_tags`; returns the writer.
pub fn write_docker_archive<W: Write>(
    store: &ContentStore,
    manifest_digest: &Digest,
    repo_tags: &[String],
    out: W,
    dest_file: &Path,
) -> Result<W, ExportError> {
    let tags = parse_repo_tags(repo_tags)?;
    let image = StoredImage::load(store, manifest_digest)?;
    let config_digest = image.manifest.config().digest();
    let config_name = format!("{}.json", config_digest.digest());
    let layer_names: Vec<String> = image
        .manifest
        .layers()
        .iter()
        .map(|layer| blob_path(layer.digest()))
        .collect();

    let manifest = vec![ArchiveManifest {
        config: config_name.clone(),
        repo_tags: tags.iter().map(Reference::familiar).collect(),
        layers: layer_names.clone(),
    }];
    let json_err = |e: serde_json::Error| ExportError::io(dest_file, e.into());
    let manifest_json = serde_json::to_vec(&manifest).map_err(json_err)?;
    let repositories = repositories(&tags, &image);

    let mut tar = TarOut::new(out);
    let io_err = |e| ExportError::io(dest_file, e);
    let mut written = std::collections::HashSet::new();
    for (layer, name) in image.manifest.layers().iter().zip(&layer_names) {
        // The same layer may appear twice in a manifest; the archive needs it once.
        if !written.insert(name.as_str()) {
            continue;
        }
        if crate::cancel::is_cancelled() {
            return Err(ExportError::Cancelled);
        }
        let file = store.open_blob(layer.digest())?;
        let size = file.metadata().map_err(io_err)?.len();
        tar.stream(name, size, file).map_err(io_err)?;
    }
    tar.bytes(&config_name, &image.config_bytes)
        .map_err(io_err)?;
    tar.bytes("manifest.json", &manifest_json).map_err(io_err)?;
    if let Some(repositories) = repositories {
        let bytes = serde_json::to_vec(&repositories).map_err(json_err)?;
        tar.bytes("repositories", &bytes).map_err(io_err)?;
    }
    tar.finish().map_err(io_err)
}

fn parse_repo_tags(repo_tags: &[String]) -> Result<Vec<Reference>, ExportError> {
    repo_tags
        .iter()
        .map(|tag| {
            let parsed = Reference::parse_normalized(tag)?.with_default_tag();
            if parsed.digest().is_some() {
                return Err(ExportError::DigestInRepoTag {
                    reference: tag.clone(),
                });
            }
            Ok(parsed)
        })
        .collect()
}

/// The legacy `repositories` file; `None` when there is nothing to name.
fn repositories(
    tags: &[Reference],
    image: &StoredImage,
) -> Option<BTreeMap<String, BTreeMap<String, String>>> {
    let top = image.manifest.layers().last()?.digest().digest().to_owned();
    let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for reference in tags {
        if let Some(tag) = reference.tag() {
            repos
                .entry(reference.familiar_repository())
                .or_default()
                .insert(tag.to_owned(), top.clone());
        }
    }
    (!repos.is_empty()).then_some(repos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::test_image::build;
    use crate::store::sha256_digest;
    use crate::store::test_dir::TestDir;
    use flate2::read::GzDecoder;
    use std::collections::BTreeMap;
    use std::fs;
    use std::io::Read;

    fn read_archive(path: &Path) -> BTreeMap<String, Vec<u8>> {
        let mut entries = BTreeMap::new();
        let mut archive = tar::Archive::new(fs::File::open(path).unwrap());
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            entries.insert(path, data);
        }
        entries
    }

    #[test]
    fn archive_structure() {
        let dir = TestDir::new("docker-archive");
        let store = ContentStore::open(&dir.path().join("store")).unwrap();
        let image = build(&store, &[&[("a", b"1")], &[("b", b"2")]], None);
        let dest = dir.path().join("app.tar");
        let tags = vec!["app:1.0".to_owned(), "localhost:5000/team/app".to_owned()];
        export_docker_archive(&store, &image.manifest, &tags, &dest).unwrap();
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            2,
            "temp left behind"
        );

        let entries = read_archive(&dest);
        let manifest: serde_json::Value =
            serde_json::from_slice(&entries["manifest.json"]).unwrap();
        let manifest = manifest.as_array().unwrap();
        assert_eq!(manifest.len(), 1);
        let entry = &manifest[0];
        assert_eq!(
            entry["RepoTags"],
            serde_json::json!(["app:1.0", "localhost:5000/team/app:latest"])
        );
        let config_name = entry["Config"].as_str().unwrap();
        assert_eq!(config_name, format!("{}.json", image.config.digest()));
        let config_bytes = &entries[config_name];
        assert_eq!(sha256_digest(config_bytes).unwrap(), image.config);

        // Each layer decompresses to the tar whose digest the config lists as its diff id.
        let config: serde_json::Value = serde_json::from_slice(config_bytes).unwrap();
        let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
        let layers = entry["Layers"].as_array().unwrap();
        assert_eq!(layers.len(), diff_ids.len());
        for (layer, diff_id) in layers.iter().zip(diff_ids) {
            let mut tar = Vec::new();
            GzDecoder::new(entries[layer.as_str().unwrap()].as_slice())
                .read_to_end(&mut tar)
                .unwrap();
            assert_eq!(
                sha256_digest(&tar).unwrap().to_string(),
                diff_id.as_str().unwrap()
            );
        }

        let repositories: serde_json::Value =
            serde_json::from_slice(&entries["repositories"]).unwrap();
        let top = image.layers[1].blob.digest();
        assert_eq!(
            repositories,
            serde_json::json!({
                "app": {"1.0": top},
                "localhost:5000/team/app": {"latest": top},
            })
        );
    }

    #[test]
    fn untagged_and_bad_tags() {
        let dir = TestDir::new("docker-archive-tags");
        let store = ContentStore::open(&dir.path().join("store")).unwrap();
        let image = build(&store, &[&[("a", b"1")]], None);
        let dest = dir.path().join("untagged.tar");
        export_docker_archive(&store, &image.manifest, &[], &dest).unwrap();
        let entries = read_archive(&dest);
        assert!(!entries.contains_key("repositories"));
        let manifest: serde_json::Value =
            serde_json::from_slice(&entries["manifest.json"]).unwrap();
        assert_eq!(manifest[0]["RepoTags"], serde_json::json!([]));

        let bad = dir.path().join("bad.tar");
        let err =
            export_docker_archive(&store, &image.manifest, &["App".to_owned()], &bad).unwrap_err();
        assert!(err.to_string().contains("App"), "{err}");
        let pinned = format!("app@{}", image.manifest);
        assert!(matches!(
            export_docker_archive(&store, &image.manifest, &[pinned], &bad),
            Err(ExportError::DigestInRepoTag { .. })
        ));
        assert!(!bad.exists());
    }
}
