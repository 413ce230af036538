//! Copying an image's blobs from an OCI layout into the content store, verifying each one.
//!
//! Blobs are copied, not hardlinked: the layout belongs to someone else and may change
//! later. Layers go first and the manifest last, so the store never holds a manifest whose
//! layers are missing; a blob that fails verification is never stored under its digest.

use std::io::{self, Write};
use std::path::Path;

use oci_spec::image::Digest;

use super::dir::{LayoutDir, check_size};
use super::error::LayoutError;
use super::read::OciLayoutImage;
use crate::store::{ContentError, ContentStore};

/// Ingests the layers, config and manifest of `image` (read from the layout at `path`) into
/// `store`, skipping blobs already there.
pub fn import_oci_layout_blobs(
    store: &ContentStore,
    path: &Path,
    image: &OciLayoutImage,
) -> Result<(), LayoutError> {
    let layout = LayoutDir::new(path);
    for (digest, size) in &image.layers {
        if store.size(digest).ok() == Some(*size) {
            continue;
        }
        let (mut source, len, blob_path) = layout.open_blob(digest)?;
        check_size(digest, *size, len, &blob_path)?;
        let mut ingest = store
            .ingest()
            .map_err(|e| store_error(&layout, digest, e))?;
        io::copy(&mut source, &mut ingest).map_err(|e| LayoutError::io(&blob_path, e))?;
        // The file may have changed since its length was taken; dropping the ingest on this
        // path discards the partial copy.
        check_size(digest, *size, ingest.size(), &blob_path)?;
        ingest.commit(Some(digest)).map_err(|e| match e {
            ContentError::DigestMismatch { expected, actual } => LayoutError::DigestMismatch {
                path: blob_path.clone(),
                expected,
                actual,
            },
            other => store_error(&layout, digest, other),
        })?;
    }
    put_verified(store, &layout, &image.config, &image.config_digest)?;
    put_verified(
        store,
        &layout,
        &image.manifest_bytes,
        &image.manifest_digest,
    )
}

/// Stores bytes that must hash to `digest`.
fn put_verified(
    store: &ContentStore,
    layout: &LayoutDir,
    bytes: &[u8],
    digest: &Digest,
) -> Result<(), LayoutError> {
    let mut ingest = store.ingest().map_err(|e| store_error(layout, digest, e))?;
    ingest
        .write_all(bytes)
        .map_err(|e| LayoutError::io(ingest.temp_path(), e))?;
    ingest
        .commit(Some(digest))
        .map_err(|e| store_error(layout, digest, e))?;
    Ok(())
}

fn store_error(layout: &LayoutDir, digest: &Digest, source: ContentError) -> LayoutError {
    LayoutError::Store {
        layout: layout.root().to_path_buf(),
        digest: digest.clone(),
        source: Box::new(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::export_oci_layout;
    use crate::export::test_image::build;
    use crate::image::layout::read_oci_layout;
    use crate::store::test_dir::TestDir;
    use kiln_llb::Platform;
    use std::fs;

    #[test]
    fn import_round_trip_into_fresh_store() {
        let dir = TestDir::new("import-roundtrip");
        let source = ContentStore::open(&dir.path().join("source")).unwrap();
        let image = build(&source, &[&[("a", b"1")], &[("b", b"2")]], None);
        let layout = dir.path().join("layout");
        export_oci_layout(&source, &image.manifest, &layout, Some("v1")).unwrap();

        let target = ContentStore::open(&dir.path().join("target")).unwrap();
        let read = read_oci_layout(&layout, Some("v1"), &Platform::host()).unwrap();
        import_oci_layout_blobs(&target, &layout, &read).unwrap();
        let mut expected = vec![image.manifest.clone(), image.config.clone()];
        expected.extend(image.layers.iter().map(|l| l.blob.clone()));
        for digest in &expected {
            assert_eq!(
                target.read_blob(digest).unwrap(),
                source.read_blob(digest).unwrap()
            );
        }
        // Importing again is a no-op.
        import_oci_layout_blobs(&target, &layout, &read).unwrap();
        let mut listed = target.list().unwrap();
        listed.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
        expected.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
        assert_eq!(listed, expected);
    }

    #[test]
    fn tampered_layer_is_not_stored() {
        let dir = TestDir::new("import-tampered");
        let source = ContentStore::open(&dir.path().join("source")).unwrap();
        let image = build(&source, &[&[("a", b"1")]], None);
        let layout = dir.path().join("layout");
        export_oci_layout(&source, &image.manifest, &layout, None).unwrap();
        let read = read_oci_layout(&layout, None, &Platform::host()).unwrap();

        // Same size, different bytes: only the digest check can tell.
        let layer = &image.layers[0].blob;
        let path = layout.join("blobs/sha256").join(layer.digest());
        let mut bytes = fs::read(&path).unwrap();
        fs::remove_file(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&path, &bytes).unwrap();

        let target_root = dir.path().join("target");
        let target = ContentStore::open(&target_root).unwrap();
        let err = import_oci_layout_blobs(&target, &layout, &read).unwrap_err();
        let LayoutError::DigestMismatch {
            path: at, expected, ..
        } = &err
        else {
            panic!("unexpected {err}");
        };
        assert_eq!(*at, path);
        assert_eq!(expected, layer);
        assert!(err.to_string().contains(layer.digest()));
        assert!(target.list().unwrap().is_empty(), "nothing stored");
        assert_eq!(fs::read_dir(target_root.join("ingest")).unwrap().count(), 0);
    }
}
