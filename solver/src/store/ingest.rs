//! Writing one blob into the content store: hash while writing a temp file, then commit.
//!
//! The temp file lives in `<root>/ingest/` (same filesystem as `blobs/`, so the final rename
//! is atomic). Commit fsyncs, verifies the digest and renames; dropping an uncommitted ingest
//! removes its temp file. Two processes ingesting the same content race harmlessly: both
//! renames put identical bytes under the same name.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use oci_spec::image::{Digest, DigestAlgorithm};
use sha2::{Digest as _, Sha256};

use super::content::{BlobInfo, ContentError, sha256_from_hex};
use crate::fsutil::owner::temp_name;

/// Buffer big enough that layer-sized writes do not turn into tiny syscalls.
const BUFFER: usize = 256 * 1024;

/// A blob being written: implements [`Write`], hashing every byte; finish with [`Ingest::commit`].
#[derive(Debug)]
pub struct Ingest {
    writer: Option<BufWriter<File>>,
    /// None for a writer that computes the digest of what it writes itself.
    hasher: Option<Sha256>,
    size: u64,
    temp: PathBuf,
    blobs: PathBuf,
    committed: bool,
}

impl Ingest {
    pub(crate) fn create(ingest_dir: &Path, blobs_dir: &Path) -> Result<Self, ContentError> {
        let temp = ingest_dir.join(temp_name("blob"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|e| ContentError::io(&temp, e))?;
        Ok(Self {
            writer: Some(BufWriter::with_capacity(BUFFER, file)),
            hasher: Some(Sha256::new()),
            size: 0,
            temp,
            blobs: blobs_dir.to_path_buf(),
            committed: false,
        })
    }

    /// The same ingest without its own hash, for a writer that hashes every byte it writes
    /// here (the layer writer's tap): [`Ingest::commit`] then takes the digest it is given,
    /// where hashing the same bytes twice would cost a second SHA-256 pass.
    /// Once bytes are written it keeps hashing: they would be missing from any digest.
    pub fn prehashed(mut self) -> Self {
        if self.size == 0 {
            self.hasher = None;
        }
        self
    }

    /// How many bytes have been written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The temp file being written, for error messages.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Finishes the blob: fsync, check the digest against `expected`, rename into place.
    ///
    /// On a mismatch nothing is stored and the temp file is removed. If the blob is already
    /// present the temp file is simply dropped.
    pub fn commit(mut self, expected: Option<&Digest>) -> Result<BlobInfo, ContentError> {
        if let Some(expected) = expected.filter(|d| *d.algorithm() != DigestAlgorithm::Sha256) {
            return Err(ContentError::UnsupportedAlgorithm {
                digest: expected.clone(),
            });
        }
        let file = match self.writer.take() {
            Some(writer) => writer
                .into_inner()
                .map_err(|e| ContentError::io(&self.temp, e.into_error()))?,
            None => {
                return Err(ContentError::io(
                    &self.temp,
                    io::Error::other("ingest already finished"),
                ));
            }
        };
        let digest = match (self.hasher.take(), expected) {
            (Some(hasher), _) => sha256_from_hex(&hex::encode(hasher.finalize()))?,
            (None, Some(expected)) => expected.clone(),
            (None, None) => {
                return Err(ContentError::io(
                    &self.temp,
                    io::Error::other("a blob written without hashing needs its digest to commit"),
                ));
            }
        };
        if let Some(expected) = expected.filter(|d| **d != digest) {
            return Err(ContentError::DigestMismatch {
                expected: expected.clone(),
                actual: digest,
            });
        }
        let info = BlobInfo {
            digest,
            size: self.size,
        };

        let dest = self.blobs.join(info.digest.digest());
        // A present blob of the right size is trusted (it was verified when it went in); one
        // of the wrong size is a leftover of corruption and gets replaced. Checked before
        // the fsync: a blob that is already stored (an empty layer, a rebuilt config) then
        // costs no sync at all.
        if fs::metadata(&dest).is_ok_and(|m| m.len() == info.size) {
            return Ok(info);
        }
        file.sync_all()
            .map_err(|e| ContentError::io(&self.temp, e))?;
        drop(file);
        // Read-only, so a hardlinked export cannot be edited into a corrupt store blob by
        // accident.
        fs::set_permissions(&self.temp, fs::Permissions::from_mode(0o444))
            .map_err(|e| ContentError::io(&self.temp, e))?;
        fs::rename(&self.temp, &dest).map_err(|e| ContentError::io(&dest, e))?;
        self.committed = true;
        sync_dir(&self.blobs)?;
        Ok(info)
    }
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| io::Error::other("ingest already finished"))?;
        let n = writer.write(buf)?;
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..n]);
        }
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.writer.as_mut() {
            Some(writer) => writer.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        if !self.committed {
            // Close before unlinking; errors here have nowhere to go and leave at worst a
            // stray temp file, which `prune_ingests` collects.
            drop(self.writer.take());
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), ContentError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ContentError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use crate::store::content::{ContentError, ContentStore, sha256_digest};
    use crate::store::test_dir::TestDir;
    use std::fs;
    use std::io::Write;
    use std::sync::Arc;

    fn temps(dir: &TestDir) -> usize {
        fs::read_dir(dir.path().join("ingest")).unwrap().count()
    }

    #[test]
    fn commit_verifies_and_places() {
        let dir = TestDir::new("ingest-commit");
        let store = ContentStore::open(dir.path()).unwrap();
        let expected = sha256_digest(b"layer bytes").unwrap();
        let mut ingest = store.ingest().unwrap();
        ingest.write_all(b"layer ").unwrap();
        ingest.write_all(b"bytes").unwrap();
        assert_eq!(ingest.size(), 11);
        let info = ingest.commit(Some(&expected)).unwrap();
        assert_eq!(info.digest, expected);
        assert_eq!(info.size, 11);
        assert_eq!(store.read_blob(&expected).unwrap(), b"layer bytes");
        assert_eq!(temps(&dir), 0);
    }

    /// A prehashed ingest takes the digest its writer computed, refuses to commit without
    /// one, and keeps hashing when bytes were already written before it was asked.
    #[test]
    fn prehashed_commits_under_the_given_digest() {
        let dir = TestDir::new("ingest-prehashed");
        let store = ContentStore::open(dir.path()).unwrap();
        let digest = sha256_digest(b"layer bytes").unwrap();
        let mut ingest = store.ingest().unwrap().prehashed();
        ingest.write_all(b"layer bytes").unwrap();
        assert_eq!(ingest.commit(Some(&digest)).unwrap().digest, digest);
        assert_eq!(store.read_blob(&digest).unwrap(), b"layer bytes");

        let mut ingest = store.ingest().unwrap().prehashed();
        ingest.write_all(b"other bytes").unwrap();
        assert!(ingest.commit(None).is_err());
        assert_eq!(temps(&dir), 0);

        let mut ingest = store.ingest().unwrap();
        ingest.write_all(b"late").unwrap();
        let wrong = sha256_digest(b"not late").unwrap();
        let err = ingest.prehashed().commit(Some(&wrong)).unwrap_err();
        assert!(matches!(err, ContentError::DigestMismatch { .. }), "{err}");
    }

    #[test]
    fn mismatch_stores_nothing() {
        let dir = TestDir::new("ingest-mismatch");
        let store = ContentStore::open(dir.path()).unwrap();
        let wrong = sha256_digest(b"something else").unwrap();
        let mut ingest = store.ingest().unwrap();
        ingest.write_all(b"actual content").unwrap();
        let err = ingest.commit(Some(&wrong)).unwrap_err();
        let ContentError::DigestMismatch { expected, actual } = &err else {
            panic!("unexpected {err}");
        };
        assert_eq!(*expected, wrong);
        assert_eq!(*actual, sha256_digest(b"actual content").unwrap());
        let text = err.to_string();
        assert!(text.contains(wrong.digest()) && text.contains(actual.digest()));
        assert!(!store.contains(&wrong));
        assert!(!store.contains(actual));
        assert_eq!(temps(&dir), 0);
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn drop_without_commit_removes_temp() {
        let dir = TestDir::new("ingest-drop");
        let store = ContentStore::open(dir.path()).unwrap();
        let mut ingest = store.ingest().unwrap();
        ingest.write_all(&[7u8; 100_000]).unwrap();
        assert_eq!(temps(&dir), 1);
        drop(ingest);
        assert_eq!(temps(&dir), 0);
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn commit_of_present_blob_drops_temp() {
        let dir = TestDir::new("ingest-present");
        let store = ContentStore::open(dir.path()).unwrap();
        let first = store.put_bytes(b"same").unwrap();
        let mut ingest = store.ingest().unwrap();
        ingest.write_all(b"same").unwrap();
        assert_eq!(ingest.commit(None).unwrap(), first);
        assert_eq!(temps(&dir), 0);
    }

    #[test]
    fn rejects_non_sha256_expectation() {
        let dir = TestDir::new("ingest-sha512");
        let store = ContentStore::open(dir.path()).unwrap();
        let sha512 =
            oci_spec::image::Digest::try_from(format!("sha512:{}", "a".repeat(128))).unwrap();
        let ingest = store.ingest().unwrap();
        assert!(matches!(
            ingest.commit(Some(&sha512)),
            Err(ContentError::UnsupportedAlgorithm { .. })
        ));
        assert_eq!(temps(&dir), 0);
    }

    #[test]
    fn concurrent_identical_ingests() {
        let dir = TestDir::new("ingest-concurrent");
        let store = Arc::new(ContentStore::open(dir.path()).unwrap());
        let content: Arc<Vec<u8>> = Arc::new((0..2_000_000u32).map(|i| i as u8).collect());
        let expected = sha256_digest(&content).unwrap();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let store = Arc::clone(&store);
                let content = Arc::clone(&content);
                let expected = expected.clone();
                std::thread::spawn(move || {
                    let mut ingest = store.ingest().unwrap();
                    for chunk in content.chunks(65_536) {
                        ingest.write_all(chunk).unwrap();
                        // Readers in the meantime see either nothing or the whole blob.
                        if store.contains(&expected) {
                            assert_eq!(store.size(&expected).unwrap(), content.len() as u64);
                        }
                    }
                    ingest.commit(Some(&expected)).unwrap()
                })
            })
            .collect();
        for thread in threads {
            let info = thread.join().unwrap();
            assert_eq!(info.digest, expected);
        }
        assert_eq!(store.read_blob(&expected).unwrap(), *content);
        assert_eq!(store.list().unwrap(), vec![expected]);
        assert_eq!(temps(&dir), 0);
    }
}
