//! Pushing an image from the store: blobs first (skipped when the repository has them,
//! mounted from the repository they were pulled from when it is on the same registry), the
//! manifest last.

use futures_util::{StreamExt, TryStreamExt};
use oci_client::RegistryOperation;
use oci_spec::image::Digest;

use super::blobs::Session;
use super::retry::retry;
use super::{Registry, RegistryError, client_ref, media};
use crate::image::manifest::{self, Document, Manifest};
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
    /// Pushes the image with manifest `manifest_digest` from `store` to `destination`; a
    /// multi-platform index is pushed after each of its manifests (by digest), so the
    /// registry never serves an index naming a manifest it lacks.
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
        let digest =
            match manifest::parse(&bytes, manifest_digest).map_err(|e| store_err(e.to_string()))? {
                Document::Manifest(_) => {
                    session
                        .push_image(store, manifest_digest, &bytes, false)
                        .await?
                }
                Document::Index(index) => {
                    for entry in &index.manifests {
                        let child = entry
                            .parsed_digest()
                            .map_err(|e| store_err(format!("index {manifest_digest}: {e}")))?;
                        let child_bytes = store
                            .content()
                            .read_blob(&child)
                            .map_err(|e| store_err(e.to_string()))?;
                        session
                            .push_image(store, &child, &child_bytes, true)
                            .await?;
                    }
                    let media_type = index.media_type.as_deref().unwrap_or(media::OCI_INDEX);
                    session.push_manifest(&bytes, media_type, false).await?
                }
            };
        Ok(PushedImage {
            reference: dest.to_string(),
            digest,
        })
    }
}

impl Session {
    /// Pushes one image manifest's blobs, then the manifest (under the session's tag, or
    /// `by_digest`).
    async fn push_image(
        &self,
        store: &Store,
        digest: &Digest,
        bytes: &[u8],
        by_digest: bool,
    ) -> Result<Digest, RegistryError> {
        let store_err = |detail: String| RegistryError::Store {
            reference: self.display.clone(),
            detail,
        };
        let manifest: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| store_err(format!("manifest {digest}: {e}")))?;
        let blobs = manifest
            .blobs()
            .map_err(|e| store_err(format!("manifest {digest}: {e}")))?;
        self.push_blobs(store, &blobs).await?;
        let media_type = manifest
            .media_type
            .as_deref()
            .unwrap_or(media::OCI_MANIFEST);
        self.push_manifest(bytes, media_type, by_digest).await
    }

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

    /// Pushes manifest `bytes` under the session's tag (or by its digest: `by_digest`, or
    /// when the session names none), returning its digest.
    pub async fn push_manifest(
        &self,
        bytes: &[u8],
        media_type: &str,
        by_digest: bool,
    ) -> Result<Digest, RegistryError> {
        let digest = crate::store::sha256_digest(bytes).map_err(|e| RegistryError::Store {
            reference: self.display.clone(),
            detail: e.to_string(),
        })?;
        let target = &self.reference;
        let oref = if by_digest || target.tag().is_none() {
            client_ref(target, Some(digest.as_ref()))
        } else {
            client_ref(target, None)
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
