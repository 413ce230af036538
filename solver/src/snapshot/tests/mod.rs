//! Snapshot tests: layer directories, merged rootfs with whiteouts, exports, GC listing.

mod exports;
mod rootfs;
mod store;

use std::cell::Cell;
use std::collections::HashMap;
use std::io::{self, Read};
use std::path::Path;

use oci_spec::image::Digest;

use super::SnapshotError;
use crate::layer::{Compression, LayerOptions, write_layer};

/// Layer blobs by diff_id, as a content store would hand them out.
#[derive(Default)]
pub(super) struct Blobs {
    blobs: HashMap<Digest, Vec<u8>>,
    pub(super) opened: Cell<usize>,
}

impl Blobs {
    /// Archives `diff` as a gzip layer and keeps it; returns its diff_id.
    pub(super) fn add(&mut self, diff: &Path) -> Digest {
        let mut blob = Vec::new();
        let opts = LayerOptions {
            compression: Compression::Gzip,
            source_date_epoch: None,
        };
        let info = write_layer(diff, &mut blob, &opts).unwrap();
        self.blobs.insert(info.diff_id.clone(), blob);
        info.diff_id
    }

    pub(super) fn open(&self, diff_id: &Digest) -> Result<Box<dyn Read>, SnapshotError> {
        self.opened.set(self.opened.get() + 1);
        let blob = self
            .blobs
            .get(diff_id)
            .ok_or_else(|| SnapshotError::other(format!("no blob for {diff_id}")))?;
        Ok(Box::new(io::Cursor::new(blob.clone())))
    }
}
