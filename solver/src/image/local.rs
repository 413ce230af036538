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
            let digest = entry
                .parsed_digest()
                .map_err(|e| store_err(e.to_string()))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_dir::TestDir;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    /// A manifest blob (content is all that matters to the lookup).
    fn manifest(store: &Store, label: &str) -> Digest {
        let doc = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"digest":"sha256:{}","size":1}},"layers":[],"annotations":{{"l":"{label}"}}}}"#,
            "0".repeat(64)
        );
        store.content().put_bytes(doc.as_bytes()).unwrap().digest
    }

    fn index(store: &Store, entries: &[(&Digest, &str)]) -> Digest {
        let manifests: Vec<serde_json::Value> = entries
            .iter()
            .map(|(d, platform)| {
                let p = Platform::parse(platform).unwrap();
                serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": d.to_string(), "size": 1,
                    "platform": {"os": p.os, "architecture": p.architecture}})
            })
            .collect();
        let doc = serde_json::json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
        store
            .content()
            .put_bytes(doc.to_string().as_bytes())
            .unwrap()
            .digest
    }

    fn found(l: Lookup) -> Digest {
        match l {
            Lookup::Found { manifest, .. } => manifest,
            other => panic!("not found: {other:?}"),
        }
    }

    #[test]
    fn one_image_per_name_and_platform() {
        let dir = TestDir::new("lookup-platforms");
        let store = Store::open(dir.path()).unwrap();
        let (amd, arm) = (p("linux/amd64"), p("linux/arm64"));
        let built_amd = manifest(&store, "built amd64");
        let built_arm = manifest(&store, "built arm64");
        store
            .images()
            .tag_image("app", &built_amd, &amd, false)
            .unwrap();
        store
            .images()
            .tag_image("app", &built_arm, &arm, false)
            .unwrap();
        assert_eq!(found(lookup(&store, "app", &amd).unwrap()), built_amd);
        assert_eq!(found(lookup(&store, "app", &arm).unwrap()), built_arm);
        // The name shows the last one built.
        assert_eq!(
            store.images().resolve("app").unwrap(),
            Some(built_arm.clone())
        );
        // A platform it was never built for: the single-platform image, for its config to judge.
        let Lookup::Found { for_platform, .. } = lookup(&store, "app", &p("linux/s390x")).unwrap()
        else {
            panic!()
        };
        assert!(!for_platform);
        assert_eq!(lookup(&store, "other", &amd).unwrap(), Lookup::Absent);
    }

    #[test]
    fn a_pulled_index_answers_for_its_platforms() {
        let dir = TestDir::new("lookup-index");
        let store = Store::open(dir.path()).unwrap();
        let (amd, arm) = (p("linux/amd64"), p("linux/arm64"));
        let m_amd = manifest(&store, "amd64");
        let arm_digest = crate::store::sha256_digest(b"not pulled yet").unwrap();
        let idx = index(
            &store,
            &[(&m_amd, "linux/amd64"), (&arm_digest, "linux/arm64")],
        );
        store
            .images()
            .tag_index("busybox", &idx, &amd, &m_amd)
            .unwrap();
        assert_eq!(found(lookup(&store, "busybox", &amd).unwrap()), m_amd);
        assert!(matches!(
            lookup(&store, "busybox", &arm).unwrap(),
            Lookup::Incomplete { .. }
        ));
        assert!(matches!(
            lookup(&store, "busybox", &p("linux/s390x")),
            Err(ResolveError::NoPlatform { .. })
        ));
        // By digest: the index, or the manifest itself, whatever the tags say.
        let pinned = format!("docker.io/library/busybox@{idx}");
        assert_eq!(found(lookup(&store, &pinned, &amd).unwrap()), m_amd);
        assert_eq!(found(lookup(&store, m_amd.as_ref(), &arm).unwrap()), m_amd);
        let absent = crate::store::sha256_digest(b"absent").unwrap();
        assert_eq!(
            lookup(&store, &format!("x@{absent}"), &amd).unwrap(),
            Lookup::Absent
        );
    }
}
