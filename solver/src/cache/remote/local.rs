//! A cache artifact in an OCI layout directory (`type=local,dest=DIR` / `src=DIR`).

use std::path::Path;
use std::sync::Arc;

use oci_spec::image::Digest;

use super::{BlobFetcher, CACHE_CONFIG_MEDIA_TYPE, CacheConfig, ImportedCache};
use crate::export::{oci_layout_bytes, place_blob, write_atomic};
use crate::image::layout::LayoutDir;
use crate::store::{ContentStore, Store};

/// Writes `config`'s layers and the artifact into the OCI layout at `dir` (created if
/// needed); `index.json` is replaced atomically and names the cache `latest`.
pub fn export_local(store: &Store, dir: &Path, config: &CacheConfig) -> Result<Digest, String> {
    let config_bytes = config.to_bytes()?;
    let info = store
        .content()
        .put_bytes(&config_bytes)
        .map_err(|e| e.to_string())?;
    let mut blobs = vec![(info.digest.clone(), info.size)];
    for rec in &config.records {
        let d = rec.layer.digest.clone();
        if !blobs.iter().any(|(b, _)| *b == d) {
            blobs.push((d, rec.layer.size));
        }
    }
    for (d, size) in &blobs {
        place_blob(store.content(), d, *size, dir).map_err(|e| e.to_string())?;
    }
    let manifest = config.manifest(&info)?;
    let manifest_digest = crate::store::sha256_digest(&manifest).map_err(|e| e.to_string())?;
    let layout = LayoutDir::new(dir);
    let manifest_path = layout
        .blob_path(&manifest_digest)
        .map_err(|e| e.to_string())?;
    write_atomic(&manifest_path, &manifest).map_err(|e| e.to_string())?;
    write_atomic(&dir.join("oci-layout"), &oci_layout_bytes()).map_err(|e| e.to_string())?;
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
    write_atomic(&dir.join("index.json"), &index).map_err(|e| e.to_string())?;
    Ok(manifest_digest)
}

/// Imports the cache artifact of the OCI layout at `dir`.
pub fn import_local(dir: &Path) -> Result<ImportedCache, String> {
    let index_path = dir.join("index.json");
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&index_path).map_err(|e| format!("{}: {e}", index_path.display()))?,
    )
    .map_err(|e| format!("{}: {e}", index_path.display()))?;
    let entries = index["manifests"].as_array().cloned().unwrap_or_default();
    let layout = LayoutDir::new(dir);
    for entry in entries {
        let Some(digest) = entry["digest"]
            .as_str()
            .and_then(|d| d.parse::<Digest>().ok())
        else {
            continue;
        };
        let manifest = layout
            .read_json_blob(&digest, entry["size"].as_u64())
            .map_err(|e| e.to_string())?;
        let manifest: serde_json::Value =
            serde_json::from_slice(&manifest).map_err(|e| format!("manifest {digest}: {e}"))?;
        if manifest["config"]["mediaType"].as_str() != Some(CACHE_CONFIG_MEDIA_TYPE) {
            continue;
        }
        let config_digest = manifest["config"]["digest"]
            .as_str()
            .and_then(|d| d.parse::<Digest>().ok())
            .ok_or_else(|| format!("manifest {digest}: no config digest"))?;
        let config = layout
            .read_json_blob(&config_digest, manifest["config"]["size"].as_u64())
            .map_err(|e| e.to_string())?;
        let config = CacheConfig::parse(&config)?;
        return Ok(ImportedCache::new(
            config,
            Arc::new(LocalFetcher { layout }),
        ));
    }
    Err(format!(
        "{}: no kiln cache in this OCI layout",
        index_path.display()
    ))
}

/// Copies blobs out of an OCI layout directory, verified through the content store.
#[derive(Debug)]
struct LocalFetcher {
    layout: LayoutDir,
}

impl BlobFetcher for LocalFetcher {
    fn fetch(&self, content: &ContentStore, digest: &Digest, size: u64) -> Result<(), String> {
        let (file, len, path) = self.layout.open_blob(digest).map_err(|e| e.to_string())?;
        if len != size {
            return Err(format!(
                "{}: {len} bytes where the cache record says {size}",
                path.display()
            ));
        }
        let mut ingest = content.ingest().map_err(|e| e.to_string())?;
        // Bounded by the record's size even if the file grows meanwhile.
        std::io::copy(&mut std::io::Read::take(file, size), &mut ingest)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        ingest
            .commit(Some(digest))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("cache {}", self.layout.root().display())
    }
}
