//! The content store: blobs addressed by their sha256 digest at `<root>/blobs/sha256/<hex>`.
//!
//! That is the OCI image-layout shape, so an exporter can hardlink blobs straight out of it.
//! Blobs only ever appear under their digest through [`Ingest::commit`]: written to a temp file,
//! fsynced, verified, renamed. Readers therefore never see a half-written blob.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use oci_spec::image::{Digest, DigestAlgorithm};
use sha2::{Digest as _, Sha256};

use super::ingest::Ingest;

/// What went wrong in the content store; each variant names the digest or path involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContentError {
    /// A filesystem operation failed.
    #[error("content store: {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// No blob with this digest is in the store.
    #[error("blob {digest} not found in the content store")]
    NotFound {
        /// The digest asked for.
        digest: Digest,
    },
    /// Ingested content hashed to something else than the caller expected; nothing was stored.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The digest the caller announced.
        expected: Digest,
        /// The digest of the bytes actually written.
        actual: Digest,
    },
    /// A stored blob no longer hashes to its name (disk corruption or tampering).
    #[error("blob {digest} is corrupt: its content hashes to {actual} ({path})")]
    Corrupt {
        /// The digest the blob is stored under.
        digest: Digest,
        /// What its content hashes to now.
        actual: Digest,
        /// Where it lives.
        path: PathBuf,
    },
    /// Only sha256 content is ingested and verified.
    #[error("unsupported digest algorithm in {digest}: only sha256 is supported")]
    UnsupportedAlgorithm {
        /// The digest with the unsupported algorithm.
        digest: Digest,
    },
    /// A string that should have been a digest is not one.
    #[error("invalid digest {digest:?}: {reason}")]
    InvalidDigest {
        /// The text as found.
        digest: String,
        /// Why it does not parse.
        reason: String,
    },
}

impl ContentError {
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A blob as committed: its digest and its size in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// The sha256 digest of the content.
    pub digest: Digest,
    /// The content length in bytes.
    pub size: u64,
}

/// Blobs by digest under `<root>/blobs/`, with temp files under `<root>/ingest/`.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

impl ContentStore {
    /// Opens (creating its directories if needed) the content store rooted at `root`.
    pub fn open(root: &Path) -> Result<Self, ContentError> {
        let store = Self {
            root: root.to_path_buf(),
        };
        for dir in [store.sha256_dir(), store.ingest_dir()] {
            fs::create_dir_all(&dir).map_err(|e| ContentError::io(&dir, e))?;
        }
        Ok(store)
    }

    /// The root this store was opened at.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with this digest lives (or would live): `<root>/blobs/<alg>/<encoded>`.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        // A parsed digest's algorithm and encoded parts cannot contain '/' or be "..", so this
        // cannot escape the blobs directory.
        self.root
            .join("blobs")
            .join(digest.algorithm().as_ref())
            .join(digest.digest())
    }

    /// Whether a blob with this digest is present.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// The size in bytes of a stored blob.
    pub fn size(&self, digest: &Digest) -> Result<u64, ContentError> {
        let path = self.blob_path(digest);
        match fs::metadata(&path) {
            Ok(meta) => Ok(meta.len()),
            Err(e) => Err(self.not_found_or_io(digest, &path, e)),
        }
    }

    /// Starts writing a new blob; see [`Ingest`].
    pub fn ingest(&self) -> Result<Ingest, ContentError> {
        Ingest::create(&self.ingest_dir(), &self.sha256_dir())
    }

    /// Stores `bytes` as a blob (a no-op when already present) and returns its digest and size.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<BlobInfo, ContentError> {
        let digest = sha256_digest(bytes)?;
        let size = bytes.len() as u64;
        if self.size(&digest).ok() == Some(size) {
            return Ok(BlobInfo { digest, size });
        }
        let mut ingest = self.ingest()?;
        let temp = ingest.temp_path().to_path_buf();
        io::Write::write_all(&mut ingest, bytes).map_err(|e| ContentError::io(&temp, e))?;
        ingest.commit(Some(&digest))
    }

    /// Opens a stored blob for streaming reads. The content is not re-verified.
    pub fn open_blob(&self, digest: &Digest) -> Result<File, ContentError> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| self.not_found_or_io(digest, &path, e))
    }

    /// Reads a whole blob and verifies its digest; meant for small JSON blobs, not layers.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, ContentError> {
        if *digest.algorithm() != DigestAlgorithm::Sha256 {
            return Err(ContentError::UnsupportedAlgorithm {
                digest: digest.clone(),
            });
        }
        let path = self.blob_path(digest);
        let mut bytes = Vec::new();
        self.open_blob(digest)?
            .read_to_end(&mut bytes)
            .map_err(|e| ContentError::io(&path, e))?;
        let actual = sha256_digest(&bytes)?;
        if actual != *digest {
            return Err(ContentError::Corrupt {
                digest: digest.clone(),
                actual,
                path,
            });
        }
        Ok(bytes)
    }

    /// Deletes a blob; returns whether it was there.
    pub fn remove(&self, digest: &Digest) -> Result<bool, ContentError> {
        let path = self.blob_path(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(ContentError::io(&path, e)),
        }
    }

    /// Lists the digests of every sha256 blob in the store, in no particular order.
    pub fn list(&self) -> Result<Vec<Digest>, ContentError> {
        let dir = self.sha256_dir();
        let entries = fs::read_dir(&dir).map_err(|e| ContentError::io(&dir, e))?;
        let mut digests = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| ContentError::io(&dir, e))?;
            // Anything that is not a well-formed digest name is not a blob of ours.
            if let Some(digest) = entry
                .file_name()
                .to_str()
                .and_then(|hex| sha256_from_hex(hex).ok())
            {
                digests.push(digest);
            }
        }
        Ok(digests)
    }

    /// Removes temp files in `ingest/` older than `max_age`, left behind by crashed processes.
    ///
    /// Another process may be ingesting right now, so only files untouched for `max_age` go.
    pub fn prune_ingests(&self, max_age: Duration) -> Result<usize, ContentError> {
        let dir = self.ingest_dir();
        let entries = fs::read_dir(&dir).map_err(|e| ContentError::io(&dir, e))?;
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in entries {
            let entry = entry.map_err(|e| ContentError::io(&dir, e))?;
            let Ok(modified) = entry.metadata().and_then(|m| m.modified()) else {
                continue;
            };
            let old = now.duration_since(modified).is_ok_and(|age| age >= max_age);
            if old && fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn sha256_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    fn ingest_dir(&self) -> PathBuf {
        self.root.join("ingest")
    }

    fn not_found_or_io(&self, digest: &Digest, path: &Path, e: io::Error) -> ContentError {
        if e.kind() == io::ErrorKind::NotFound {
            ContentError::NotFound {
                digest: digest.clone(),
            }
        } else {
            ContentError::io(path, e)
        }
    }
}

/// The sha256 digest of `bytes`.
pub(crate) fn sha256_digest(bytes: &[u8]) -> Result<Digest, ContentError> {
    sha256_from_hex(&hex::encode(Sha256::digest(bytes)))
}

/// Builds a sha256 [`Digest`] from its 64 lowercase hex characters.
pub(crate) fn sha256_from_hex(hex: &str) -> Result<Digest, ContentError> {
    let text = format!("sha256:{hex}");
    Digest::try_from(text.as_str()).map_err(|e| ContentError::InvalidDigest {
        digest: text.clone(),
        reason: e.to_string(),
    })
}

/// Parses a digest found at a boundary (JSON, database, command line).
pub(crate) fn parse_digest(text: &str) -> Result<Digest, ContentError> {
    Digest::try_from(text).map_err(|e| ContentError::InvalidDigest {
        digest: text.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_dir::TestDir;
    use std::io::Write;

    #[test]
    fn put_read_and_layout_shape() {
        let dir = TestDir::new("content-put");
        let store = ContentStore::open(dir.path()).unwrap();
        let info = store.put_bytes(b"hello").unwrap();
        assert_eq!(
            info.digest.to_string(),
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(info.size, 5);
        assert_eq!(
            store.blob_path(&info.digest),
            dir.path().join("blobs/sha256").join(info.digest.digest())
        );
        assert!(store.contains(&info.digest));
        assert_eq!(store.size(&info.digest).unwrap(), 5);
        assert_eq!(store.read_blob(&info.digest).unwrap(), b"hello");
        assert_eq!(store.list().unwrap(), vec![info.digest.clone()]);
        // Idempotent.
        assert_eq!(store.put_bytes(b"hello").unwrap(), info);
        assert!(store.remove(&info.digest).unwrap());
        assert!(!store.remove(&info.digest).unwrap());
        assert!(matches!(
            store.open_blob(&info.digest),
            Err(ContentError::NotFound { .. })
        ));
        assert!(matches!(
            store.size(&info.digest),
            Err(ContentError::NotFound { .. })
        ));
    }

    #[test]
    fn read_blob_detects_corruption() {
        let dir = TestDir::new("content-corrupt");
        let store = ContentStore::open(dir.path()).unwrap();
        let info = store.put_bytes(b"{}").unwrap();
        let path = store.blob_path(&info.digest);
        let mut perms = fs::metadata(&path).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        fs::set_permissions(&path, perms).unwrap();
        fs::write(&path, b"[]").unwrap();
        let err = store.read_blob(&info.digest).unwrap_err();
        assert!(matches!(err, ContentError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains(info.digest.digest()));
    }

    #[test]
    fn prune_keeps_fresh_temps() {
        let dir = TestDir::new("content-prune");
        let store = ContentStore::open(dir.path()).unwrap();
        let mut ingest = store.ingest().unwrap();
        ingest.write_all(b"partial").unwrap();
        assert_eq!(store.prune_ingests(Duration::from_secs(3600)).unwrap(), 0);
        assert_eq!(store.prune_ingests(Duration::ZERO).unwrap(), 1);
        drop(ingest);
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
    }
}
