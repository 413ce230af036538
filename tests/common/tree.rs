//! Comparing the images of two builders: each unpacked by umoci (an independent reader), its
//! rootfs summarized path by path (type, mode, owner, content digest, link target, device,
//! xattrs, hardlink group; never times), and its config reduced to what a Dockerfile decides.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::tool;

/// One path of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Content digest and size, link target, or device numbers.
    pub data: String,
    pub xattrs: Vec<(String, String)>,
    /// The other paths of the same inode, for hardlinked files.
    pub links: Vec<String>,
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {:04o} {}:{} {}",
            self.kind, self.mode, self.uid, self.gid, self.data
        )?;
        if !self.xattrs.is_empty() {
            write!(f, " xattrs={:?}", self.xattrs)?;
        }
        if !self.links.is_empty() {
            write!(f, " links={:?}", self.links)?;
        }
        Ok(())
    }
}

/// A summary of every path under `root` (relative, `/`-separated).
pub fn summarize(root: &Path) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<(u64, u64), Vec<String>> = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let path = root.join(&rel);
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let ft = meta.file_type();
        let (kind, data) = if ft.is_dir() {
            let mut names: Vec<_> = std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            for name in names {
                stack.push(rel.join(name));
            }
            ("dir", String::new())
        } else if ft.is_symlink() {
            (
                "symlink",
                std::fs::read_link(&path).unwrap().display().to_string(),
            )
        } else if ft.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            let digest = hex(&Sha256::digest(&bytes));
            let preview = if bytes.len() <= 80 && std::str::from_utf8(&bytes).is_ok() {
                format!(" {:?}", String::from_utf8_lossy(&bytes))
            } else {
                String::new()
            };
            (
                "file",
                format!("{} sha256:{}{preview}", bytes.len(), &digest[..16]),
            )
        } else if ft.is_char_device() || ft.is_block_device() {
            let kind = if ft.is_char_device() { "char" } else { "block" };
            let rdev = meta.rdev();
            (
                kind,
                format!("{}:{}", rustix::fs::major(rdev), rustix::fs::minor(rdev)),
            )
        } else if ft.is_fifo() {
            ("fifo", String::new())
        } else {
            ("socket", String::new())
        };
        if rel.as_os_str().is_empty() {
            continue;
        }
        let name = rel.to_string_lossy().into_owned();
        if ft.is_file() && meta.nlink() > 1 {
            inodes
                .entry((meta.dev(), meta.ino()))
                .or_default()
                .push(name.clone());
        }
        out.insert(
            name,
            Entry {
                kind: kind.to_owned(),
                mode: if ft.is_symlink() {
                    0
                } else {
                    meta.mode() & 0o7777
                },
                uid: meta.uid(),
                gid: meta.gid(),
                data,
                xattrs: xattrs(&path),
                links: Vec::new(),
            },
        );
    }
    for group in inodes.values().filter(|g| g.len() > 1) {
        for name in group {
            let mut others: Vec<String> = group.iter().filter(|n| *n != name).cloned().collect();
            others.sort();
            if let Some(e) = out.get_mut(name) {
                e.links = others;
            }
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Extended attributes of `path` itself, but for the host's SELinux label.
fn xattrs(path: &Path) -> Vec<(String, String)> {
    let mut buf = vec![0u8; 64 * 1024];
    let Ok(n) = rustix::fs::llistxattr(path, &mut buf) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in buf[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        if name == "security.selinux" {
            continue;
        }
        let mut value = vec![0u8; 64 * 1024];
        if let Ok(len) = rustix::fs::lgetxattr(path, name.as_str(), &mut value) {
            out.push((name, hex(&value[..len])));
        }
    }
    out.sort();
    out
}

/// The config fields a Dockerfile decides, as comparable text.
pub fn config_view(config: &serde_json::Value) -> BTreeMap<String, String> {
    let c = &config["config"];
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    let mut labels = c["Labels"].as_object().cloned().unwrap_or_default();
    labels.remove("io.buildah.version");
    let keys = |v: &serde_json::Value| {
        v.as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>().join(","))
            .unwrap_or_default()
    };
    let mut env: Vec<String> = c["Env"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default();
    env.sort();
    BTreeMap::from([
        ("Env".to_owned(), env.join(" ")),
        ("Cmd".to_owned(), text(&c["Cmd"])),
        ("Entrypoint".to_owned(), text(&c["Entrypoint"])),
        (
            "WorkingDir".to_owned(),
            c["WorkingDir"].as_str().unwrap_or("").to_owned(),
        ),
        (
            "User".to_owned(),
            c["User"].as_str().unwrap_or("").to_owned(),
        ),
        ("ExposedPorts".to_owned(), keys(&c["ExposedPorts"])),
        ("Volumes".to_owned(), keys(&c["Volumes"])),
        (
            "Labels".to_owned(),
            serde_json::Value::Object(labels).to_string(),
        ),
        (
            "StopSignal".to_owned(),
            c["StopSignal"].as_str().unwrap_or("").to_owned(),
        ),
        (
            "platform".to_owned(),
            format!(
                "{}/{}{}",
                config["os"].as_str().unwrap_or(""),
                config["architecture"].as_str().unwrap_or(""),
                config["variant"]
                    .as_str()
                    .map(|v| format!("/{v}"))
                    .unwrap_or_default()
            ),
        ),
    ])
}

/// An image unpacked from an OCI layout: its rootfs and config.
pub struct Unpacked {
    pub rootfs: PathBuf,
    pub config: serde_json::Value,
}

/// Unpacks the image tagged `tag` in the OCI layout `layout` with umoci into `bundle`,
/// leaving out its first `skip` layers (a base both builders reused as it was). umoci 0.4
/// reads only gzip layers: an image with others is first recompressed by skopeo.
pub fn unpack(layout: &Path, tag: &str, bundle: &Path, skip: usize) -> Unpacked {
    let (mut manifest, config) = super::layout::read_manifest(layout, tag);

    // A layout of the remaining layers, gzip, for umoci.
    let trimmed = bundle.with_extension("layout");
    std::fs::create_dir_all(trimmed.join("blobs/sha256")).unwrap();
    std::fs::write(
        trimmed.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let put = |bytes: &[u8]| {
        let digest = super::registry::sha256(bytes);
        let path = trimmed
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        std::fs::write(path, bytes).unwrap();
        serde_json::json!({"digest": digest, "size": bytes.len()})
    };
    let layers: Vec<serde_json::Value> = manifest["layers"].as_array().unwrap()[skip..].to_vec();
    let mut new_layers = Vec::new();
    for layer in &layers {
        let digest = layer["digest"].as_str().unwrap();
        let blob = super::layout::blob(layout, digest);
        let mut desc = put(&blob);
        desc["mediaType"] = layer["mediaType"].clone();
        new_layers.push(desc);
    }
    let mut trimmed_config = config.clone();
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap()[skip..].to_vec();
    trimmed_config["rootfs"]["diff_ids"] = diff_ids.into();
    trimmed_config["history"] = serde_json::Value::Null;
    let mut config_desc = put(&serde_json::to_vec(&trimmed_config).unwrap());
    config_desc["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
    manifest["config"] = config_desc;
    manifest["layers"] = new_layers.into();
    manifest["mediaType"] = "application/vnd.oci.image.manifest.v1+json".into();
    let mut manifest_desc = put(&serde_json::to_vec(&manifest).unwrap());
    manifest_desc["mediaType"] = "application/vnd.oci.image.manifest.v1+json".into();
    manifest_desc["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": tag});
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [manifest_desc]});
    std::fs::write(trimmed.join("index.json"), index.to_string()).unwrap();

    let all_gzip = layers
        .iter()
        .all(|l| l["mediaType"].as_str().is_some_and(|t| t.ends_with("gzip")));
    let source = if all_gzip {
        trimmed
    } else {
        let gzipped = bundle.with_extension("gzipped");
        tool(
            "skopeo",
            &[
                "copy",
                "--dest-compress",
                "--dest-compress-format",
                "gzip",
                &format!("oci:{}:{tag}", trimmed.display()),
                &format!("oci:{}:{tag}", gzipped.display()),
            ],
        )
        .ok();
        gzipped
    };
    let image = format!("{}:{tag}", source.display());
    tool(
        "umoci",
        &["unpack", "--image", &image, bundle.to_str().unwrap()],
    )
    .ok();
    Unpacked {
        rootfs: bundle.join("rootfs"),
        config,
    }
}

/// The differences between two trees (under `prefix`), one line each.
pub fn diff_trees(
    expected: &BTreeMap<String, Entry>,
    actual: &BTreeMap<String, Entry>,
    prefix: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    let keys: std::collections::BTreeSet<&String> = expected
        .keys()
        .chain(actual.keys())
        .filter(|k| k.starts_with(prefix))
        .collect();
    for key in keys {
        match (expected.get(key), actual.get(key)) {
            (Some(e), Some(a)) if e == a => {}
            (Some(e), Some(a)) => out.push(format!("{key}: expected {e}, got {a}")),
            (Some(e), None) => out.push(format!("{key}: missing (expected {e})")),
            (None, Some(a)) => out.push(format!("{key}: unexpected {a}")),
            (None, None) => {}
        }
    }
    out
}

/// The differences between two configs' views.
pub fn diff_configs(expected: &serde_json::Value, actual: &serde_json::Value) -> Vec<String> {
    let (e, a) = (config_view(expected), config_view(actual));
    e.iter()
        .filter(|(k, v)| a.get(*k) != Some(v))
        .map(|(k, v)| format!("config {k}: expected {v:?}, got {:?}", a.get(k)))
        .collect()
}

/// The first 40 differences, one per indented line.
pub fn first_lines(diffs: &[String]) -> String {
    diffs
        .iter()
        .take(40)
        .cloned()
        .collect::<Vec<_>>()
        .join("\n  ")
}
