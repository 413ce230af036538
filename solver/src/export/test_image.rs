//! Small images written straight into a content store, for the exporter tests.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use oci_spec::image::{Arch, Digest};
use serde_json::json;

use super::json::canonical_json;
use crate::store::{ContentStore, sha256_digest};

/// An image in a test store.
#[derive(Debug, Clone)]
pub(crate) struct TestImage {
    pub(crate) manifest: Digest,
    pub(crate) config: Digest,
    pub(crate) layers: Vec<TestLayer>,
}

/// One of its layers.
#[derive(Debug, Clone)]
pub(crate) struct TestLayer {
    /// The gzip blob's digest.
    pub(crate) blob: Digest,
    /// The uncompressed tar's digest (the config's diff id).
    pub(crate) diff_id: Digest,
}

/// An uncompressed layer tar holding `files`.
pub(crate) fn layer_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut header = tar::Header::new_ustar();
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_mtime(0);
        builder.append_data(&mut header, path, *data).unwrap();
    }
    builder.into_inner().unwrap()
}

/// gzip of `bytes`.
pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Stores an image of the given layers for linux on `arch` (the host's when `None`).
pub(crate) fn build(
    store: &ContentStore,
    layers: &[&[(&str, &[u8])]],
    arch: Option<&str>,
) -> TestImage {
    let mut test_layers = Vec::new();
    let mut descriptors = Vec::new();
    for files in layers {
        let tar = layer_tar(files);
        let blob = gzip(&tar);
        let info = store.put_bytes(&blob).unwrap();
        descriptors.push(json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": info.digest.to_string(),
            "size": info.size,
        }));
        test_layers.push(TestLayer {
            blob: info.digest,
            diff_id: sha256_digest(&tar).unwrap(),
        });
    }
    let arch = arch.map_or_else(|| Arch::default().to_string(), str::to_owned);
    let config = json!({
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {
            "type": "layers",
            "diff_ids": test_layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>(),
        },
    });
    let config = store.put_bytes(&canonical_json(&config).unwrap()).unwrap();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config.digest.to_string(),
            "size": config.size,
        },
        "layers": descriptors,
    });
    let manifest = store
        .put_bytes(&canonical_json(&manifest).unwrap())
        .unwrap();
    TestImage {
        manifest: manifest.digest,
        config: config.digest,
        layers: test_layers,
    }
}
