//! Moving single blobs: download into the content store (verified while streaming), upload
//! from it (skipped when present, mounted across repositories when possible, chunked with a
//! monolithic fallback).

use std::io::{Read, Write};

use futures_util::StreamExt;
use oci_client::RegistryOperation;
use oci_client::secrets::RegistryAuth;
use oci_spec::image::Digest;

use super::retry::{Failure, retry};
use super::{Clients, Registry, RegistryError, client_ref};
use crate::store::ContentStore;
use crate::store::Reference as StoreRef;

/// Upload piece size: big enough to keep request overhead small, small enough to stream.
const UPLOAD_PIECE: usize = 4 * 1024 * 1024;

/// The most of a manifest, an index or a config kiln reads (containerd's bound): these are
/// read whole into memory, so a hostile registry must not choose how much.
pub(crate) const MAX_JSON: u64 = 4 * 1024 * 1024;

/// One authenticated conversation with a repository.
pub struct Session {
    pub(crate) reference: StoreRef,
    pub(crate) clients: Clients,
    pub(crate) auth: RegistryAuth,
    /// The bearer token oci-client obtained, for requests kiln makes itself.
    pub(crate) token: Option<String>,
    pub(crate) display: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("reference", &self.display)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Authenticates for `op` on `reference`'s repository.
    pub async fn open(
        registry: &Registry,
        reference: &StoreRef,
        op: RegistryOperation,
    ) -> Result<Self, RegistryError> {
        let clients = registry.clients(reference.domain());
        let auth = registry.auth_for(reference)?;
        let display = reference.to_string();
        let domain = reference.domain().to_owned();
        let oref = client_ref(reference, None);
        let token = retry(&display, "authentication", || async {
            clients
                .chunked
                .auth(&oref, &auth, op)
                .await
                .map_err(|e| Failure::from_oci(&display, &domain, e))
        })
        .await?;
        Ok(Self {
            reference: reference.clone(),
            clients,
            auth,
            token,
            display,
        })
    }

    pub(crate) fn failure(&self, e: oci_client::errors::OciDistributionError) -> Failure {
        Failure::from_oci(&self.display, self.reference.domain(), e)
    }

    fn store_failure(&self, detail: String) -> Failure {
        Failure::Fatal(RegistryError::Store {
            reference: self.display.clone(),
            detail,
        })
    }

    /// Downloads blob `digest` (of `size` bytes, as its descriptor says) into `content`
    /// unless it is there; the stored blob always hashes to `digest`, and no more than `size`
    /// bytes are ever read, whatever the registry sends.
    pub async fn fetch_blob(
        &self,
        content: &ContentStore,
        digest: &Digest,
        size: u64,
    ) -> Result<(), RegistryError> {
        if content.contains(digest) {
            return Ok(());
        }
        let oref = client_ref(&self.reference, None);
        let what = format!("blob {digest}");
        retry(&self.display, &what, || async {
            let mut stream = self
                .clients
                .chunked
                .pull_blob_stream(&oref, digest.as_ref())
                .await
                .map_err(|e| self.failure(e))?;
            let mut ingest = content
                .ingest()
                .map_err(|e| self.store_failure(e.to_string()))?;
            let mut received = 0u64;
            while let Some(chunk) = stream.next().await {
                if crate::cancel::is_cancelled() {
                    return Err(Failure::Fatal(RegistryError::Cancelled {
                        reference: self.display.clone(),
                    }));
                }
                let chunk = chunk.map_err(|e| Failure::Transient(format!("{what}: {e}")))?;
                received += chunk.len() as u64;
                if received > size {
                    // An endless or oversized body: stop here, the partial file goes with
                    // the dropped ingest.
                    return Err(Failure::Transient(format!(
                        "{what}: the registry sent more than the {size} bytes its descriptor announces"
                    )));
                }
                ingest.write_all(&chunk).map_err(|e| {
                    self.store_failure(format!("{}: {e}", ingest.temp_path().display()))
                })?;
            }
            match ingest.commit(Some(digest)) {
                Ok(_) => Ok(()),
                // A short or altered body: the temp file is gone; try the transfer again.
                Err(crate::store::ContentError::DigestMismatch { .. }) => Err(Failure::Transient(
                    format!("{what}: downloaded content does not match the digest"),
                )),
                Err(e) => Err(self.store_failure(e.to_string())),
            }
        })
        .await
    }

    /// Reads a small blob (a config) of `size` bytes into memory, verified against
    /// `digest`; one over [`MAX_JSON`] is refused before anything is read.
    pub async fn fetch_small_blob(
        &self,
        content: &ContentStore,
        digest: &Digest,
        size: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        if size > MAX_JSON {
            return Err(RegistryError::TooLarge {
                reference: self.display.clone(),
                what: format!("config {digest}"),
                limit: MAX_JSON,
            });
        }
        self.fetch_blob(content, digest, size).await?;
        content.read_blob(digest).map_err(|e| RegistryError::Store {
            reference: self.display.clone(),
            detail: e.to_string(),
        })
    }

    /// Uploads blob `digest` from `content` unless the repository has it; `mount_from` names
    /// another repository of the same registry that may hold it.
    pub(crate) async fn push_blob(
        &self,
        content: &ContentStore,
        digest: &Digest,
        mount_from: Option<&StoreRef>,
    ) -> Result<(), RegistryError> {
        let oref = client_ref(&self.reference, None);
        let what = format!("blob {digest}");
        let exists = retry(&self.display, &what, || async {
            self.clients
                .chunked
                .blob_exists(&oref, digest.as_ref())
                .await
                .map_err(|e| self.failure(e))
        })
        .await?;
        if exists {
            return Ok(());
        }
        if let Some(source) = mount_from.filter(|s| s.domain() == self.reference.domain()) {
            let sref = client_ref(source, None);
            // 201 means mounted; anything else (202 opens an upload, a 404) means upload it.
            if self
                .clients
                .chunked
                .mount_blob(&oref, &sref, digest.as_ref())
                .await
                .is_ok()
            {
                return Ok(());
            }
        }
        let path = content.blob_path(digest);
        let size = content.size(digest).map_err(|e| RegistryError::Store {
            reference: self.display.clone(),
            detail: e.to_string(),
        })?;
        // Some registries refuse chunked uploads: after one refusal, send it in one request.
        let chunked = std::cell::Cell::new(true);
        retry(&self.display, &what, || {
            let use_chunked = chunked.get();
            let path = path.clone();
            let oref = oref.clone();
            let chunked = &chunked;
            async move {
                let stream = file_stream(&path).map_err(|e| self.store_failure(e))?;
                let client = if use_chunked {
                    self.clients.chunked.clone()
                } else {
                    self.clients
                        .monolithic(&oref, &self.auth, RegistryOperation::Push)
                        .await
                        .map_err(|e| self.failure(e))?
                };
                match client
                    .push_blob_stream(&oref, stream, digest.as_ref(), Some(size))
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(oci_client::errors::OciDistributionError::SpecViolationError(m))
                        if use_chunked =>
                    {
                        chunked.set(false);
                        Err(Failure::Transient(format!(
                            "chunked upload refused ({m}); retrying as one request"
                        )))
                    }
                    Err(e) => Err(self.failure(e)),
                }
            }
        })
        .await
    }
}

/// A file as a stream of pieces, read lazily so a layer is never held whole in memory.
fn file_stream(
    path: &std::path::Path,
) -> Result<
    impl futures_util::Stream<Item = oci_client::errors::Result<bytes::Bytes>> + Send + 'static,
    String,
> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(futures_util::stream::unfold(
        Some(file),
        |state| async move {
            let mut file = state?;
            let mut buf = vec![0u8; UPLOAD_PIECE];
            let mut filled = 0;
            while filled < buf.len() {
                match file.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) => return Some((Err(e.into()), None)),
                }
            }
            if filled == 0 {
                return None;
            }
            buf.truncate(filled);
            Some((Ok(bytes::Bytes::from(buf)), Some(file)))
        },
    ))
}
