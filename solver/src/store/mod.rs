//! kiln's local store: content-addressed blobs, the metadata database and image tags.
//!
//! Under the root (`--root`, `KILN_ROOT`, see [`default_root`]):
//!
//! ```text
//! blobs/sha256/<hex>   blobs by digest (the OCI image-layout shape)
//! ingest/              temp files being hashed on their way into blobs/
//! meta.redb            image tags, cache index, context index, GC roots
//! gc.lock              held shared by builds and pulls, exclusive by prune (see `gc.rs`)
//! ```
//!
//! Several kiln processes may share one root at once: blobs appear atomically by rename and
//! the database is opened per transaction. The store knows nothing of builds: cache records
//! and context-index entries are opaque bytes here, and it never parses Dockerfiles.

mod content;
mod gc;
mod images;
mod ingest;
mod meta;
mod reference;
mod root;
mod tables;
#[cfg(test)]
pub(crate) mod test_dir;

use std::path::{Path, PathBuf};

pub use content::{BlobInfo, ContentError, ContentStore};
pub use gc::{LOCK_FILE, LockError, StoreLock};
pub use images::{ImageError, ImageRecord, ImageStore};
pub use ingest::Ingest;
pub use meta::{DEFAULT_LOCK_TIMEOUT, LINGER, MetaDb, MetaError, TxnError, close_all};
pub use reference::{
    Reference, ReferenceError, familiar_name, normalize_reference, parse_reference_digest,
};
pub use root::default_root;

pub(crate) use content::sha256_digest;

/// The name of the metadata database file under the root.
const META_FILE: &str = "meta.redb";

/// Why the store as a whole could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The root directory could not be created.
    #[error("cannot create store root {path}: {source}")]
    CreateRoot {
        /// The root.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The content store failed.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// The metadata database failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// Neither `KILN_ROOT`, `XDG_DATA_HOME` nor `HOME` says where a non-root store goes.
    #[error("no store root: set --root or KILN_ROOT (HOME and XDG_DATA_HOME are unset)")]
    NoDefaultRoot,
}

/// The content store, metadata database and image tags at one root.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    content: ContentStore,
    meta: MetaDb,
    images: ImageStore,
}

impl Store {
    /// Opens the store at `root`, creating its directories and database if needed.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(root).map_err(|source| StoreError::CreateRoot {
            path: root.to_path_buf(),
            source,
        })?;
        let content = ContentStore::open(root)?;
        let meta = MetaDb::open(&root.join(META_FILE))?;
        let images = ImageStore::new(content.clone(), meta.clone());
        Ok(Self {
            root: root.to_path_buf(),
            content,
            meta,
            images,
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The blobs.
    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    /// The metadata database.
    pub fn meta(&self) -> &MetaDb {
        &self.meta
    }

    /// The image tags.
    pub fn images(&self) -> &ImageStore {
        &self.images
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_dir::TestDir;

    #[test]
    fn open_creates_layout() {
        let dir = TestDir::new("store-open");
        let root = dir.path().join("nested/root");
        let store = Store::open(&root).unwrap();
        assert!(root.join("blobs/sha256").is_dir());
        assert!(root.join("ingest").is_dir());
        assert!(root.join("meta.redb").is_file());
        let blob = store.content().put_bytes(b"{}").unwrap();
        store.images().tag("busybox", &blob.digest).unwrap();
        let again = Store::open(&root).unwrap();
        assert_eq!(
            again.images().resolve("busybox").unwrap(),
            Some(blob.digest)
        );
        assert_eq!(again.root(), root);
    }
}
