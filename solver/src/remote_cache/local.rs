//! A cache artifact in an OCI layout directory (`type=local,dest=DIR` / `src=DIR`).

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use oci_spec::image::Digest;

use super::{BlobFetcher, CACHE_CONFIG_MEDIA_TYPE, CacheConfig, ImportedCache};
use crate::store::{ContentStore, Store};

/// Writes `config`'s layers and the artifact into the OCI layout at `dir` (created if
/// needed); `index.json` is replaced atomically and names the cache `latest`.
pub fn export_local(store: &Store, dir: &Path, config: &CacheConfig) -> Result<Digest, String> {
    let blobs_dir = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs_dir).map_err(|e| format!("{}: {e}", blobs_dir.display()))?;
    let config_bytes = config.to_bytes()?;
    let info = store
        .content()
        .put_bytes(&config_bytes)
        .map_err(|e| e.to_string())?;
    let mut digests = vec![info.digest.clone()];
    for rec in &config.records {
        let d = rec.layer.digest()?;
        if !digests.contains(&d) {
            digests.push(d);
        }
    }
    for d in &digests {
        copy_blob(store.content(), d, &blobs_dir)?;
    }
    let manifest = config.manifest(&info)?;
    let manifest_digest = crate::registry::sha256_digest(&manifest);
    write_atomic(&blobs_dir.join(manifest_digest.digest()), &manifest)?;
    write_atomic(
        &dir.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": crate::registry::media::OCI_INDEX,
        "manifests": [{
            "mediaType": crate::registry::media::OCI_MANIFEST,
            "artifactType": super::CACHE_ARTIFACT_TYPE,
            "digest": manifest_digest.to_string(),
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": "latest"},
        }],
    });
    let index = serde_json::to_vec_pretty(&index).map_err(|e| e.to_string())?;
    write_atomic(&dir.join("index.json"), &index)?;
    Ok(manifest_digest)
}

/// Imports the cache artifact of the OCI layout at `dir`.
pub fn import_local(dir: &Path) -> Result<ImportedCache, String> {
    let index_path = dir.join("index.json");
    let index: serde_json::Value = serde_json::from_slice(
        &fs::read(&index_path).map_err(|e| format!("{}: {e}", index_path.display()))?,
    )
    .map_err(|e| format!("{}: {e}", index_path.display()))?;
    let entries = index["manifests"].as_array().cloned().unwrap_or_default();
    let blobs = dir.join("blobs/sha256");
    for entry in entries {
        let Some(digest) = entry["digest"]
            .as_str()
            .and_then(|d| d.parse::<Digest>().ok())
        else {
            continue;
        };
        let manifest = read_verified(&blobs, &digest)?;
        let manifest: serde_json::Value =
            serde_json::from_slice(&manifest).map_err(|e| format!("manifest {digest}: {e}"))?;
        if manifest["config"]["mediaType"].as_str() != Some(CACHE_CONFIG_MEDIA_TYPE) {
            continue;
        }
        let config_digest = manifest["config"]["digest"]
            .as_str()
            .and_then(|d| d.parse::<Digest>().ok())
            .ok_or_else(|| format!("manifest {digest}: no config digest"))?;
        let config = CacheConfig::parse(&read_verified(&blobs, &config_digest)?)?;
        return Ok(ImportedCache::new(config, Arc::new(LocalFetcher { blobs })));
    }
    Err(format!(
        "{}: no kiln cache in this OCI layout",
        index_path.display()
    ))
}

/// Copies blobs out of an OCI layout directory, verified through the content store.
#[derive(Debug)]
struct LocalFetcher {
    blobs: PathBuf,
}

impl BlobFetcher for LocalFetcher {
    fn fetch(&self, content: &ContentStore, digest: &Digest) -> Result<(), String> {
        let path = self.blobs.join(digest.digest());
        let mut file = fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut ingest = content.ingest().map_err(|e| e.to_string())?;
        std::io::copy(&mut file, &mut ingest).map_err(|e| format!("{}: {e}", path.display()))?;
        ingest
            .commit(Some(digest))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("cache {}", self.blobs.display())
    }
}

fn read_verified(blobs: &Path, digest: &Digest) -> Result<Vec<u8>, String> {
    let path = blobs.join(digest.digest());
    let bytes = fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if crate::registry::sha256_digest(&bytes) != *digest {
        return Err(format!(
            "{}: content does not match {digest}",
            path.display()
        ));
    }
    Ok(bytes)
}

fn copy_blob(content: &ContentStore, digest: &Digest, blobs_dir: &Path) -> Result<(), String> {
    let dest = blobs_dir.join(digest.digest());
    if dest.is_file() {
        return Ok(());
    }
    let src = content.blob_path(digest);
    let tmp = blobs_dir.join(format!(".{}.tmp-{}", digest.digest(), std::process::id()));
    fs::copy(&src, &tmp).map_err(|e| format!("{} → {}: {e}", src.display(), tmp.display()))?;
    fs::rename(&tmp, &dest).map_err(|e| format!("{}: {e}", dest.display()))
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f = fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    f.write_all(data)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    f.sync_all()
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}
