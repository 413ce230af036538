//! What is wrong with an OCI layout (or an archive of one) being read.

use std::io;
use std::path::{Path, PathBuf};

use oci_spec::image::Digest;

use crate::store::ContentError;

/// What is wrong with an OCI layout being read; each variant names the layout path or blob.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// A file of the layout could not be read.
    #[error("OCI layout: {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// No `oci-layout` marker, or a version kiln does not know.
    #[error("{path} is not an OCI image layout: {reason}")]
    NotALayout {
        /// The layout directory.
        path: PathBuf,
        /// Why not.
        reason: String,
    },
    /// A JSON document (index.json, an index, a manifest) does not parse.
    #[error("{path}: invalid {what}: {source}")]
    BadJson {
        /// The file.
        path: PathBuf,
        /// What it should have been.
        what: &'static str,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A blob the layout references is not in it.
    #[error("OCI layout {layout}: blob {digest} is missing")]
    BlobMissing {
        /// The layout directory.
        layout: PathBuf,
        /// The missing blob.
        digest: Digest,
    },
    /// A blob's content does not hash to its name.
    #[error("{path}: digest mismatch: expected {expected}, content hashes to {actual}")]
    DigestMismatch {
        /// The blob file.
        path: PathBuf,
        /// The digest it is referenced by.
        expected: Digest,
        /// What its content hashes to.
        actual: Digest,
    },
    /// A blob's length differs from its descriptor's size.
    #[error("{path}: blob {digest} is {actual} bytes, its descriptor says {expected}")]
    SizeMismatch {
        /// The blob file.
        path: PathBuf,
        /// The blob digest.
        digest: Digest,
        /// The size in the descriptor.
        expected: u64,
        /// The size found.
        actual: u64,
    },
    /// A JSON blob too big to be a manifest, index or config.
    #[error("{path}: blob {digest} is {size} bytes, more than the {limit} allowed for JSON")]
    BlobTooLarge {
        /// The blob file.
        path: PathBuf,
        /// The blob digest.
        digest: Digest,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Only sha256 blobs are read.
    #[error("OCI layout {layout}: unsupported digest algorithm in {digest}")]
    UnsupportedDigest {
        /// The layout directory.
        layout: PathBuf,
        /// The digest.
        digest: Digest,
    },
    /// Nothing in `index.json` matches the selector.
    #[error("OCI layout {layout}: no manifest matches {selector:?}")]
    NoMatch {
        /// The layout directory.
        layout: PathBuf,
        /// The tag or digest asked for.
        selector: String,
    },
    /// Several manifests match and none is for this platform; the caller must pick one.
    #[error(
        "OCI layout {layout}: {count} manifests match and none is for {platform}; select one with :tag or @digest"
    )]
    Ambiguous {
        /// The layout directory.
        layout: PathBuf,
        /// How many matched.
        count: usize,
        /// The platform looked for.
        platform: String,
    },
    /// An image index has no manifest for this platform.
    #[error(
        "OCI layout {layout}: index {digest} has no manifest for {platform} (it has: {available})"
    )]
    NoPlatform {
        /// The layout directory.
        layout: PathBuf,
        /// The index.
        digest: Digest,
        /// The platform looked for.
        platform: String,
        /// The platforms it lists.
        available: crate::image::manifest::PlatformList,
    },
    /// A manifest or index that cannot be used (schema 1, not a manifest, foreign layers).
    #[error("OCI layout {layout}: {source}")]
    Manifest {
        /// The layout directory.
        layout: PathBuf,
        /// What is wrong.
        source: crate::image::manifest::ManifestError,
    },
    /// A manifest whose config or layer descriptor has an unusable digest.
    #[error("OCI layout {layout}: manifest {manifest}: {detail}")]
    BadDescriptor {
        /// The layout directory.
        layout: PathBuf,
        /// The manifest.
        manifest: Digest,
        /// What is wrong.
        detail: crate::image::manifest::BadDigest,
    },
    /// An index entry with an unusable digest.
    #[error("OCI layout {layout}: index entry {detail}")]
    BadIndexEntry {
        /// The layout directory.
        layout: PathBuf,
        /// What is wrong.
        detail: crate::image::manifest::BadDigest,
    },
    /// A descriptor's media type is neither an image manifest nor an image index.
    #[error(
        "OCI layout {layout}: {digest} has media type {media_type}, not an image manifest or index"
    )]
    UnsupportedMediaType {
        /// The layout directory.
        layout: PathBuf,
        /// The blob.
        digest: Digest,
        /// Its media type.
        media_type: String,
    },
    /// Indexes nested deeper than kiln follows (a cycle, most likely).
    #[error("OCI layout {layout}: image indexes nested too deep at {digest}")]
    TooDeep {
        /// The layout directory.
        layout: PathBuf,
        /// The index at which kiln gave up.
        digest: Digest,
    },
    /// Storing a blob in the content store failed.
    #[error("importing {digest} from OCI layout {layout}: {source}")]
    Store {
        /// The layout directory.
        layout: PathBuf,
        /// The blob being imported.
        digest: Digest,
        /// The content-store error (boxed to keep this enum small).
        source: Box<ContentError>,
    },
}

impl LayoutError {
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
