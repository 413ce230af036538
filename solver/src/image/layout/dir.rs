//! Reading the files of an OCI layout someone else wrote, trusting nothing: every JSON blob
//! is size-capped, size-checked and digest-verified before it is parsed.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use oci_spec::image::{Digest, DigestAlgorithm};
use serde::Deserialize;

use super::error::LayoutError;
use super::{INDEX_FILE, LAYOUT_VERSION, OCI_LAYOUT_FILE};
use crate::image::manifest::Index;
use crate::store::sha256_digest;

/// Manifests, indexes and configs larger than this are refused rather than read into memory
/// (containerd's bound, as for registries).
const MAX_JSON_BLOB: u64 = 4 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayoutMarker {
    image_layout_version: String,
}

/// An OCI layout directory being read.
#[derive(Debug, Clone)]
pub(crate) struct LayoutDir {
    root: PathBuf,
}

impl LayoutDir {
    /// A layout at `root`, without checking its marker (for importing blobs).
    pub(crate) fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }

    /// Opens a layout, checking its `oci-layout` marker.
    pub(crate) fn open(root: &Path) -> Result<Self, LayoutError> {
        let marker_path = root.join(OCI_LAYOUT_FILE);
        let not_a_layout = |reason: String| LayoutError::NotALayout {
            path: root.to_path_buf(),
            reason,
        };
        let bytes = match fs::read(&marker_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(not_a_layout(format!("no {OCI_LAYOUT_FILE} file")));
            }
            Err(e) => return Err(LayoutError::io(&marker_path, e)),
        };
        let marker: LayoutMarker =
            serde_json::from_slice(&bytes).map_err(|source| LayoutError::BadJson {
                path: marker_path.clone(),
                what: "oci-layout file",
                source,
            })?;
        if marker.image_layout_version != LAYOUT_VERSION {
            return Err(not_a_layout(format!(
                "unsupported layout version {}",
                marker.image_layout_version
            )));
        }
        Ok(Self::new(root))
    }

    /// The layout directory.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The top-level `index.json`, read tolerantly (`null` annotations and all).
    pub(crate) fn index(&self) -> Result<Index, LayoutError> {
        let path = self.root.join(INDEX_FILE);
        let bytes = fs::read(&path).map_err(|e| LayoutError::io(&path, e))?;
        serde_json::from_slice(&bytes).map_err(|source| LayoutError::BadJson {
            path,
            what: "index.json",
            source,
        })
    }

    /// `<root>/blobs/sha256/<hex>`; other algorithms are refused.
    pub(crate) fn blob_path(&self, digest: &Digest) -> Result<PathBuf, LayoutError> {
        if *digest.algorithm() != DigestAlgorithm::Sha256 {
            return Err(LayoutError::UnsupportedDigest {
                layout: self.root.clone(),
                digest: digest.clone(),
            });
        }
        Ok(self.root.join("blobs/sha256").join(digest.digest()))
    }

    /// Opens a blob, with its length; a missing blob is [`LayoutError::BlobMissing`].
    pub(crate) fn open_blob(&self, digest: &Digest) -> Result<(File, u64, PathBuf), LayoutError> {
        let path = self.blob_path(digest)?;
        let file = File::open(&path).map_err(|e| self.missing_or_io(digest, &path, e))?;
        let len = file
            .metadata()
            .map_err(|e| LayoutError::io(&path, e))?
            .len();
        Ok((file, len, path))
    }

    /// Checks a blob is present with the size its descriptor announces.
    pub(crate) fn check_blob(&self, digest: &Digest, size: u64) -> Result<(), LayoutError> {
        let (_, len, path) = self.open_blob(digest)?;
        check_size(digest, size, len, &path)
    }

    /// Reads a small blob whole and verifies its size (when known) and digest.
    pub(crate) fn read_json_blob(
        &self,
        digest: &Digest,
        size: Option<u64>,
    ) -> Result<Vec<u8>, LayoutError> {
        let (file, len, path) = self.open_blob(digest)?;
        if let Some(size) = size {
            check_size(digest, size, len, &path)?;
        }
        if len > MAX_JSON_BLOB {
            return Err(LayoutError::BlobTooLarge {
                path,
                digest: digest.clone(),
                size: len,
                limit: MAX_JSON_BLOB,
            });
        }
        let mut bytes = Vec::new();
        // The cap also holds if the file grows after the length was taken.
        file.take(MAX_JSON_BLOB)
            .read_to_end(&mut bytes)
            .map_err(|e| LayoutError::io(&path, e))?;
        let actual = sha256_digest(&bytes).map_err(|source| LayoutError::Store {
            layout: self.root.clone(),
            digest: digest.clone(),
            source: Box::new(source),
        })?;
        if actual != *digest {
            return Err(LayoutError::DigestMismatch {
                path,
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    fn missing_or_io(&self, digest: &Digest, path: &Path, e: io::Error) -> LayoutError {
        if e.kind() == io::ErrorKind::NotFound {
            LayoutError::BlobMissing {
                layout: self.root.clone(),
                digest: digest.clone(),
            }
        } else {
            LayoutError::io(path, e)
        }
    }
}

/// A size mismatch is reported before any hashing: cheaper, and a clearer message.
pub(crate) fn check_size(
    digest: &Digest,
    expected: u64,
    actual: u64,
    path: &Path,
) -> Result<(), LayoutError> {
    if expected == actual {
        Ok(())
    } else {
        Err(LayoutError::SizeMismatch {
            path: path.to_path_buf(),
            digest: digest.clone(),
            expected,
            actual,
        })
    }
}
