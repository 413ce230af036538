//! Image tags: normalized reference → manifest (or index) digest, kept in the `images` table,
//! with the manifest kept per platform: one image per (name, platform).
//!
//! A tag points at what `kiln images`, `push` and `inspect` show: the last image built or
//! pulled under the name (for a multi-platform pull, the manifest chosen for the platform).
//! Beside it, the tag remembers the manifest of each platform the name was built or pulled
//! for, and the index a pull came from, so that building `app` for arm64 does not lose the
//! amd64 `app`, and `FROM app` on each platform finds its own (or, from the index, what to
//! pull). The manifests themselves live in the content store; a tag is only accepted
//! for a manifest that is already there, so a tag never points at nothing.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kiln_llb::Platform;
use oci_spec::image::Digest;
use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::content::{ContentStore, parse_digest};
use super::meta::{MetaDb, MetaError, TxnError};
use super::reference::{Reference, ReferenceError, parse_reference_digest};
use super::tables::IMAGES;

/// What went wrong with an image tag; each variant names the reference involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The reference does not parse.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// The metadata database failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// No image is tagged with this reference.
    #[error("no such image: {reference}")]
    UnknownReference {
        /// The normalized reference.
        reference: String,
    },
    /// Tagging a manifest that is not in the content store.
    #[error("cannot tag {reference}: manifest {digest} is not in the content store")]
    ManifestMissing {
        /// The normalized reference.
        reference: String,
        /// The missing manifest.
        digest: Digest,
    },
    /// A reference with a digest can only name that digest.
    #[error("cannot tag {reference} with manifest {digest}: the reference pins another digest")]
    DigestConflict {
        /// The normalized reference.
        reference: String,
        /// The manifest the caller tried to tag.
        digest: Digest,
    },
}

/// One tagged image as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    /// The normalized reference (`docker.io/library/busybox:latest`).
    pub reference: String,
    /// The manifest digest it points at.
    pub digest: Digest,
    /// When the reference was first pointed at this digest.
    pub created: SystemTime,
    /// The manifest kept for each platform (`linux/arm64` → manifest), besides `digest`.
    pub platforms: BTreeMap<String, Digest>,
    /// The index the name was pulled from, which lists the other platforms.
    pub index: Option<Digest>,
    /// Whether the name came from a registry (kiln may pull it again for another platform).
    pub pulled: bool,
}

/// The stored value; fields in alphabetical order so serde_json writes canonical JSON. Tags
/// written before platforms were kept read as having none.
#[derive(Debug, Default, Serialize, Deserialize)]
struct StoredTag {
    /// Seconds since the Unix epoch.
    created: u64,
    digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    index: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    platforms: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pulled: bool,
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// How a tag is being set.
#[derive(Debug, Clone, Copy)]
enum TagKind<'a> {
    /// `kiln tag`, an import: the name now means this digest, nothing else.
    Plain,
    /// A single-platform image built or pulled for `platform`: the other platforms the name
    /// holds are kept.
    Image {
        platform: &'a Platform,
        pulled: bool,
    },
    /// A multi-platform build: the name means the index (`digest`), which names each
    /// platform's manifest.
    Built { platforms: &'a [(Platform, Digest)] },
    /// The manifest chosen for `platform` from a pulled `index`.
    Index {
        platform: &'a Platform,
        index: &'a Digest,
    },
}

/// Tags over the content store and the metadata database.
#[derive(Debug, Clone)]
pub struct ImageStore {
    content: ContentStore,
    meta: MetaDb,
}

impl ImageStore {
    /// An image store over these two.
    pub fn new(content: ContentStore, meta: MetaDb) -> Self {
        Self { content, meta }
    }

    /// Points `reference` at `manifest_digest` (the manifest must be in the content store)
    /// and returns the normalized reference.
    pub fn tag(&self, reference: &str, manifest_digest: &Digest) -> Result<String, ImageError> {
        self.put(reference, manifest_digest, TagKind::Plain)
    }

    /// Tags a single-platform image built (or pulled, `pulled`) for `platform`, keeping what
    /// the name holds for other platforms.
    pub fn tag_image(
        &self,
        reference: &str,
        manifest: &Digest,
        platform: &Platform,
        pulled: bool,
    ) -> Result<String, ImageError> {
        self.put(reference, manifest, TagKind::Image { platform, pulled })
    }

    /// Tags the manifest chosen for `platform` from a pulled index, remembering the index.
    pub fn tag_index(
        &self,
        reference: &str,
        index: &Digest,
        platform: &Platform,
        manifest: &Digest,
    ) -> Result<String, ImageError> {
        if !self.content.contains(index) {
            return Err(ImageError::ManifestMissing {
                reference: reference.to_owned(),
                digest: index.clone(),
            });
        }
        self.put(reference, manifest, TagKind::Index { platform, index })
    }

    /// Tags a multi-platform build's `index`, with the manifest of each of its platforms
    /// (each must be in the content store), replacing what the name held.
    pub fn tag_built_index(
        &self,
        reference: &str,
        index: &Digest,
        platforms: &[(Platform, Digest)],
    ) -> Result<String, ImageError> {
        if let Some((_, missing)) = platforms.iter().find(|(_, d)| !self.content.contains(d)) {
            return Err(ImageError::ManifestMissing {
                reference: reference.to_owned(),
                digest: missing.clone(),
            });
        }
        self.put(reference, index, TagKind::Built { platforms })
    }

    fn put(
        &self,
        reference: &str,
        manifest_digest: &Digest,
        kind: TagKind<'_>,
    ) -> Result<String, ImageError> {
        let parsed = Reference::parse_normalized(reference)?.with_default_tag();
        let key = parsed.to_string();
        if parsed
            .digest()
            .is_some_and(|pinned| pinned != manifest_digest)
        {
            return Err(ImageError::DigestConflict {
                reference: key,
                digest: manifest_digest.clone(),
            });
        }
        if !self.content.contains(manifest_digest) {
            return Err(ImageError::ManifestMissing {
                reference: key,
                digest: manifest_digest.clone(),
            });
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let digest_text = manifest_digest.to_string();
        self.meta
            .update(|txn| Ok(((), put_tag(txn, &key, &digest_text, now, kind)?)))?;
        Ok(key)
    }

    /// The manifest digest `reference` points at, if any.
    ///
    /// A reference pinned by digest (`name@sha256:…`), or a bare `sha256:…`, resolves to that
    /// digest when the manifest is in the content store, whatever it is tagged as.
    pub fn resolve(&self, reference: &str) -> Result<Option<Digest>, ImageError> {
        // Only a full SHA-2 digest counts: `busybox:latest` parses as a digest of the
        // made-up algorithm "busybox" too.
        if let Some(digest) = parse_reference_digest(reference) {
            return Ok(self.content.contains(&digest).then_some(digest));
        }
        let parsed = Reference::parse_normalized(reference)?.with_default_tag();
        let key = parsed.to_string();
        if let Some(stored) = self.get(&key)? {
            return Ok(Some(stored));
        }
        Ok(parsed
            .digest()
            .filter(|pinned| self.content.contains(pinned))
            .cloned())
    }

    /// What `reference` (a name, not a digest) is tagged with, platforms included.
    pub fn lookup(&self, reference: &str) -> Result<Option<ImageRecord>, ImageError> {
        let key = Reference::parse_normalized(reference)?
            .with_default_tag()
            .to_string();
        let bytes = self.meta.read(|txn| {
            let table = txn.open_table(IMAGES)?;
            Ok(table.get(key.as_str())?.map(|v| v.value().to_vec()))
        })?;
        match bytes {
            Some(bytes) => Ok(Some(self.decode(&key, &bytes)?)),
            None => Ok(None),
        }
    }

    /// Every tagged image, sorted by reference.
    pub fn list(&self) -> Result<Vec<ImageRecord>, ImageError> {
        let raw = self
            .meta
            .read(|txn| super::tables::byte_entries(txn, IMAGES))?;
        raw.into_iter()
            .map(|(reference, bytes)| Ok(self.decode(&reference, &bytes)?))
            .collect()
    }

    /// Removes a tag; an unknown reference is an error naming it.
    pub fn untag(&self, reference: &str) -> Result<(), ImageError> {
        let key = Reference::parse_normalized(reference)?
            .with_default_tag()
            .to_string();
        let removed = self
            .meta
            .write(|txn| Ok(txn.open_table(IMAGES)?.remove(key.as_str())?.is_some()))?;
        if removed {
            Ok(())
        } else {
            Err(ImageError::UnknownReference { reference: key })
        }
    }

    fn get(&self, key: &str) -> Result<Option<Digest>, ImageError> {
        let bytes = self.meta.read(|txn| {
            let table = txn.open_table(IMAGES)?;
            Ok(table.get(key)?.map(|v| v.value().to_vec()))
        })?;
        match bytes {
            Some(bytes) => Ok(Some(self.decode(key, &bytes)?.digest)),
            None => Ok(None),
        }
    }

    fn decode(&self, key: &str, bytes: &[u8]) -> Result<ImageRecord, MetaError> {
        let corrupt = |e: String| self.meta.corrupt("images", key, e);
        let stored: StoredTag =
            serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        let digest = parse_digest(&stored.digest).map_err(|e| corrupt(e.to_string()))?;
        let platforms = stored
            .platforms
            .iter()
            .map(|(p, d)| {
                Ok((
                    p.clone(),
                    parse_digest(d).map_err(|e| corrupt(e.to_string()))?,
                ))
            })
            .collect::<Result<_, MetaError>>()?;
        let index = stored
            .index
            .as_deref()
            .map(parse_digest)
            .transpose()
            .map_err(|e| corrupt(e.to_string()))?;
        Ok(ImageRecord {
            reference: key.to_owned(),
            digest,
            created: UNIX_EPOCH + Duration::from_secs(stored.created),
            platforms,
            index,
            pulled: stored.pulled,
        })
    }
}

/// Writes a tag, keeping the original creation time when it already points at this digest;
/// returns whether the stored value changed.
fn put_tag(
    txn: &WriteTransaction,
    key: &str,
    digest: &str,
    now: u64,
    kind: TagKind<'_>,
) -> Result<bool, TxnError> {
    let mut table = txn.open_table(IMAGES)?;
    let stored = table.get(key)?.map(|v| v.value().to_vec());
    let existing = stored
        .as_deref()
        .and_then(|v| serde_json::from_slice::<StoredTag>(v).ok())
        .unwrap_or_default();
    let created = if existing.digest == digest {
        existing.created
    } else {
        now
    };
    let (index, platforms, pulled) = match kind {
        TagKind::Plain if existing.digest == digest => {
            (existing.index, existing.platforms, existing.pulled)
        }
        TagKind::Plain => (None, BTreeMap::new(), false),
        TagKind::Image { platform, pulled } => {
            let mut platforms = existing.platforms;
            platforms.insert(platform.to_string(), digest.to_owned());
            (existing.index, platforms, pulled || existing.pulled)
        }
        TagKind::Built { platforms } => (
            Some(digest.to_owned()),
            platforms
                .iter()
                .map(|(p, d)| (p.to_string(), d.to_string()))
                .collect(),
            false,
        ),
        TagKind::Index { platform, index } => {
            let index = index.to_string();
            // What was pulled from the same index still holds; a new index starts afresh.
            let mut platforms = if existing.index.as_deref() == Some(index.as_str()) {
                existing.platforms
            } else {
                BTreeMap::new()
            };
            platforms.insert(platform.to_string(), digest.to_owned());
            (Some(index), platforms, true)
        }
    };
    let record = StoredTag {
        created,
        digest: digest.to_owned(),
        index,
        platforms,
        pulled,
    };
    let bytes = serde_json::to_vec(&record).map_err(|e| TxnError::corrupted(e.to_string()))?;
    if stored.as_deref() == Some(bytes.as_slice()) {
        return Ok(false);
    }
    table.insert(key, bytes.as_slice())?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_dir::TestDir;

    fn stores(dir: &TestDir) -> (ContentStore, ImageStore) {
        let content = ContentStore::open(dir.path()).unwrap();
        let meta = MetaDb::open(&dir.path().join("meta.redb")).unwrap();
        (content.clone(), ImageStore::new(content, meta))
    }

    #[test]
    fn tag_resolve_list_untag() {
        let dir = TestDir::new("images-tags");
        let (content, images) = stores(&dir);
        let m1 = content.put_bytes(br#"{"manifest":1}"#).unwrap().digest;
        let m2 = content.put_bytes(br#"{"manifest":2}"#).unwrap().digest;

        assert_eq!(
            images.tag("app:1.0", &m1).unwrap(),
            "docker.io/library/app:1.0"
        );
        images.tag("busybox", &m2).unwrap();
        images.tag("localhost:5000/x", &m2).unwrap();

        assert_eq!(images.resolve("app:1.0").unwrap(), Some(m1.clone()));
        assert_eq!(
            images.resolve("docker.io/library/app:1.0").unwrap(),
            Some(m1.clone())
        );
        assert_eq!(images.resolve("busybox:latest").unwrap(), Some(m2.clone()));
        assert_eq!(images.resolve("app").unwrap(), None);
        assert_eq!(images.resolve(m1.as_ref()).unwrap(), Some(m1.clone()));
        assert_eq!(
            images.resolve(&format!("whatever@{m2}")).unwrap(),
            Some(m2.clone())
        );

        let listed = images.list().unwrap();
        let refs: Vec<_> = listed.iter().map(|r| r.reference.as_str()).collect();
        assert_eq!(
            refs,
            [
                "docker.io/library/app:1.0",
                "docker.io/library/busybox:latest",
                "localhost:5000/x:latest"
            ]
        );
        assert_eq!(listed[0].digest, m1);
        assert!(listed[0].created > UNIX_EPOCH);

        // Retagging moves the tag.
        images.tag("app:1.0", &m2).unwrap();
        assert_eq!(images.resolve("app:1.0").unwrap(), Some(m2.clone()));

        images.untag("busybox").unwrap();
        assert_eq!(images.resolve("busybox").unwrap(), None);
        let err = images.untag("busybox").unwrap_err();
        assert!(matches!(err, ImageError::UnknownReference { .. }));
        assert!(err.to_string().contains("docker.io/library/busybox:latest"));
    }

    #[test]
    fn tag_refuses_missing_manifest_and_bad_names() {
        let dir = TestDir::new("images-refuse");
        let (content, images) = stores(&dir);
        let absent = crate::store::content::sha256_digest(b"absent").unwrap();
        let err = images.tag("app", &absent).unwrap_err();
        assert!(matches!(err, ImageError::ManifestMissing { .. }));
        assert!(err.to_string().contains(absent.as_ref()));
        let present = content.put_bytes(b"{}").unwrap().digest;
        assert!(matches!(
            images.tag("App", &present),
            Err(ImageError::Reference(_))
        ));
        assert!(matches!(
            images.tag(&format!("app@{absent}"), &present),
            Err(ImageError::DigestConflict { .. })
        ));
        images.tag(&format!("app@{present}"), &present).unwrap();
        assert_eq!(images.list().unwrap().len(), 1);
    }
}
