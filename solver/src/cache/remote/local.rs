//! A cache artifact in an OCI layout directory (`type=local,dest=DIR` / `src=DIR`).

use std::path::Path;
use std::sync::Arc;

use oci_spec::image::Digest;

use super::{BlobFetcher, CACHE_CONFIG_MEDIA_TYPE, CacheConfig, ImportedCache, RemoteCacheError};
use crate::export::{oci_layout_bytes, place_blob, write_atomic};
use crate::image::layout::LayoutDir;
use crate::store::{ContentStore, Store};

/// Writes `config`'s layers and the artifact into the OCI layout at `dir` (created if
/// needed); `index.json` is replaced atomically and names the cache `latest`.
pub fn export_local(
    store: &Store,
    dir: &Path,
    config: &CacheConfig,
) -> Result<Digest, RemoteCacheError> {
    let config_bytes = config.to_bytes()?;
    let info = store.content().put_bytes(&config_bytes)?;
    let mut blobs = vec![(info.digest.clone(), info.size)];
    for rec in &config.records {
        let d = rec.layer.digest.clone();
        if !blobs.iter().any(|(b, _)| *b == d) {
            blobs.push((d, rec.layer.size));
        }
    }
    for (d, size) in &blobs {
        place_blob(store.content(), d, *size, dir)?;
    }
    let manifest = config.manifest(&info)?;
    let manifest_digest = crate::store::sha256_digest(&manifest)?;
    let layout = LayoutDir::new(dir);
    let manifest_path = layout.blob_path(&manifest_digest)?;
    write_atomic(&manifest_path, &manifest)?;
    write_atomic(&dir.join("oci-layout"), &oci_layout_bytes())?;
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
    let index = serde_json::to_vec_pretty(&index).map_err(RemoteCacheError::json("index.json"))?;
    write_atomic(&dir.join("index.json"), &index)?;
    Ok(manifest_digest)
}

/// Imports the cache artifact of the OCI layout at `dir`.
pub fn import_local(dir: &Path) -> Result<ImportedCache, RemoteCacheError> {
    let index_path = dir.join("index.json");
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&index_path)
            .map_err(RemoteCacheError::io(index_path.display().to_string()))?,
    )
    .map_err(RemoteCacheError::json(index_path.display().to_string()))?;
    let entries = index["manifests"].as_array().cloned().unwrap_or_default();
    let layout = LayoutDir::new(dir);
    for entry in entries {
        let Some(digest) = entry["digest"]
            .as_str()
            .and_then(|d| d.parse::<Digest>().ok())
        else {
            continue;
        };
        let manifest = layout.read_json_blob(&digest, entry["size"].as_u64())?;
        let manifest: serde_json::Value = serde_json::from_slice(&manifest)
            .map_err(RemoteCacheError::json(format!("manifest {digest}")))?;
        if manifest["config"]["mediaType"].as_str() != Some(CACHE_CONFIG_MEDIA_TYPE) {
            continue;
        }
        let config_digest = manifest["config"]["digest"]
            .as_str()
            .and_then(|d| d.parse::<Digest>().ok())
            .ok_or_else(|| RemoteCacheError::Invalid {
                what: format!("manifest {digest}"),
                reason: "no config digest".into(),
            })?;
        let config = layout.read_json_blob(&config_digest, manifest["config"]["size"].as_u64())?;
        let config = CacheConfig::parse(&config)?;
        return Ok(ImportedCache::new(
            config,
            Arc::new(LocalFetcher { layout }),
        ));
    }
    Err(RemoteCacheError::Invalid {
        what: index_path.display().to_string(),
        reason: "no kiln cache in this OCI layout".into(),
    })
}

/// Copies blobs out of an OCI layout directory, verified through the content store.
#[derive(Debug)]
struct LocalFetcher {
    layout: LayoutDir,
}

impl BlobFetcher for LocalFetcher {
    fn fetch(
        &self,
        content: &ContentStore,
        digest: &Digest,
        size: u64,
    ) -> Result<(), RemoteCacheError> {
        let (file, len, path) = self.layout.open_blob(digest)?;
        if len != size {
            return Err(RemoteCacheError::Invalid {
                what: path.display().to_string(),
                reason: format!("{len} bytes where the cache record says {size}"),
            });
        }
        let mut ingest = content.ingest()?;
        // Bounded by the record's size even if the file grows meanwhile.
        std::io::copy(&mut std::io::Read::take(file, size), &mut ingest)
            .map_err(RemoteCacheError::io(path.display().to_string()))?;
        ingest.commit(Some(digest))?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("cache {}", self.layout.root().display())
    }
}
