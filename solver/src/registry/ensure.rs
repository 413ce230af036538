//! Pull on demand: a base image is pulled when the store lacks its manifest for the platform
//! wanted — absent, an index entry not fetched yet, or a pulled single-platform image for
//! another platform (the registry may hold the right one now) — or always, with `--pull`.

use kiln_llb::Platform;

use super::{PulledImage, Registry, RegistryError};
use crate::image::{self, Lookup};
use crate::store::{Store, parse_reference_digest};

impl Registry {
    /// Makes sure `store` holds `reference` for `platform`, pulling it when it does not (or
    /// always, with `always_pull`); `None` when the store already had it. A bare digest
    /// cannot be pulled: what the store lacks, the resolution after this reports.
    pub async fn ensure_image(
        &self,
        store: &Store,
        reference: &str,
        platform: &Platform,
        always_pull: bool,
    ) -> Result<Option<PulledImage>, RegistryError> {
        if parse_reference_digest(reference).is_some() {
            return Ok(None);
        }
        let local = image::lookup(store, reference, platform);
        let wanted = always_pull
            || match &local {
                Ok(Lookup::Found {
                    manifest,
                    for_platform: false,
                    pulled: true,
                }) => !serves(store, reference, manifest, platform),
                Ok(Lookup::Found { .. }) => false,
                Ok(Lookup::Incomplete { .. } | Lookup::Absent) | Err(_) => true,
            };
        if !wanted {
            return Ok(None);
        }
        match self.pull(store, reference, platform).await {
            Ok(pulled) => Ok(Some(pulled)),
            // A local single-platform image stays usable when the registry cannot be asked
            // for a better one; the resolution says which platform it is for.
            Err(_) if matches!(local, Ok(Lookup::Found { .. })) && !always_pull => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Whether the single-platform image `manifest` serves `platform`, by its config.
fn serves(
    store: &Store,
    reference: &str,
    manifest: &oci_spec::image::Digest,
    platform: &Platform,
) -> bool {
    image::from_manifest(store, reference, manifest.clone(), platform, false)
        .is_ok_and(|r| r.warning.is_none())
}
