//! Finding an image in the local store for a platform: by digest (`name@sha256:…`, a bare
//! `sha256:…`) or by name, through the manifest the name keeps for that platform or the
//! index it points at.

use kiln_llb::Platform;
use oci_spec::image::Digest;

use super::error::ResolveError;
use super::manifest::{self, Document};
use crate::store::{Reference, Store, parse_reference_digest};

/// Where the store stands on an image for a platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The manifest is in the store.
    Found {
        /// The image manifest.
        manifest: Digest,
        /// Whether an index (or the tag's per-platform record) vouches that it is for the
        /// platform; otherwise it is a single-platform image whose config decides.
        for_platform: bool,
        /// Whether the name came from a registry (a pull for another platform may help).
        pulled: bool,
    },
    /// The name or digest is known, but the manifest for this platform is not stored.
    Incomplete {
        /// What is missing.
        detail: String,
    },
    /// Nothing by that name or digest.
    Absent,
}

/// Looks `reference` up for `platform`.
pub fn lookup(store: &Store, reference: &str, platform: &Platform) -> Result<Lookup, ResolveError> {
    let store_err = |detail: String| ResolveError::Store {
        reference: reference.to_owned(),
        detail,
    };
    // `name@sha256:…` names that digest whatever the tag table says; a bare digest too.
    let pinned = match parse_reference_digest(reference) {
        Some(digest) => Some((digest, false)),
        None => Reference::parse_normalized(reference)
            .ok()
            .and_then(|r| r.digest().cloned())
            .map(|d| (d, true)),
    };
    let (top, pulled) = match pinned {
        Some(found) => found,
        None => {
            let Some(record) = store
                .images()
                .lookup(reference)
                .map_err(|e| store_err(e.to_string()))?
            else {
                return Ok(Lookup::Absent);
            };
            if let Some(manifest) = record.platforms.get(&platform.to_string())
                && store.content().contains(manifest)
            {
                return Ok(Lookup::Found {
                    manifest: manifest.clone(),
                    for_platform: true,
                    pulled: record.pulled,
                });
            }
            // A name pulled from an index finds the other platforms through the index.
            (record.index.unwrap_or(record.digest), record.pulled)
        }
    };
    if !store.content().contains(&top) {
        return Ok(Lookup::Absent);
    }
    let bytes = store
        .content()
        .read_blob(&top)
        .map_err(|e| store_err(e.to_string()))?;
    match manifest::parse(&bytes, &top).map_err(|source| ResolveError::Manifest {
        reference: reference.to_owned(),
        source,
    })? {
        Document::Manifest(_) => Ok(Lookup::Found {
            manifest: top,
            for_platform: false,
            pulled,
        }),
        Document::Index(index) => {
            let entry = index
                .select(platform)
                .map_err(|available| ResolveError::NoPlatform {
                    reference: reference.to_owned(),
                    wanted: platform.to_string(),
                    available,
                })?;
            let digest = entry.parsed_digest().map_err(store_err)?;
            if entry.is_index() {
                return Err(store_err(format!("nested index {digest} is not supported")));
            }
            if store.content().contains(&digest) {
                Ok(Lookup::Found {
                    manifest: digest,
                    for_platform: true,
                    pulled,
                })
            } else {
                Ok(Lookup::Incomplete {
                    detail: format!(
                        "index {top} lists manifest {digest} for {platform}, which is not in the store"
                    ),
                })
            }
        }
    }
}
