//! Merged root filesystems of layer chains, cached by chain ID.

use std::path::PathBuf;

use oci_spec::image::Digest;

use super::chain::{chain_id, sha256_hex};
use super::error::io_error;
use super::merge::{Merger, Placement};
use super::temp::Temp;
use super::{FS, OpenBlob, ROOTFS, SnapshotError, Snapshots};

/// Directory name of the empty chain, which has no chain ID.
const SCRATCH: &str = "scratch";

impl Snapshots {
    /// The merged tree of `chain` (diff_ids, base first), whiteouts applied; built from the
    /// layer directories (extracting missing layers through `open_blob`) if not cached. Its
    /// files are hardlinks into the layer directories: never write into it.
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
        if fs.is_dir() {
            return Ok(fs);
        }

        let layer_dirs = chain
            .iter()
            .map(|diff_id| self.layer_dir(diff_id, || open_blob(diff_id)))
            .collect::<Result<Vec<_>, _>>()?;
        let temp = Temp::dir(&self.tmp(), "", &format!("rootfs-{name}"))?;
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
}
