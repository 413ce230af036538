//! Merged root filesystems of layer chains, cached by chain ID.

use std::path::PathBuf;

use oci_spec::image::Digest;

use super::chain::{chain_id, sha256_hex};
use super::error::io_error;
use super::merge::{Merger, Placement};
use super::temp::Temp;
use super::{FS, OpenBlob, ROOTFS, SnapshotError, Snapshots, VIEWS, views};

/// Directory name of the empty chain, which has no chain ID.
const SCRATCH: &str = "scratch";
/// The empty lowest layer of single-layer views.
const EMPTY: &str = ".empty";

impl Snapshots {
    /// The merged tree of `chain` (diff_ids, base first), whiteouts applied: a read-only
    /// overlay view of the layer directories (extracting missing layers through `open_blob`)
    /// where this process may mount one, else a merged tree cached by chain ID whose files
    /// are hardlinks into the layer directories. Never write into it.
    pub fn rootfs(
        &self,
        chain: &[Digest],
        open_blob: OpenBlob<'_>,
    ) -> Result<PathBuf, SnapshotError> {
        let name = if chain.is_empty() {
            SCRATCH.to_owned()
        } else {
            sha256_hex(&chain_id(chain)?)?.to_owned()
        };
        let target = self.dir.join(ROOTFS).join(&name);
        let fs = target.join(FS);
        if !chain.is_empty() && views::available() {
            let layer_dirs = self.layer_dirs(chain, open_blob)?;
            let mine = views::process_dir(&self.dir.join(VIEWS));
            let empty = mine.join(EMPTY);
            std::fs::create_dir_all(&empty).map_err(io_error(&empty))?;
            if let Some(view) = views::mount_view(&mine.join(&name), &layer_dirs, &empty) {
                return Ok(view);
            }
        }
        if fs.is_dir() {
            return Ok(fs);
        }

        let layer_dirs = self.layer_dirs(chain, open_blob)?;
        let temp = Temp::dir(&self.tmp(), &format!("rootfs-{name}"))?;
        let merged = temp.path().join(FS);
        std::fs::create_dir(&merged).map_err(io_error(&merged))?;
        let mut merger = Merger::new(&merged, Placement::Link);
        for dir in &layer_dirs {
            merger.apply(dir)?;
        }
        merger.finish()?;
        temp.publish(&target)?;
        Ok(fs)
    }

    /// The layer directories of `chain`, extracted where missing.
    fn layer_dirs(
        &self,
        chain: &[Digest],
        open_blob: OpenBlob<'_>,
    ) -> Result<Vec<PathBuf>, SnapshotError> {
        chain
            .iter()
            .map(|diff_id| self.layer_dir(diff_id, || open_blob(diff_id)))
            .collect()
    }
}
