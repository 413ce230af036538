//! `type=local` and `type=tar`: the image's merged filesystem, as a directory or one tar
//! (`dest=-`: a tar on stdout for either, as buildx does).

use std::path::Path;

use super::stdout::{STDOUT, to_stdout};
use super::{Built, Destination, Exported, Exporter, OutputError};
use oci_spec::image::Digest;

use crate::snapshot::{OpenBlob, Snapshots};
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
        let snapshots = Snapshots::open(built.store.root())?;
        if built.is_multi_platform() {
            return self.export_each_platform(built, &snapshots);
        }
        let chain = LayerChain::new(built.store.content(), &built.images[0].layers);
        let open = |d: &oci_spec::image::Digest| chain.open(d);
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

impl RootfsExporter {
    /// A multi-platform build, as buildx writes it: one directory per platform
    /// (`linux_arm64/`, `linux_arm_v7/`), in the destination directory or the one tar.
    fn export_each_platform(
        &self,
        built: &Built<'_>,
        snapshots: &Snapshots,
    ) -> Result<Exported, OutputError> {
        let content = built.store.content();
        let chains: Vec<(String, LayerChain)> = built
            .images
            .iter()
            .map(|i| {
                (
                    platform_dir(&i.platform),
                    LayerChain::new(content, &i.layers),
                )
            })
            .collect();
        // One closure expression, so one type: a Vec of them needs no boxes.
        let opens: Vec<_> = chains
            .iter()
            .map(|(_, chain)| move |d: &Digest| chain.open(d))
            .collect();
        let trees: Vec<(&str, &[Digest], OpenBlob<'_>)> = chains
            .iter()
            .zip(&opens)
            .map(|((dir, chain), open)| {
                let open: OpenBlob<'_> = open;
                (dir.as_str(), chain.diff_ids.as_slice(), open)
            })
            .collect();
        match &self.dest {
            Destination::Stdout => to_stdout(|out| {
                snapshots.write_tars(&trees, out, Path::new(STDOUT))?;
                Ok(())
            })?,
            Destination::Path(dest) if self.tar => snapshots.export_tars(&trees, dest)?,
            Destination::Path(dest) => {
                for (dir, chain, open) in &trees {
                    snapshots.export_local(chain, *open, &dest.join(dir))?;
                }
            }
        }
        Ok(Exported::default())
    }
}

/// buildx's directory for a platform: `linux_arm64`, `linux_arm_v7`.
fn platform_dir(platform: &kiln_llb::Platform) -> String {
    platform.to_string().replace('/', "_")
}
