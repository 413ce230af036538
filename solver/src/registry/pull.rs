//! Pulling an image: manifest (through an index for the wanted platform), config and layers
//! into the content store, then the tag. The manifest is stored last, so a tag only ever
//! points at a complete image.

use futures_util::{StreamExt, TryStreamExt};
use kiln_llb::Platform;
use oci_client::RegistryOperation;
use oci_spec::image::Digest;
use serde::Deserialize;

use super::blobs::Session;
use super::manifest::Manifest;
use super::platform::{Index, select};
use super::retry::{Failure, retry};
use super::{Registry, RegistryError, client_ref, media};
use crate::store::{Reference as StoreRef, Store};

/// Layers downloaded at once.
const PARALLEL_LAYERS: usize = 3;

/// What a pull stored.
#[derive(Debug, Clone)]
pub struct PulledImage {
    /// The normalized reference that was tagged.
    pub reference: String,
    /// The image manifest's digest (for an index, the chosen platform's manifest).
    pub manifest_digest: Digest,
    /// How many blobs were downloaded (the others were in the store already).
    pub downloaded: usize,
}

impl Registry {
    /// Pulls `reference` for `platform` into `store` and tags it there.
    pub async fn pull(
        &self,
        store: &Store,
        reference: &str,
        platform: &Platform,
    ) -> Result<PulledImage, RegistryError> {
        let r = StoreRef::parse_normalized(reference)?.with_default_tag();
        let session = Session::open(self, &r, RegistryOperation::Pull).await?;
        let (bytes, digest) = fetch_manifest(&session, None).await?;
        let (bytes, manifest_digest) = match manifest_kind(&bytes) {
            Kind::Index => {
                store_blob(&session, store, &bytes, &digest)?;
                let index: Index = serde_json::from_slice(&bytes)
                    .map_err(|e| invalid(&session, format!("index {digest}: {e}")))?;
                let entry =
                    select(&index, platform).map_err(|available| RegistryError::NoPlatform {
                        reference: session.display.clone(),
                        platform: describe(platform),
                        available,
                    })?;
                if entry.media_type == media::OCI_INDEX || entry.media_type == media::DOCKER_LIST {
                    return Err(invalid(
                        &session,
                        format!("nested index {} is not supported", entry.digest),
                    ));
                }
                let want = parse_digest(&session, &entry.digest)?;
                let (bytes, d) = fetch_manifest(&session, Some(&want)).await?;
                (bytes, d)
            }
            Kind::Manifest => (bytes, digest),
        };
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| invalid(&session, format!("manifest {manifest_digest}: {e}")))?;
        if let Some(mt) = &manifest.media_type
            && mt != media::OCI_MANIFEST
            && mt != media::DOCKER_MANIFEST
        {
            return Err(invalid(
                &session,
                format!("manifest {manifest_digest} has media type {mt}, not an image manifest"),
            ));
        }
        let blobs = manifest
            .blobs()
            .map_err(|e| invalid(&session, format!("manifest {manifest_digest}: {e}")))?;
        let content = store.content();
        let missing: Vec<Digest> = blobs.into_iter().filter(|d| !content.contains(d)).collect();
        let downloaded = missing.len();
        futures_util::stream::iter(missing.iter().map(|d| session.fetch_blob(content, d)))
            .buffer_unordered(PARALLEL_LAYERS)
            .try_collect::<Vec<()>>()
            .await?;
        store_blob(&session, store, &bytes, &manifest_digest)?;
        let _ = store.meta().blob_source_put_many(
            &missing.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            &r.repository(),
        );
        let tagged = match r.tag() {
            Some(_) => store
                .images()
                .tag(&r.to_string(), &manifest_digest)
                .map_err(|e| RegistryError::Store {
                    reference: session.display.clone(),
                    detail: e.to_string(),
                })?,
            None => r.to_string(),
        };
        Ok(PulledImage {
            reference: tagged,
            manifest_digest,
            downloaded,
        })
    }
}

enum Kind {
    Index,
    Manifest,
}

fn manifest_kind(bytes: &[u8]) -> Kind {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType", default)]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Probe>(bytes) {
        Ok(p)
            if p.media_type.as_deref() == Some(media::OCI_INDEX)
                || p.media_type.as_deref() == Some(media::DOCKER_LIST)
                || (p.media_type.is_none() && p.manifests.is_some()) =>
        {
            Kind::Index
        }
        _ => Kind::Manifest,
    }
}

/// Fetches the manifest the session's reference names (or `digest`), and checks its bytes
/// hash to the digest asked for or announced.
pub(crate) async fn fetch_manifest(
    session: &Session,
    digest: Option<&Digest>,
) -> Result<(Vec<u8>, Digest), RegistryError> {
    let oref = client_ref(&session.reference, digest.map(|d| d.as_ref()));
    let want = digest.or(session.reference.digest()).cloned();
    let what = format!(
        "manifest {}",
        want.as_ref()
            .map_or_else(|| session.display.clone(), |d| d.to_string())
    );
    retry(&session.display, &what, || async {
        let (bytes, announced) = session
            .clients
            .chunked
            .pull_manifest_raw(&oref, &session.auth, media::ACCEPTED)
            .await
            .map_err(|e| session.failure(e))?;
        let actual = crate::store::sha256_digest(&bytes).map_err(|e| {
            Failure::Fatal(RegistryError::Store {
                reference: session.display.clone(),
                detail: e.to_string(),
            })
        })?;
        let expected = match &want {
            Some(d) => Some(d.to_string()),
            None => announced.starts_with("sha256:").then_some(announced),
        };
        if let Some(expected) = expected
            && expected != actual.to_string()
        {
            return Err(Failure::Transient(format!(
                "{what}: content hashes to {actual}, expected {expected}"
            )));
        }
        if serde_json::from_slice::<serde_json::Value>(&bytes).is_err() {
            return Err(Failure::Transient(format!("{what}: not valid JSON")));
        }
        Ok((bytes.to_vec(), actual))
    })
    .await
}

fn store_blob(
    session: &Session,
    store: &Store,
    bytes: &[u8],
    digest: &Digest,
) -> Result<(), RegistryError> {
    let info = store
        .content()
        .put_bytes(bytes)
        .map_err(|e| RegistryError::Store {
            reference: session.display.clone(),
            detail: e.to_string(),
        })?;
    if &info.digest != digest {
        return Err(invalid(
            session,
            format!("stored {} but expected {digest}", info.digest),
        ));
    }
    Ok(())
}

fn parse_digest(session: &Session, s: &str) -> Result<Digest, RegistryError> {
    s.parse::<Digest>()
        .map_err(|e| invalid(session, format!("bad digest {s:?}: {e}")))
}

fn invalid(session: &Session, detail: String) -> RegistryError {
    RegistryError::Invalid {
        reference: session.display.clone(),
        detail,
    }
}

fn describe(p: &Platform) -> String {
    if p.variant.is_empty() {
        format!("{}/{}", p.os, p.architecture)
    } else {
        format!("{}/{}/{}", p.os, p.architecture, p.variant)
    }
}

impl Session {
    /// The manifest the session's reference names (or `digest`), verified, and its digest.
    pub async fn fetch_manifest(
        &self,
        digest: Option<&Digest>,
    ) -> Result<(Vec<u8>, Digest), RegistryError> {
        fetch_manifest(self, digest).await
    }
}
