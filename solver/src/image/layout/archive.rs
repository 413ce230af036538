//! `oci-layout://` naming a file: an OCI archive (a tar of a layout, what `buildx -o
//! type=oci` and `skopeo copy oci-archive:` write) or a `docker save` archive, unpacked into a
//! temp directory and read as a layout. A `docker save` without an OCI layout inside (Docker
//! before 25) is converted: its config and layer files become blobs, and a manifest and an
//! `index.json` entry per repo tag are written for them.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::error::LayoutError;
use super::{INDEX_FILE, LAYOUT_VERSION, OCI_LAYOUT_FILE, REF_NAME_ANNOTATION};
use crate::fsutil::root_path::{self, Missing};
use crate::fsutil::tempdir::TempDir;
use crate::layer::{ApplyOptions, Owners, WhiteoutMode};

/// containerd's name annotation, which kiln matches selectors against too.
const CONTAINERD_NAME_ANNOTATION: &str = "io.containerd.image.name";

/// A layout ready to be read: the directory named, or an archive unpacked (and removed when
/// this is dropped).
#[derive(Debug)]
pub struct OpenedLayout {
    dir: PathBuf,
    _temp: Option<TempDir>,
}

impl OpenedLayout {
    /// The layout directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

/// Opens `path` as a layout: a directory as is, an archive unpacked under `scratch`.
pub fn open_layout(path: &Path, scratch: &Path) -> Result<OpenedLayout, LayoutError> {
    let meta = fs::metadata(path).map_err(|e| LayoutError::io(path, e))?;
    if meta.is_dir() {
        return Ok(OpenedLayout {
            dir: path.to_path_buf(),
            _temp: None,
        });
    }
    let temp = TempDir::new(scratch, "layout").map_err(|e| LayoutError::io(scratch, e))?;
    let dir = temp.path().to_path_buf();
    let file = File::open(path).map_err(|e| LayoutError::io(path, e))?;
    let opts = ApplyOptions {
        whiteouts: WhiteoutMode::Keep,
        owners: Owners::Caller,
    };
    crate::layer::apply(file, &dir, &opts).map_err(|e| LayoutError::NotALayout {
        path: path.to_path_buf(),
        reason: format!("not a readable tar archive: {e}"),
    })?;
    pin_symlinks(&dir)?;
    if dir.join(OCI_LAYOUT_FILE).is_file() {
        // Docker 25+ writes an OCI layout and a manifest.json into one archive.
    } else if dir.join("manifest.json").is_file() {
        docker_save_to_layout(&dir, path)?;
    } else {
        return Err(LayoutError::NotALayout {
            path: path.to_path_buf(),
            reason: format!(
                "the archive holds neither an OCI layout ({OCI_LAYOUT_FILE}, {INDEX_FILE}) nor a docker save (manifest.json)"
            ),
        });
    }
    Ok(OpenedLayout {
        dir,
        _temp: Some(temp),
    })
}

/// Replaces every symlink in the unpacked tree by a hardlink to what it names inside the
/// tree (`docker save` links identical layers that way), so that reading the layout never
/// follows a link out of it; a link to nothing is removed.
fn pin_symlinks(root: &Path) -> Result<(), LayoutError> {
    let links: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.path_is_symlink())
        .map(|e| e.path().to_path_buf())
        .collect();
    for link in links {
        let rel = link.strip_prefix(root).unwrap_or(&link);
        let target = fs::read_link(&link).map_err(|e| LayoutError::io(&link, e))?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        let joined = if target.is_absolute() {
            target.clone()
        } else {
            parent.join(&target)
        };
        let parts: Vec<_> = joined.iter().collect();
        let resolved = match parts.split_last() {
            Some((last, dirs)) => root_path::resolve_dir(root, dirs.iter(), Missing::Stop)
                .ok()
                .flatten()
                .map(|d| d.abs.join(last)),
            None => None,
        };
        fs::remove_file(&link).map_err(|e| LayoutError::io(&link, e))?;
        if let Some(found) = resolved.filter(|p| p.is_file() && !p.is_symlink()) {
            fs::hard_link(&found, &link).map_err(|e| LayoutError::io(&link, e))?;
        }
    }
    Ok(())
}

/// One image of a `docker save` manifest.json.
#[derive(Deserialize)]
struct SavedImage {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Option<Vec<String>>,
}

/// The platform fields of a config.
#[derive(Deserialize, Default)]
struct ConfigPlatform {
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    architecture: Option<String>,
    #[serde(default)]
    variant: Option<String>,
}

/// Writes an OCI layout beside a `docker save`'s files.
fn docker_save_to_layout(dir: &Path, archive: &Path) -> Result<(), LayoutError> {
    let bad = |reason: String| LayoutError::NotALayout {
        path: archive.to_path_buf(),
        reason,
    };
    let manifest_path = dir.join("manifest.json");
    let bytes = fs::read(&manifest_path).map_err(|e| LayoutError::io(&manifest_path, e))?;
    let images: Vec<SavedImage> =
        serde_json::from_slice(&bytes).map_err(|source| LayoutError::BadJson {
            path: manifest_path.clone(),
            what: "docker save manifest.json",
            source,
        })?;
    fs::create_dir_all(dir.join("blobs/sha256")).map_err(|e| LayoutError::io(dir, e))?;
    let mut entries = Vec::new();
    for image in images {
        let member = |name: &str| -> Result<PathBuf, LayoutError> {
            let parts = root_path::clean_components(name.as_bytes())
                .filter(|p| !p.is_empty())
                .ok_or_else(|| bad(format!("manifest.json names {name:?}, outside the archive")))?;
            let rel: PathBuf = parts
                .iter()
                .map(|p| <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(p))
                .collect();
            let path = dir.join(rel);
            if !path.is_file() {
                return Err(bad(format!(
                    "manifest.json names {name:?}, which the archive lacks"
                )));
            }
            Ok(path)
        };
        let config_path = member(&image.config)?;
        let (config_digest, config_size, _) = blob_of(dir, &config_path)?;
        let config_bytes = fs::read(&config_path).map_err(|e| LayoutError::io(&config_path, e))?;
        let platform: ConfigPlatform = serde_json::from_slice(&config_bytes).unwrap_or_default();
        let mut layers = Vec::new();
        for layer in image.layers.unwrap_or_default() {
            let path = member(&layer)?;
            let (digest, size, media_type) = blob_of(dir, &path)?;
            layers.push(serde_json::json!({
                "mediaType": media_type, "digest": digest, "size": size,
            }));
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest, "size": config_size,
            },
            "layers": layers,
        });
        let manifest_bytes =
            serde_json::to_vec(&manifest).map_err(|source| LayoutError::BadJson {
                path: manifest_path.clone(),
                what: "converted manifest",
                source,
            })?;
        let manifest_digest = format!("sha256:{}", hex::encode(Sha256::digest(&manifest_bytes)));
        let blob = dir.join("blobs/sha256").join(&manifest_digest[7..]);
        fs::write(&blob, &manifest_bytes).map_err(|e| LayoutError::io(&blob, e))?;
        let mut platform_json = serde_json::json!({
            "os": platform.os.unwrap_or_default(),
            "architecture": platform.architecture.unwrap_or_default(),
        });
        if let Some(variant) = platform.variant.filter(|v| !v.is_empty()) {
            platform_json["variant"] = variant.into();
        }
        let descriptor = |annotations: serde_json::Value| {
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest, "size": manifest_bytes.len(),
                "platform": platform_json, "annotations": annotations,
            })
        };
        match image.repo_tags.filter(|t| !t.is_empty()) {
            None => entries.push(descriptor(serde_json::json!({}))),
            Some(tags) => {
                for tag in tags {
                    let short = tag.rsplit_once(':').map_or("latest", |(_, t)| t).to_owned();
                    entries.push(descriptor(serde_json::json!({
                        REF_NAME_ANNOTATION: short,
                        CONTAINERD_NAME_ANNOTATION: tag,
                    })));
                }
            }
        }
    }
    let index = serde_json::json!({"schemaVersion": 2, "manifests": entries});
    let write = |name: &str, value: Vec<u8>| {
        let path = dir.join(name);
        fs::write(&path, value).map_err(|e| LayoutError::io(&path, e))
    };
    write(INDEX_FILE, index.to_string().into_bytes())?;
    write(
        OCI_LAYOUT_FILE,
        format!(r#"{{"imageLayoutVersion":"{LAYOUT_VERSION}"}}"#).into_bytes(),
    )
}

/// Hashes the file at `path` and links it into `blobs/sha256/`; returns its digest, size and
/// a layer media type told by its first bytes.
fn blob_of(dir: &Path, path: &Path) -> Result<(String, u64, &'static str), LayoutError> {
    let mut file = File::open(path).map_err(|e| LayoutError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut head = [0u8; 4];
    let mut head_len = 0;
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(LayoutError::io(path, e)),
        };
        if head_len < head.len() {
            let take = (head.len() - head_len).min(n);
            head[head_len..head_len + take].copy_from_slice(&buf[..take]);
            head_len += take;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    let hex = hex::encode(hasher.finalize());
    let blob = dir.join("blobs/sha256").join(&hex);
    if !blob.exists() {
        fs::hard_link(path, &blob).map_err(|e| LayoutError::io(&blob, e))?;
    }
    let media_type = if head.starts_with(&[0x1f, 0x8b]) {
        "application/vnd.oci.image.layer.v1.tar+gzip"
    } else if head == [0x28, 0xb5, 0x2f, 0xfd] {
        "application/vnd.oci.image.layer.v1.tar+zstd"
    } else {
        "application/vnd.oci.image.layer.v1.tar"
    };
    Ok((format!("sha256:{hex}"), size, media_type))
}
