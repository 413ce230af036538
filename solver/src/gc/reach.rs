//! Reachability: which blobs, layers and chains an image (a manifest or an index) keeps alive.
//!
//! Only blobs reached *as images* are parsed (tagged digests, GC roots, the manifests of an
//! index); layers reached from a manifest or a cache record are leaves and never read.

use std::collections::HashSet;
use std::io::Read as _;

use oci_spec::image::Digest;
use serde::Deserialize;

use crate::snapshot::chain_id;
use crate::store::ContentStore;

/// Manifests, indexes and configs are small; anything bigger is a layer and not parsed.
const MAX_JSON: u64 = 4 * 1024 * 1024;
/// Indexes of indexes of …: deeper than this is not an image.
const MAX_DEPTH: usize = 4;

/// What a set of roots keeps alive.
#[derive(Debug, Default, Clone)]
pub struct Reach {
    /// Every blob reached: manifests, indexes, configs, layers.
    pub blobs: HashSet<Digest>,
    /// The manifests, indexes and configs among them.
    pub metadata: HashSet<Digest>,
    /// The diff_ids of the layers of every image reached, and of kept cache records.
    pub diff_ids: HashSet<Digest>,
    /// The chain IDs of every prefix of every image's layers (their merged rootfs).
    pub chains: HashSet<Digest>,
    /// Images that are not whole: a missing config, an unparsable manifest.
    pub warnings: Vec<String>,
}

#[derive(Deserialize)]
struct Descriptor {
    digest: String,
}

#[derive(Deserialize)]
struct ImageJson {
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
}

#[derive(Deserialize)]
struct ConfigJson {
    #[serde(default)]
    rootfs: Option<RootFsJson>,
}

#[derive(Deserialize)]
struct RootFsJson {
    #[serde(default)]
    diff_ids: Vec<String>,
}

impl Reach {
    /// Marks `digest` as a root: kept itself, and if it is a manifest or an index, everything
    /// it references. `what` names the root in warnings (`tag app:1.0`).
    pub fn mark_root(&mut self, content: &ContentStore, digest: &Digest, what: &str) {
        self.mark(content, digest, what, 0);
    }

    /// Keeps one blob without looking inside it (a cache record's layer).
    pub fn keep_leaf(&mut self, digest: Digest) {
        self.blobs.insert(digest);
    }

    fn mark(&mut self, content: &ContentStore, digest: &Digest, what: &str, depth: usize) {
        if !self.blobs.insert(digest.clone()) || depth > MAX_DEPTH {
            return;
        }
        let Some(bytes) = read_small_json(content, digest) else {
            return;
        };
        let Ok(image) = serde_json::from_slice::<ImageJson>(&bytes) else {
            return;
        };
        if let Some(children) = &image.manifests {
            self.metadata.insert(digest.clone());
            for child in children {
                match Digest::try_from(child.digest.as_str()) {
                    // An index may list platforms that were never pulled: absence is fine.
                    Ok(d) => self.mark(content, &d, what, depth + 1),
                    Err(e) => self.warn(what, digest, &format!("bad manifest digest: {e}")),
                }
            }
        }
        if let Some(config) = &image.config {
            self.metadata.insert(digest.clone());
            match Digest::try_from(config.digest.as_str()) {
                Ok(d) => self.mark_config(content, &d, what),
                Err(e) => self.warn(what, digest, &format!("bad config digest: {e}")),
            }
        }
        for layer in image.layers.iter().flatten() {
            match Digest::try_from(layer.digest.as_str()) {
                Ok(d) => {
                    self.blobs.insert(d);
                }
                Err(e) => self.warn(what, digest, &format!("bad layer digest: {e}")),
            }
        }
    }

    fn mark_config(&mut self, content: &ContentStore, config: &Digest, what: &str) {
        self.blobs.insert(config.clone());
        self.metadata.insert(config.clone());
        let Some(bytes) = read_small_json(content, config) else {
            if !content.contains(config) {
                self.warn(what, config, "config is missing from the content store");
            }
            return;
        };
        let diff_ids = match serde_json::from_slice::<ConfigJson>(&bytes) {
            Ok(c) => c.rootfs.map(|r| r.diff_ids).unwrap_or_default(),
            Err(e) => {
                self.warn(what, config, &format!("unreadable config: {e}"));
                return;
            }
        };
        let mut chain = Vec::with_capacity(diff_ids.len());
        for text in diff_ids {
            let Ok(diff_id) = Digest::try_from(text.as_str()) else {
                self.warn(what, config, &format!("bad diff_id {text:?}"));
                return;
            };
            self.diff_ids.insert(diff_id.clone());
            chain.push(diff_id);
            if let Ok(id) = chain_id(&chain) {
                self.chains.insert(id);
            }
        }
    }

    fn warn(&mut self, what: &str, digest: &Digest, message: &str) {
        self.warnings.push(format!("{what}: {digest}: {message}"));
    }
}

/// The blob's bytes if it is present, small, and starts like a JSON object.
fn read_small_json(content: &ContentStore, digest: &Digest) -> Option<Vec<u8>> {
    let size = content.size(digest).ok()?;
    if size > MAX_JSON {
        return None;
    }
    let mut file = content.open_blob(digest).ok()?.take(MAX_JSON);
    // A look at the start first, so small layers are not read whole just to be skipped.
    let mut bytes = vec![0; 64];
    let n = file.read(&mut bytes).ok()?;
    bytes.truncate(n);
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    file.read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gc::test_support::{image, index};
    use crate::store::test_dir::TestDir;

    #[test]
    fn marks_manifest_config_layers_and_chains() {
        let dir = TestDir::new("gc-reach");
        let content = ContentStore::open(dir.path()).unwrap();
        let img = image(&content, &[b"layer one", b"layer two"]);
        let stray = content.put_bytes(b"stray").unwrap().digest;
        let mut reach = Reach::default();
        reach.mark_root(&content, &img.manifest, "tag a");
        assert!(reach.warnings.is_empty(), "{:?}", reach.warnings);
        for d in [&img.manifest, &img.config, &img.layers[0], &img.layers[1]] {
            assert!(reach.blobs.contains(d), "{d} not reached");
        }
        assert!(!reach.blobs.contains(&stray));
        assert_eq!(
            reach.metadata,
            [img.manifest.clone(), img.config.clone()].into()
        );
        assert_eq!(reach.diff_ids, img.diff_ids.iter().cloned().collect());
        assert_eq!(reach.chains.len(), 2);
        assert!(reach.chains.contains(&img.diff_ids[0]));
        assert!(reach.chains.contains(&chain_id(&img.diff_ids).unwrap()));
    }

    #[test]
    fn index_children_and_missing_platforms() {
        let dir = TestDir::new("gc-reach-index");
        let content = ContentStore::open(dir.path()).unwrap();
        let amd = image(&content, &[b"amd64 layer"]);
        let absent = crate::store::sha256_digest(b"never pulled").unwrap();
        let idx = index(&content, &[&amd.manifest, &absent]);
        let mut reach = Reach::default();
        reach.mark_root(&content, &idx, "tag multi");
        assert!(reach.blobs.contains(&idx));
        assert!(reach.blobs.contains(&amd.layers[0]));
        assert!(reach.metadata.contains(&idx));
        assert!(reach.warnings.is_empty(), "{:?}", reach.warnings);
    }

    #[test]
    fn non_json_root_is_a_leaf_and_missing_config_warns() {
        let dir = TestDir::new("gc-reach-leaf");
        let content = ContentStore::open(dir.path()).unwrap();
        let layer = content.put_bytes(b"\x1f\x8b not json").unwrap().digest;
        let mut reach = Reach::default();
        reach.mark_root(&content, &layer, "gc root x");
        assert_eq!(reach.blobs, [layer].into());
        assert!(reach.metadata.is_empty());

        let missing = crate::store::sha256_digest(b"config").unwrap();
        let manifest = content
            .put_bytes(
                serde_json::json!({"schemaVersion": 2, "config": {"digest": missing.to_string()}, "layers": []})
                    .to_string()
                    .as_bytes(),
            )
            .unwrap()
            .digest;
        reach.mark_root(&content, &manifest, "tag broken");
        assert_eq!(reach.warnings.len(), 1);
        assert!(reach.warnings[0].contains("tag broken"));
        assert!(reach.warnings[0].contains(missing.as_ref()));
    }
}
