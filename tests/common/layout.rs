//! OCI layouts written by hand, for images no tool writes on request: several platforms in one
//! index, configs that lie about their platform, schema 1 manifests, foreign layers, layers with
//! hostile names.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::registry::sha256;

/// An OCI image layout being written.
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    pub fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout {
            dir: dir.to_path_buf(),
        }
    }

    /// Stores `bytes`; its descriptor (digest and size).
    pub fn blob(&self, bytes: &[u8]) -> Value {
        let digest = sha256(bytes);
        let path = self
            .dir
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        std::fs::write(path, bytes).unwrap();
        json!({"digest": digest, "size": bytes.len()})
    }

    /// Copies a blob from another layout.
    pub fn copy_blob(&self, from: &Path, digest: &str) -> Value {
        let hex = digest.trim_start_matches("sha256:");
        let bytes = std::fs::read(from.join("blobs/sha256").join(hex)).unwrap();
        self.blob(&bytes)
    }

    /// The layers of another layout's image, their blobs copied here (media types kept).
    pub fn copy_layers(&self, from: &Path, layers: &[(Value, String)]) -> Vec<(Value, String)> {
        layers
            .iter()
            .map(|(d, id)| {
                let mut copied = self.copy_blob(from, d["digest"].as_str().unwrap());
                copied["mediaType"] = d["mediaType"].clone();
                (copied, id.clone())
            })
            .collect()
    }

    /// An image of `layers` (descriptor with mediaType, and diff_id) and `config` (its rootfs
    /// filled in); returns the manifest's descriptor.
    pub fn image(&self, layers: &[(Value, String)], mut config: Value) -> Value {
        config["rootfs"] = json!({
            "type": "layers",
            "diff_ids": layers.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>(),
        });
        let mut config_desc = self.blob(&serde_json::to_vec(&config).unwrap());
        config_desc["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config_desc,
            "layers": layers.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>(),
        });
        self.manifest(&manifest, "application/vnd.oci.image.manifest.v1+json")
    }

    /// Stores a manifest (or index) document; its descriptor.
    pub fn manifest(&self, doc: &Value, media_type: &str) -> Value {
        let mut desc = self.blob(&serde_json::to_vec(doc).unwrap());
        desc["mediaType"] = media_type.into();
        desc
    }

    /// A gzip layer of `tar`; its descriptor and diff_id.
    pub fn layer(&self, tar: &[u8]) -> (Value, String) {
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(tar).unwrap();
        let mut desc = self.blob(&gz.finish().unwrap());
        desc["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip".into();
        (desc, sha256(tar))
    }

    /// Writes `index.json` naming each descriptor by its tag.
    pub fn tag(&self, entries: &[(&str, Value)]) {
        let manifests: Vec<Value> = entries
            .iter()
            .map(|(tag, desc)| {
                let mut d = desc.clone();
                d["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
                d
            })
            .collect();
        let index = json!({"schemaVersion": 2, "manifests": manifests});
        std::fs::write(self.dir.join("index.json"), index.to_string()).unwrap();
    }
}

/// The bytes of blob `digest` in `layout`.
pub fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.trim_start_matches("sha256:");
    std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap()
}

/// The manifest tagged `tag` in `layout` (the first entry when none is), and its config.
pub fn read_manifest(layout: &Path, tag: &str) -> (Value, Value) {
    let json = |digest: &str| -> Value { serde_json::from_slice(&blob(layout, digest)).unwrap() };
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or(&index["manifests"][0]);
    let manifest = json(entry["digest"].as_str().unwrap());
    let config = json(manifest["config"]["digest"].as_str().unwrap());
    (manifest, config)
}

/// The layers (descriptor, diff_id) and config of the image tagged `tag` in `layout`.
pub fn read_image(layout: &Path, tag: &str) -> (Vec<(Value, String)>, Value) {
    let (manifest, config) = read_manifest(layout, tag);
    let layers = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(config["rootfs"]["diff_ids"].as_array().unwrap())
        .map(|(l, d)| (l.clone(), d.as_str().unwrap().to_owned()))
        .collect();
    (layers, config)
}

/// A plain tar of regular files (mode 0644, root-owned), names written as given (`..`
/// included: the header is filled by hand).
pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in files {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
        h[136..148].copy_from_slice(b"00000000000\0");
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}
