//! One directory per layer, extracted once and verified against its diff_id on the way.

use std::io::Read;
use std::path::PathBuf;

use oci_spec::image::Digest;

use super::chain::sha256_hex;
use super::temp::Temp;
use super::{FS, LAYERS, SnapshotError, Snapshots};
use crate::layer::{ApplyOptions, Owners, WhiteoutMode, apply};

impl Snapshots {
    /// The directory holding layer `diff_id` (in overlay form), extracting it from the blob
    /// `open_blob` opens if it is not there yet. The uncompressed stream must hash to
    /// `diff_id`, or nothing is kept.
    pub fn layer_dir<R: Read>(
        &self,
        diff_id: &Digest,
        open_blob: impl FnOnce() -> Result<R, SnapshotError>,
    ) -> Result<PathBuf, SnapshotError> {
        let hex = sha256_hex(diff_id)?;
        let target = self.dir.join(LAYERS).join(hex);
        let fs = target.join(FS);
        if fs.is_dir() {
            return Ok(fs);
        }

        let temp = Temp::dir(&self.tmp(), &format!("layer-{hex}"))?;
        let blob = open_blob().map_err(|source| SnapshotError::OpenBlob {
            diff_id: diff_id.clone(),
            source: Box::new(source),
        })?;
        // Only root can create the owners and device nodes a layer holds (a rootless kiln with
        // only its own id mapped keeps every file its own).
        let owners = if crate::fsutil::userns::can_chown() {
            Owners::Archive
        } else {
            Owners::Caller
        };
        let opts = ApplyOptions {
            whiteouts: WhiteoutMode::Overlay,
            owners,
        };
        let actual = apply(blob, &temp.path().join(FS), &opts)
            .map_err(|source| SnapshotError::Extract {
                diff_id: diff_id.clone(),
                source,
            })?
            .diff_id;
        if actual != *diff_id {
            return Err(SnapshotError::DiffIdMismatch {
                expected: diff_id.clone(),
                actual,
            });
        }
        temp.publish(&target)?;
        Ok(fs)
    }
}
