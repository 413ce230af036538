//! The parts of an image manifest (OCI or Docker schema 2: the same JSON shape) that pulls,
//! pushes and cache imports read.

use oci_spec::image::Digest;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub(crate) struct Manifest {
    #[serde(rename = "mediaType", default)]
    pub(crate) media_type: Option<String>,
    pub(crate) config: Descriptor,
    #[serde(default)]
    pub(crate) layers: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub(crate) media_type: Option<String>,
    pub(crate) digest: String,
}

impl Manifest {
    /// Every blob the manifest references, config first, parsed.
    pub(crate) fn blobs(&self) -> Result<Vec<Digest>, String> {
        std::iter::once(&self.config)
            .chain(&self.layers)
            .map(|d| {
                d.digest
                    .parse::<Digest>()
                    .map_err(|e| format!("digest {:?}: {e}", d.digest))
            })
            .collect()
    }
}
