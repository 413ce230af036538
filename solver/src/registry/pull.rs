//! Pulling an image: manifest (through an index for the wanted platform), config and layers
//! into the content store, then the tag. The manifest is stored last, so a tag only ever
//! points at a complete image.

use futures_util::{StreamExt, TryStreamExt};
use kiln_llb::{ImageConfig, Platform};
use oci_client::RegistryOperation;
use oci_spec::image::Digest;

use super::blobs::Session;
use super::retry::{Failure, retry};
use super::{Registry, RegistryError, client_ref};
use crate::image::manifest::{self, Document, Manifest};
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
    /// The platform the manifest is for (from the index entry, else from its config).
    pub platform: Option<Platform>,
    /// How many blobs were downloaded (the others were in the store already).
    pub downloaded: usize,
}

impl Registry {
    /// Pulls `reference` for `platform` into `store` and tags it there: an index is stored and
    /// tagged with the manifest chosen from it; a single-platform image is tagged for the
    /// platform its config names, beside what the name holds for other platforms.
    pub async fn pull(
        &self,
        store: &Store,
        reference: &str,
        platform: &Platform,
    ) -> Result<PulledImage, RegistryError> {
        let r = StoreRef::parse_normalized(reference)?.with_default_tag();
        let session = Session::open(self, &r, RegistryOperation::Pull).await?;
        let (bytes, digest) = fetch_manifest(&session, None).await?;
        let (index_digest, bytes, manifest_digest, manifest, listed_for) =
            match parse(&session, &bytes, &digest)? {
                Document::Index(index) => {
                    store_blob(&session, store, &bytes, &digest)?;
                    let entry =
                        index
                            .select(platform)
                            .map_err(|available| RegistryError::NoPlatform {
                                reference: session.display.clone(),
                                platform: platform.to_string(),
                                available,
                            })?;
                    if entry.is_index() {
                        return Err(invalid(
                            &session,
                            format!("nested index {} is not supported", entry.digest),
                        ));
                    }
                    let want = entry
                        .parsed_digest()
                        .map_err(|detail| invalid(&session, format!("index {digest}: {detail}")))?;
                    let (bytes, d) = fetch_manifest(&session, Some(&want)).await?;
                    let Document::Manifest(m) = parse(&session, &bytes, &d)? else {
                        return Err(invalid(
                            &session,
                            format!("index {digest} lists {d} as an image, but it is an index"),
                        ));
                    };
                    (Some(digest), bytes, d, m, Some(platform.clone()))
                }
                Document::Manifest(m) => (None, bytes, digest, m, None),
            };
        manifest
            .check_layers(&manifest_digest)
            .map_err(|e| invalid(&session, e.to_string()))?;
        let blobs = manifest
            .blobs()
            .map_err(|e| invalid(&session, format!("manifest {manifest_digest}: {e}")))?;
        let content = store.content();
        let sizes: std::collections::HashMap<&str, u64> = std::iter::once(&manifest.config)
            .chain(&manifest.layers)
            .map(|d| (d.digest.as_str(), d.size))
            .collect();
        if manifest.config.size > super::blobs::MAX_JSON {
            return Err(RegistryError::TooLarge {
                reference: session.display.clone(),
                what: format!("config {}", manifest.config.digest),
                limit: super::blobs::MAX_JSON,
            });
        }
        let missing: Vec<Digest> = blobs.into_iter().filter(|d| !content.contains(d)).collect();
        let downloaded = missing.len();
        let size_of = |d: &Digest| sizes.get(d.as_ref()).copied().unwrap_or(0);
        futures_util::stream::iter(
            missing
                .iter()
                .map(|d| session.fetch_blob(content, d, size_of(d))),
        )
        .buffer_unordered(PARALLEL_LAYERS)
        .try_collect::<Vec<()>>()
        .await?;
        store_blob(&session, store, &bytes, &manifest_digest)?;
        let _ = store.meta().blob_source_put_many(
            &missing.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            &r.repository(),
        );
        let platform_of = listed_for.or_else(|| config_platform(store, &manifest));
        let store_err = |e: crate::store::ImageError| RegistryError::Store {
            reference: session.display.clone(),
            detail: e.to_string(),
        };
        let tagged = match (r.tag(), &index_digest, &platform_of) {
            (None, _, _) => r.to_string(),
            (Some(_), Some(index), Some(p)) => store
                .images()
                .tag_index(&r.to_string(), index, p, &manifest_digest)
                .map_err(store_err)?,
            (Some(_), None, Some(p)) => store
                .images()
                .tag_image(&r.to_string(), &manifest_digest, p, true)
                .map_err(store_err)?,
            (Some(_), _, None) => store
                .images()
                .tag(&r.to_string(), &manifest_digest)
                .map_err(store_err)?,
        };
        Ok(PulledImage {
            reference: tagged,
            manifest_digest,
            platform: platform_of,
            downloaded,
        })
    }
}

/// The platform a (stored) config names, if it names one.
fn config_platform(store: &Store, manifest: &Manifest) -> Option<Platform> {
    let digest = manifest.config.parsed_digest().ok()?;
    let bytes = store.content().read_blob(&digest).ok()?;
    let config: ImageConfig = serde_json::from_slice(&bytes).ok()?;
    (!config.architecture.is_empty()).then(|| {
        let os = if config.os.is_empty() {
            "linux"
        } else {
            &config.os
        };
        Platform::new(os, &config.architecture, &config.variant)
    })
}

fn parse(session: &Session, bytes: &[u8], digest: &Digest) -> Result<Document, RegistryError> {
    manifest::parse(bytes, digest).map_err(|e| invalid(session, e.to_string()))
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
        let (bytes, announced) = session.get_manifest(&oref).await?;
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

fn invalid(session: &Session, detail: String) -> RegistryError {
    RegistryError::Invalid {
        reference: session.display.clone(),
        detail,
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
