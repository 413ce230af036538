//! `type=local` and `type=tar`: the image's merged filesystem, as a directory or one tar
//! (`dest=-`: a tar on stdout for either, as buildx does).

use std::path::Path;

use super::stdout::{STDOUT, to_stdout};
use super::{Built, Destination, Exported, Exporter, OutputError};
use crate::snapshot::Snapshots;
use crate::solve::LayerChain;

/// Writes the rootfs.
#[derive(Debug)]
pub(super) struct RootfsExporter {
    pub(super) dest: Destination,
    /// A tar file rather than a directory.
    pub(super) tar: bool,
}

impl Exporter for RootfsExporter {
    fn export(&self, built: &Built<'_>) -> Result<Exported, OutputError> {
        let chain = LayerChain::new(built.store.content(), built.layers);
        let open = |d: &oci_spec::image::Digest| chain.open(d);
        let snapshots = Snapshots::open(built.store.root())?;
        match &self.dest {
            Destination::Stdout => to_stdout(|out| {
                snapshots.write_tar(&chain.diff_ids, &open, out, Path::new(STDOUT))?;
                Ok(())
            })?,
            Destination::Path(dest) if self.tar => {
                snapshots.export_tar(&chain.diff_ids, &open, dest)?;
            }
            Destination::Path(dest) => snapshots.export_local(&chain.diff_ids, &open, dest)?,
        }
        Ok(Exported::default())
    }
}
