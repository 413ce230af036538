//! A cache artifact in a registry repository (`type=registry,ref=…`).

use std::sync::Arc;

use oci_client::RegistryOperation;
use oci_spec::image::Digest;

use super::{BlobFetcher, CacheConfig, ImportedCache, RemoteCacheError};
use crate::registry::{Manifest, Registry, RegistryError, Session, media};
use crate::store::{ContentStore, Reference, Store};

/// Imports the cache artifact at `reference`: its records now, its blobs when needed.
pub async fn import_registry(
    registry: &Registry,
    store: &Store,
    reference: &str,
) -> Result<ImportedCache, RegistryError> {
    let r = Reference::parse_normalized(reference)?.with_default_tag();
    let session = Session::open(registry, &r, RegistryOperation::Pull).await?;
    let (bytes, digest) = session.fetch_manifest(None).await?;
    let invalid = |detail: String| RegistryError::Invalid {
        reference: r.to_string(),
        detail,
    };
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(format!("cache manifest {digest}: {e}")))?;
    if manifest.config.media_type != super::CACHE_CONFIG_MEDIA_TYPE {
        let found = match manifest.config.media_type.as_str() {
            "" => "none",
            other => other,
        };
        return Err(invalid(format!(
            "{digest} is not a kiln cache (config media type {found})"
        )));
    }
    let config_digest: Digest = manifest
        .config
        .digest
        .parse()
        .map_err(|e| invalid(format!("config digest {}: {e}", manifest.config.digest)))?;
    let config = session
        .fetch_small_blob(store.content(), &config_digest, manifest.config.size)
        .await?;
    let config = CacheConfig::parse(&config).map_err(|e| invalid(e.to_string()))?;
    Ok(ImportedCache::new(
        config,
        Arc::new(RegistryFetcher {
            registry: registry.clone(),
            reference: r,
        }),
    ))
}

/// Pushes `config`'s layers and the artifact to `reference` (tag defaults to `latest`).
pub async fn export_registry(
    registry: &Registry,
    store: &Store,
    reference: &str,
    config: &CacheConfig,
) -> Result<Digest, RegistryError> {
    let r = Reference::parse_normalized(reference)?.with_default_tag();
    let store_err = |detail: String| RegistryError::Store {
        reference: r.to_string(),
        detail,
    };
    let session = Session::open(registry, &r, RegistryOperation::Push).await?;
    let config_bytes = config.to_bytes().map_err(|e| store_err(e.to_string()))?;
    let info = store
        .content()
        .put_bytes(&config_bytes)
        .map_err(|e| store_err(e.to_string()))?;
    let mut blobs = Vec::new();
    for rec in &config.records {
        let d = rec.layer.digest.clone();
        if !blobs.contains(&d) {
            blobs.push(d);
        }
    }
    blobs.push(info.digest.clone());
    session.push_blobs(store, &blobs).await?;
    let manifest = config
        .manifest(&info)
        .map_err(|e| store_err(e.to_string()))?;
    session
        .push_manifest(&manifest, media::OCI_MANIFEST, false)
        .await
}

/// Downloads an imported cache's blobs from its repository.
#[derive(Debug)]
struct RegistryFetcher {
    registry: Registry,
    reference: Reference,
}

impl BlobFetcher for RegistryFetcher {
    fn fetch(
        &self,
        content: &ContentStore,
        digest: &Digest,
        size: u64,
    ) -> Result<(), RemoteCacheError> {
        crate::registry::block_on(async {
            let session =
                Session::open(&self.registry, &self.reference, RegistryOperation::Pull).await?;
            session.fetch_blob(content, digest, size).await
        })??;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("cache {}", self.reference)
    }
}
