//! Pushing an image from the store: blobs first (skipped when the repository has them,
//! mounted from the repository they were pulled from when it is on the same registry), the
//! manifest last.

use futures_util::{StreamExt, TryStreamExt};
use oci_client::RegistryOperation;
use oci_spec::image::Digest;

use super::blobs::Session;
use super::retry::retry;
use super::{Registry, RegistryError, client_ref, media};
use crate::image::manifest::Manifest;
use crate::store::{Reference as StoreRef, Store};

const PARALLEL_BLOBS: usize = 3;

/// What a push sent.
#[derive(Debug, Clone)]
pub struct PushedImage {
    /// The normalized destination reference.
    pub reference: String,
    /// The manifest digest the registry now serves.
    pub digest: Digest,
}

impl Registry {
    /// Pushes the image with manifest `manifest_digest` from `store` to `destination`.
    pub async fn push(
        &self,
        store: &Store,
        manifest_digest: &Digest,
        destination: &str,
    ) -> Result<PushedImage, RegistryError> {
        let dest = StoreRef::parse_normalized(destination)?.with_default_tag();
        let session = Session::open(self, &dest, RegistryOperation::Push).await?;
        let store_err = |detail: String| RegistryError::Store {
            reference: dest.to_string(),
            detail,
        };
        let bytes = store
            .content()
            .read_blob(manifest_digest)
            .map_err(|e| store_err(e.to_string()))?;
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| store_err(format!("manifest {manifest_digest}: {e}")))?;
        let blobs = manifest
            .blobs()
            .map_err(|e| store_err(format!("manifest {manifest_digest}: {e}")))?;
        session.push_blobs(store, &blobs).await?;
        let media_type = manifest
            .media_type
            .as_deref()
            .unwrap_or(media::OCI_MANIFEST);
        let digest = session.push_manifest(&bytes, media_type, None).await?;
        Ok(PushedImage {
            reference: dest.to_string(),
            digest,
        })
    }
}

impl Session {
    /// Pushes `blobs` from the store (a few at a time), mounting where the store knows a
    /// source repository on this registry.
    pub async fn push_blobs(&self, store: &Store, blobs: &[Digest]) -> Result<(), RegistryError> {
        let content = store.content();
        let sources: Vec<Option<StoreRef>> = blobs
            .iter()
            .map(|d| {
                store
                    .meta()
                    .blob_source(d.as_ref())
                    .ok()
                    .flatten()
                    .and_then(|repo| StoreRef::parse_normalized(&repo).ok())
                    .filter(|r| r.repository() != self.reference.repository())
            })
            .collect();
        futures_util::stream::iter(
            blobs
                .iter()
                .zip(&sources)
                .map(|(d, src)| self.push_blob(content, d, src.as_ref())),
        )
        .buffer_unordered(PARALLEL_BLOBS)
        .try_collect::<Vec<()>>()
        .await?;
        Ok(())
    }

    /// Pushes manifest `bytes` under the session's tag (or `tag`), returning its digest.
    pub async fn push_manifest(
        &self,
        bytes: &[u8],
        media_type: &str,
        tag: Option<&str>,
    ) -> Result<Digest, RegistryError> {
        let digest = crate::store::sha256_digest(bytes).map_err(|e| RegistryError::Store {
            reference: self.display.clone(),
            detail: e.to_string(),
        })?;
        let mut target = self.reference.clone();
        if let Some(tag) = tag {
            target = StoreRef::parse_normalized(&format!("{}:{tag}", target.repository()))?;
        }
        let oref = client_ref(&target, None);
        let oref = if target.tag().is_none() {
            client_ref(&target, Some(digest.as_ref()))
        } else {
            oref
        };
        let content_type =
            media_type
                .parse::<http::HeaderValue>()
                .map_err(|e| RegistryError::Invalid {
                    reference: self.display.clone(),
                    detail: format!("media type {media_type:?}: {e}"),
                })?;
        let body = bytes::Bytes::copy_from_slice(bytes);
        retry(&self.display, &format!("manifest {digest}"), || async {
            self.clients
                .chunked
                .push_manifest_raw(&oref, body.clone(), content_type.clone())
                .await
                .map(|_| ())
                .map_err(|e| self.failure(e))
        })
        .await?;
        Ok(digest)
    }
}
