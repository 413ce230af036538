//! Export to an OCI image layout packed as a tar archive (what `skopeo`'s `oci-archive:`,
//! `podman load` and BuildKit's `type=oci` produce).

use std::io::Write;
use std::path::Path;

use oci_spec::image::{Descriptor, Digest};

use super::atomic::AtomicFile;
use super::error::ExportError;
use super::image::StoredTop;
use super::oci_layout::{
    IndexEntry, check_ref_name, index_bytes, manifest_descriptor, merge_index, oci_layout_bytes,
};
use super::tar_entries::TarOut;
use super::{INDEX_FILE, OCI_LAYOUT_FILE};
use crate::store::ContentStore;

/// Writes the image (or multi-platform index) `manifest_digest` as an OCI layout tar at `dest_file` (replacing it
/// atomically); returns the descriptor in its `index.json`.
pub fn export_oci_tar<'a>(
    store: &ContentStore,
    manifest_digest: &Digest,
    dest_file: &Path,
    entry: impl Into<IndexEntry<'a>>,
) -> Result<Descriptor, ExportError> {
    let file = AtomicFile::create(dest_file)?;
    let (file, descriptor) = write_oci_tar(store, manifest_digest, entry, file, dest_file)?;
    file.commit()?;
    Ok(descriptor)
}

/// Streams the image `manifest_digest` as an OCI layout tar into `out` (`dest` names it in
/// errors); returns the writer and the descriptor in the archive's `index.json`.
pub fn write_oci_tar<'a, W: Write>(
    store: &ContentStore,
    manifest_digest: &Digest,
    entry: impl Into<IndexEntry<'a>>,
    out: W,
    dest: &Path,
) -> Result<(W, Descriptor), ExportError> {
    let entry = entry.into();
    if let Some(name) = entry.ref_name {
        check_ref_name(name)?;
    }
    let image = StoredTop::load(store, manifest_digest)?;
    let descriptor = manifest_descriptor(&image, entry);
    let index = merge_index(None, descriptor.clone(), entry.ref_name);
    let index_json = index_bytes(&index, dest)?;

    let mut tar = TarOut::new(out);
    let io_err = |e| ExportError::io(dest, e);
    // Layout marker and index first, so a streaming reader knows what follows.
    tar.bytes(OCI_LAYOUT_FILE, &oci_layout_bytes())
        .map_err(io_err)?;
    tar.bytes(INDEX_FILE, &index_json).map_err(io_err)?;
    for (digest, _) in image.blobs() {
        if crate::cancel::is_cancelled() {
            return Err(ExportError::Cancelled);
        }
        let file = store.open_blob(&digest)?;
        // The size comes from the open file, so the header cannot disagree with the stream.
        let size = file.metadata().map_err(io_err)?.len();
        tar.stream(&blob_path(&digest), size, file)
            .map_err(io_err)?;
    }
    tar.bytes(&blob_path(&image.digest), &image.bytes)
        .map_err(io_err)?;
    Ok((tar.finish().map_err(io_err)?, descriptor))
}

/// `blobs/<alg>/<hex>` inside an archive.
pub(crate) fn blob_path(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm(), digest.digest())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::test_image::build;
    use crate::image::layout::read_oci_layout;
    use crate::store::test_dir::TestDir;
    use kiln_llb::Platform;
    use std::collections::BTreeMap;
    use std::fs;
    use std::io::Read;

    #[test]
    fn tar_holds_a_readable_layout() {
        let dir = TestDir::new("oci-tar");
        let store = ContentStore::open(&dir.path().join("store")).unwrap();
        let image = build(&store, &[&[("a", b"1")], &[("b", b"2")]], None);
        let dest = dir.path().join("image.tar");
        export_oci_tar(&store, &image.manifest, &dest, Some("latest")).unwrap();
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            2,
            "temp left behind"
        );

        let mut entries = BTreeMap::new();
        let mut archive = tar::Archive::new(fs::File::open(&dest).unwrap());
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            assert_eq!(entry.header().mtime().unwrap(), 0);
            entries.insert(path, data);
        }
        assert_eq!(entries["oci-layout"], br#"{"imageLayoutVersion":"1.0.0"}"#);
        assert!(entries.contains_key("blobs/"));
        assert!(entries.contains_key("blobs/sha256/"));
        for digest in [
            &image.manifest,
            &image.config,
            &image.layers[0].blob,
            &image.layers[1].blob,
        ] {
            let data = &entries[&format!("blobs/sha256/{}", digest.digest())];
            assert_eq!(*data, store.read_blob(digest).unwrap());
        }
        assert_eq!(entries.len(), 2 + 2 + 4);

        // Unpacked, it reads back as the same image.
        let unpacked = dir.path().join("unpacked");
        tar::Archive::new(fs::File::open(&dest).unwrap())
            .unpack(&unpacked)
            .unwrap();
        let read = read_oci_layout(&unpacked, Some("latest"), &Platform::host()).unwrap();
        assert_eq!(read.manifest_digest, image.manifest);
        assert_eq!(read.config_digest, image.config);

        // Deterministic: the same export twice gives the same bytes.
        let again = dir.path().join("again.tar");
        export_oci_tar(&store, &image.manifest, &again, Some("latest")).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), fs::read(&again).unwrap());
    }

    #[test]
    fn failed_export_leaves_no_file() {
        let dir = TestDir::new("oci-tar-fail");
        let store = ContentStore::open(&dir.path().join("store")).unwrap();
        let image = build(&store, &[&[("a", b"1")]], None);
        store.remove(&image.layers[0].blob).unwrap();
        let dest = dir.path().join("image.tar");
        assert!(export_oci_tar(&store, &image.manifest, &dest, None).is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
