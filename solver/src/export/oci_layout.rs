//! Export to an OCI image layout directory: `oci-layout`, `index.json`, `blobs/sha256/…`.
//!
//! Blobs are hardlinked from the content store when it is on the same filesystem (exports
//! cost no space and no time), copied otherwise. `index.json` is written last, so a reader
//! never finds it naming a blob that is not there yet. An existing layout is extended: the
//! new manifest replaces any entry with the same ref name, other entries stay.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, Digest, ImageIndex, MediaType};
use serde::Deserialize;

use super::atomic::{AtomicFile, sync_parent, temp_beside, write_atomic};
use super::error::ExportError;
use super::image::StoredTop;
use super::json::canonical_json;
use super::{INDEX_FILE, LAYOUT_VERSION, OCI_LAYOUT_FILE, REF_NAME_ANNOTATION};
use crate::store::ContentStore;

/// How an image is entered in an `index.json`: its ref name and the descriptor's other
/// annotations (`annotation-manifest-descriptor.*`).
#[derive(Debug, Clone, Copy)]
pub struct IndexEntry<'a> {
    /// `org.opencontainers.image.ref.name`.
    pub ref_name: Option<&'a str>,
    /// More annotations on the descriptor.
    pub annotations: &'a BTreeMap<String, String>,
}

static NO_ANNOTATIONS: BTreeMap<String, String> = BTreeMap::new();

impl<'a> From<Option<&'a str>> for IndexEntry<'a> {
    fn from(ref_name: Option<&'a str>) -> Self {
        Self {
            ref_name,
            annotations: &NO_ANNOTATIONS,
        }
    }
}

/// Writes the image (or multi-platform index) `manifest_digest` into the layout at `dest_dir` (created if missing),
/// entered in `index.json` as `entry` says; returns the descriptor added to the index.
/// Exports into one layout are serialised by a lock on the directory, so concurrent builds
/// each keep their entry.
pub fn export_oci_layout<'a>(
    store: &ContentStore,
    manifest_digest: &Digest,
    dest_dir: &Path,
    entry: impl Into<IndexEntry<'a>>,
) -> Result<Descriptor, ExportError> {
    let entry = entry.into();
    let ref_name = entry.ref_name;
    if let Some(name) = ref_name {
        check_ref_name(name)?;
    }
    let image = StoredTop::load(store, manifest_digest)?;
    fs::create_dir_all(dest_dir).map_err(|e| ExportError::io(dest_dir, e))?;
    let _lock = lock_dir(dest_dir)?;
    prepare_layout_dir(dest_dir)?;

    for (digest, size) in image.blobs() {
        if crate::cancel::is_cancelled() {
            return Err(ExportError::Cancelled);
        }
        place_blob(store, &digest, size, dest_dir)?;
    }
    place_blob(store, &image.digest, image.bytes.len() as u64, dest_dir)?;

    let index_path = dest_dir.join(INDEX_FILE);
    let existing = read_index(&index_path)?;
    let descriptor = manifest_descriptor(&image, entry);
    let index = merge_index(existing, descriptor.clone(), ref_name);
    let bytes = index_bytes(&index, &index_path)?;
    write_atomic(&index_path, &bytes)?;
    Ok(descriptor)
}

/// An exclusive `flock` on the layout directory, held while its index is read and replaced.
fn lock_dir(dir: &Path) -> Result<fs::File, ExportError> {
    let file = fs::File::open(dir).map_err(|e| ExportError::io(dir, e))?;
    rustix::fs::flock(file.as_fd(), rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| ExportError::io(dir, e.into()))?;
    Ok(file)
}

/// The descriptor for `image` in an index, carrying `entry`'s ref name and annotations.
pub(crate) fn manifest_descriptor(image: &StoredTop, entry: IndexEntry<'_>) -> Descriptor {
    let mut descriptor = image.descriptor();
    let mut annotations: HashMap<String, String> = entry
        .annotations
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(name) = entry.ref_name {
        annotations.insert(REF_NAME_ANNOTATION.to_owned(), name.to_owned());
    }
    if !annotations.is_empty() {
        descriptor.set_annotations(Some(annotations));
    }
    descriptor
}

/// Adds `descriptor` to `existing` (or a new index), dropping entries it supersedes: those
/// with the same ref name, or, when unnamed, unnamed entries for the same digest.
pub(crate) fn merge_index(
    existing: Option<ImageIndex>,
    descriptor: Descriptor,
    ref_name: Option<&str>,
) -> ImageIndex {
    let mut index = existing.unwrap_or_else(|| {
        let mut index = ImageIndex::default();
        index.set_media_type(Some(MediaType::ImageIndex));
        index
    });
    let mut manifests = index.manifests().clone();
    manifests.retain(|old| {
        let old_name = ref_name_of(old);
        match ref_name {
            Some(name) => old_name != Some(name),
            None => old_name.is_some() || old.digest() != descriptor.digest(),
        }
    });
    manifests.push(descriptor);
    index.set_manifests(manifests);
    index
}

/// Serializes an index canonically.
pub(crate) fn index_bytes(index: &ImageIndex, path: &Path) -> Result<Vec<u8>, ExportError> {
    canonical_json(index).map_err(|source| ExportError::BadIndex {
        path: path.to_path_buf(),
        source,
    })
}

/// The `oci-layout` file's bytes.
pub(crate) fn oci_layout_bytes() -> Vec<u8> {
    format!(r#"{{"imageLayoutVersion":"{LAYOUT_VERSION}"}}"#).into_bytes()
}

/// Checks a ref name against the OCI grammar: `component ("/" component)*` where
/// `component := alphanum (separator alphanum)*`, `separator := [-._:@+] | "--"`.
pub(crate) fn check_ref_name(name: &str) -> Result<(), ExportError> {
    let component_ok = |component: &str| {
        let mut prev_alnum = false;
        let mut run = String::new();
        for c in component.chars() {
            if c.is_ascii_alphanumeric() {
                if !prev_alnum
                    && !matches!(run.as_str(), "" | "-" | "." | "_" | ":" | "@" | "+" | "--")
                {
                    return false;
                }
                run.clear();
                prev_alnum = true;
            } else {
                if prev_alnum {
                    run.clear();
                } else if run.is_empty() {
                    // A component cannot start with a separator.
                    return false;
                }
                run.push(c);
                prev_alnum = false;
            }
        }
        prev_alnum
    };
    if name.split('/').all(component_ok) {
        Ok(())
    } else {
        Err(ExportError::InvalidRefName {
            name: name.to_owned(),
        })
    }
}

fn ref_name_of(descriptor: &Descriptor) -> Option<&str> {
    descriptor
        .annotations()
        .as_ref()
        .and_then(|a| a.get(REF_NAME_ANNOTATION))
        .map(String::as_str)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayoutMarker {
    image_layout_version: String,
}

/// Checks `dest` (made by the caller) is a layout kiln may add to, marking an empty one; an
/// unrelated non-empty directory is refused rather than littered with blobs.
fn prepare_layout_dir(dest: &Path) -> Result<(), ExportError> {
    let marker_path = dest.join(OCI_LAYOUT_FILE);
    match fs::read(&marker_path) {
        Ok(bytes) => {
            let marker: LayoutMarker =
                serde_json::from_slice(&bytes).map_err(|e| ExportError::NotALayout {
                    path: dest.to_path_buf(),
                    reason: format!("{OCI_LAYOUT_FILE}: {e}"),
                })?;
            if marker.image_layout_version != LAYOUT_VERSION {
                return Err(ExportError::NotALayout {
                    path: dest.to_path_buf(),
                    reason: format!(
                        "layout version {}, kiln writes {LAYOUT_VERSION}",
                        marker.image_layout_version
                    ),
                });
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut entries = fs::read_dir(dest).map_err(|e| ExportError::io(dest, e))?;
            if entries.next().is_some() {
                return Err(ExportError::NotALayout {
                    path: dest.to_path_buf(),
                    reason: format!("the directory is not empty and has no {OCI_LAYOUT_FILE}"),
                });
            }
            write_atomic(&marker_path, &oci_layout_bytes())?;
        }
        Err(e) => return Err(ExportError::io(&marker_path, e)),
    }
    Ok(())
}

fn read_index(path: &Path) -> Result<Option<ImageIndex>, ExportError> {
    match fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| ExportError::BadIndex {
                    path: path.to_path_buf(),
                    source,
                })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ExportError::io(path, e)),
    }
}

/// Puts the store blob `digest` at `<dest>/blobs/<alg>/<hex>`: a hardlink if possible, else a
/// copy, either way through a temp name.
pub(crate) fn place_blob(
    store: &ContentStore,
    digest: &Digest,
    size: u64,
    dest: &Path,
) -> Result<(), ExportError> {
    let dir: PathBuf = dest.join("blobs").join(digest.algorithm().as_ref());
    fs::create_dir_all(&dir).map_err(|e| ExportError::io(&dir, e))?;
    let target = dir.join(digest.digest());
    // Content-addressed: a blob of the right size under this name is this blob.
    if fs::metadata(&target).is_ok_and(|m| m.len() == size) {
        return Ok(());
    }
    let source = store.blob_path(digest);
    let temp = temp_beside(&target)?;
    match fs::hard_link(&source, &temp) {
        Ok(()) => {
            let renamed = fs::rename(&temp, &target);
            // rename() between two links to one inode does nothing and keeps both names.
            let _ = fs::remove_file(&temp);
            renamed.map_err(|e| ExportError::io(&target, e))?;
            sync_parent(&target)
        }
        // Another filesystem, or hardlinks not allowed (protected_hardlinks): copy instead.
        Err(_) => copy_blob(store, digest, &target),
    }
}

fn copy_blob(store: &ContentStore, digest: &Digest, target: &Path) -> Result<(), ExportError> {
    let mut source = store.open_blob(digest)?;
    let mut out = AtomicFile::create(target)?;
    io::copy(&mut source, &mut out).map_err(|e| ExportError::io(out.dest(), e))?;
    out.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::test_image::build;
    use crate::image::layout::read_oci_layout;
    use crate::store::test_dir::TestDir;
    use kiln_llb::Platform;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn concurrent_exports_keep_every_entry() {
        let dir = TestDir::new("oci-layout-concurrent");
        let store = ContentStore::open(&dir.path().join("store")).unwrap();
        let images: Vec<_> = (0..8)
            .map(|i| {
                let data = format!("image {i}");
                build(&store, &[&[("f", data.as_bytes())]], None)
            })
            .collect();
        let dest = dir.path().join("layout");
        for round in 0..4 {
            let dest = dest.join(round.to_string());
            let start = std::sync::Barrier::new(images.len());
            std::thread::scope(|scope| {
                for (i, image) in images.iter().enumerate() {
                    let (store, dest, start) = (&store, &dest, &start);
                    scope.spawn(move || {
                        start.wait();
                        let name = format!("t{i}");
                        export_oci_layout(store, &image.manifest, dest, Some(name.as_str()))
                            .unwrap();
                    });
                }
            });
            let mut names: Vec<String> = index_of(&dest)
                .manifests()
                .iter()
                .filter_map(|d| ref_name_of(d).map(str::to_owned))
                .collect();
            names.sort();
            assert_eq!(names.len(), images.len(), "round {round}: {names:?}");
        }
    }

    fn index_of(dest: &Path) -> ImageIndex {
        serde_json::from_slice(&fs::read(dest.join(INDEX_FILE)).unwrap()).unwrap()
    }

    #[test]
    fn ref_names() {
        for ok in [
            "latest",
            "1.0",
            "v1.2.3-rc.1",
            "a--b",
            "a_b:c@d+e",
            "docker.io/library/busybox:latest",
            "A/B",
        ] {
            assert!(check_ref_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "-a", "a-", "a/", "/a", "a//b", "a---b", "a..b", "a b", "a-.b", "é",
        ] {
            assert!(check_ref_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn export_then_read_round_trip() {
        let dir = TestDir::new("oci-layout-roundtrip");
        let store = ContentStore::open(&dir.path().join("store")).unwrap();
        let image = build(
            &store,
            &[&[("etc/hello", b"hi\n")], &[("bin/tool", b"\x7fELF")]],
            None,
        );
        let dest = dir.path().join("layout");
        let descriptor = export_oci_layout(&store, &image.manifest, &dest, Some("1.0")).unwrap();
        assert_eq!(*descriptor.digest(), image.manifest);
        assert_eq!(
            fs::read_to_string(dest.join("oci-layout")).unwrap(),
            r#"{"imageLayoutVersion":"1.0.0"}"#
        );
        let index = index_of(&dest);
        assert_eq!(index.schema_version(), 2);
        assert_eq!(index.manifests().len(), 1);
        let entry = &index.manifests()[0];
        assert_eq!(ref_name_of(entry), Some("1.0"));
        assert_eq!(*entry.media_type(), MediaType::ImageManifest);
        let platform = entry.platform().as_ref().unwrap();
        assert_eq!(
            platform.architecture().to_string(),
            oci_spec::image::Arch::default().to_string()
        );

        // Blobs are hardlinks of the store's (same filesystem here).
        for layer in &image.layers {
            let exported =
                fs::metadata(dest.join("blobs/sha256").join(layer.blob.digest())).unwrap();
            let stored = fs::metadata(store.blob_path(&layer.blob)).unwrap();
            assert_eq!(
                (exported.dev(), exported.ino()),
                (stored.dev(), stored.ino())
            );
        }
        // No temp files left behind.
        for entry in walkdir::WalkDir::new(&dest) {
            let entry = entry.unwrap();
            assert!(
                !entry.file_name().to_string_lossy().starts_with('.'),
                "{:?}",
                entry.path()
            );
        }

        for selector in [
            Some("1.0"),
            None,
            Some(image.manifest.as_ref()),
            Some(&format!("@{}", image.manifest)),
        ] {
            let read = read_oci_layout(&dest, selector, &Platform::host()).unwrap();
            assert_eq!(read.manifest_digest, image.manifest, "{selector:?}");
            assert_eq!(read.config_digest, image.config);
            assert_eq!(read.config, store.read_blob(&image.config).unwrap());
            assert_eq!(
                read.manifest_bytes,
                store.read_blob(&image.manifest).unwrap()
            );
            let layers: Vec<_> = read.layers.iter().map(|(d, _)| d.clone()).collect();
            let expected: Vec<_> = image.layers.iter().map(|l| l.blob.clone()).collect();
            assert_eq!(layers, expected);
        }
    }

    #[test]
    fn existing_layout_is_extended() {
        let dir = TestDir::new("oci-layout-extend");
        let store = ContentStore::open(&dir.path().join("store")).unwrap();
        let one = build(&store, &[&[("a", b"1")]], None);
        let two = build(&store, &[&[("a", b"2")]], None);
        let dest = dir.path().join("layout");
        export_oci_layout(&store, &one.manifest, &dest, Some("1.0")).unwrap();
        export_oci_layout(&store, &two.manifest, &dest, Some("2.0")).unwrap();
        assert_eq!(index_of(&dest).manifests().len(), 2);
        assert_eq!(
            read_oci_layout(&dest, Some("1.0"), &Platform::host())
                .unwrap()
                .manifest_digest,
            one.manifest
        );
        assert_eq!(
            read_oci_layout(&dest, Some("2.0"), &Platform::host())
                .unwrap()
                .manifest_digest,
            two.manifest
        );
        // Same ref name: replaced, not added.
        export_oci_layout(&store, &two.manifest, &dest, Some("1.0")).unwrap();
        let index = index_of(&dest);
        assert_eq!(index.manifests().len(), 2);
        assert!(
            index
                .manifests()
                .iter()
                .all(|d| *d.digest() == two.manifest)
        );
        assert_eq!(
            read_oci_layout(&dest, Some("1.0"), &Platform::host())
                .unwrap()
                .manifest_digest,
            two.manifest
        );
        // Unnamed twice: one entry.
        export_oci_layout(&store, &one.manifest, &dest, None).unwrap();
        export_oci_layout(&store, &one.manifest, &dest, None).unwrap();
        assert_eq!(index_of(&dest).manifests().len(), 3);
    }

    #[test]
    fn refuses_foreign_directory_and_bad_input() {
        let dir = TestDir::new("oci-layout-refuse");
        let store = ContentStore::open(&dir.path().join("store")).unwrap();
        let image = build(&store, &[&[("a", b"1")]], None);

        let foreign = dir.path().join("foreign");
        fs::create_dir_all(&foreign).unwrap();
        fs::write(foreign.join("notes.txt"), b"mine").unwrap();
        let err = export_oci_layout(&store, &image.manifest, &foreign, None).unwrap_err();
        assert!(matches!(err, ExportError::NotALayout { .. }), "{err}");
        assert_eq!(fs::read_dir(&foreign).unwrap().count(), 1);

        let dest = dir.path().join("layout");
        assert!(matches!(
            export_oci_layout(&store, &image.manifest, &dest, Some("bad name")),
            Err(ExportError::InvalidRefName { .. })
        ));

        // A missing layer fails before anything is written.
        store.remove(&image.layers[0].blob).unwrap();
        let err = export_oci_layout(&store, &image.manifest, &dest, None).unwrap_err();
        assert!(
            err.to_string().contains(image.layers[0].blob.digest()),
            "{err}"
        );
        assert!(!dest.exists());

        let unknown = crate::store::sha256_digest(b"nothing").unwrap();
        let err = export_oci_layout(&store, &unknown, &dest, None).unwrap_err();
        assert!(err.to_string().contains(unknown.digest()), "{err}");
    }

    #[test]
    fn corrupt_index_at_destination_is_reported() {
        let dir = TestDir::new("oci-layout-badindex");
        let store = ContentStore::open(&dir.path().join("store")).unwrap();
        let image = build(&store, &[&[("a", b"1")]], None);
        let dest = dir.path().join("layout");
        export_oci_layout(&store, &image.manifest, &dest, None).unwrap();
        fs::write(dest.join(INDEX_FILE), b"{not json").unwrap();
        let err = export_oci_layout(&store, &image.manifest, &dest, None).unwrap_err();
        assert!(matches!(err, ExportError::BadIndex { .. }));
        assert!(err.to_string().contains("index.json"));
    }
}
