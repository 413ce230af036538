//! Snapshots: every layer extracted once, and merged root filesystems of layer chains, under
//! `<root>/snapshots/`.
//!
//! ```text
//! snapshots/layers/<diff_id hex>/fs    one layer, in overlay form (see below)
//! snapshots/rootfs/<chain_id hex>/fs   a whole chain merged, whiteouts applied
//! snapshots/rootfs/scratch/fs          the empty chain (`FROM scratch`)
//! snapshots/views/<owner>/<chain_id hex>  where a kiln process mounts its read-only overlay
//!                                      view of a chain (see `views`), instead of merging it
//! snapshots/tmp/kiln-tmp-<owner>-<n>.<label>  work in progress, renamed into place when
//!                                      complete (owner: see `fsutil::owner`)
//! ```
//!
//! A layer directory keeps its whiteouts in **overlay form** — `.wh.x` becomes a 0:0 character
//! device `x`, `.wh..wh..opq` becomes the `trusted.overlay.opaque=y` xattr (`user.overlay.opaque`
//! when unprivileged) — rather than as `.wh.` files, because a RUN mounts overlayfs with the
//! chain's layer directories as lowerdirs, and overlayfs only understands its own form; a
//! merged rootfs (the copy-based fallback, and exports) applies them instead.
//!
//! Everything under a final name is complete: it is built under `tmp/`, flushed with one
//! `syncfs`, and renamed. Two processes building the same snapshot both finish and the
//! second rename loses harmlessly. A merged rootfs hardlinks the layer directories' files, so
//! it is read-only by convention: nothing may write into a snapshot once published.
//!
//! This module knows layers only by diff_id; which blob holds a layer is the caller's
//! business (`open_blob`).

mod chain;
mod error;
mod export;
mod layers;
mod merge;

pub(crate) use merge::flatten_copy;
mod rootfs;
mod temp;
mod views;

#[cfg(test)]
mod tests;

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use oci_spec::image::Digest;

pub use chain::chain_id;
pub use error::SnapshotError;
pub use export::NamedTrees;
pub use views::{release_views, use_private_mounts};

use error::io_error;
use temp::Temp;

/// Opens the blob of a layer given its diff_id (compressed or not; it is sniffed). Errors of
/// the caller's own kind go through [`SnapshotError::other`].
pub type OpenBlob<'a> = &'a dyn Fn(&Digest) -> Result<Box<dyn Read>, SnapshotError>;

/// A snapshot as [`Snapshots::list`] reports it and [`Snapshots::remove`] takes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SnapshotId {
    /// One extracted layer, by diff_id.
    Layer(Digest),
    /// A merged chain, by chain ID.
    Rootfs(Digest),
}

/// The snapshot store under `<root>/snapshots/`.
#[derive(Debug, Clone)]
pub struct Snapshots {
    dir: PathBuf,
}

const LAYERS: &str = "layers";
const ROOTFS: &str = "rootfs";
/// Mount points of this process's read-only views (see [`views`]).
const VIEWS: &str = "views";
const TMP: &str = "tmp";
/// The tree inside each snapshot directory, leaving room beside it for metadata later.
const FS: &str = "fs";

impl Snapshots {
    /// Opens (creating if needed) the snapshot store of state directory `root`. (The leftovers
    /// of kiln processes that died mid-work are `reclaim`'s.)
    pub fn open(root: &Path) -> Result<Self, SnapshotError> {
        let dir = root.join("snapshots");
        for sub in [LAYERS, ROOTFS, TMP] {
            let path = dir.join(sub);
            std::fs::create_dir_all(&path).map_err(io_error(&path))?;
        }
        Ok(Self { dir })
    }

    /// The `snapshots/` directory itself.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Lists the published snapshots (not work in progress), for garbage collection.
    pub fn list(&self) -> Result<Vec<SnapshotId>, SnapshotError> {
        let mut out = Vec::new();
        for (sub, make) in [
            (LAYERS, SnapshotId::Layer as fn(Digest) -> SnapshotId),
            (ROOTFS, SnapshotId::Rootfs),
        ] {
            let dir = self.dir.join(sub);
            for entry in std::fs::read_dir(&dir).map_err(io_error(&dir))? {
                let name = entry.map_err(io_error(&dir))?.file_name();
                // `scratch` and anything foreign are not digests and not collectable.
                if let Some(digest) = name
                    .to_str()
                    .and_then(|hex| Digest::try_from(format!("sha256:{hex}")).ok())
                {
                    out.push(make(digest));
                }
            }
        }
        out.sort_by_key(|id| match id {
            SnapshotId::Layer(digest) => (0, digest.to_string()),
            SnapshotId::Rootfs(digest) => (1, digest.to_string()),
        });
        Ok(out)
    }

    /// Removes a snapshot; removing one that is not there is not an error. It is first
    /// renamed out of its final name, so no reader ever sees a half-deleted tree.
    pub fn remove(&self, id: &SnapshotId) -> Result<(), SnapshotError> {
        let (sub, digest) = match id {
            SnapshotId::Layer(digest) => (LAYERS, digest),
            SnapshotId::Rootfs(digest) => (ROOTFS, digest),
        };
        let hex = chain::sha256_hex(digest)?;
        let path = self.dir.join(sub).join(hex);
        let doomed = Temp::name(&self.tmp(), &format!("rm-{hex}"));
        match std::fs::rename(&path, doomed.path()) {
            Ok(()) => drop(doomed),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(io_error(&path)(error)),
        }
        Ok(())
    }

    fn tmp(&self) -> PathBuf {
        self.dir.join(TMP)
    }
}
