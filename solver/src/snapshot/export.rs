//! Exports of a chain's merged tree: as a directory (`-o type=local`) or as one tar
//! (`-o type=tar`). Both are built under a temporary name beside the destination and renamed
//! into place, so a destination never holds half an export.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use oci_spec::image::Digest;

use super::error::io_error;
use super::merge::{Merger, Placement};
use super::temp::{Temp, already_there, sync_filesystem};
use super::{OpenBlob, SnapshotError, Snapshots};
use crate::layer::{Compression, LayerOptions, write_layer};

impl Snapshots {
    /// Copies the merged tree of `chain` to `dest_dir`, which must not exist or be an empty
    /// directory. Files are copied, not linked (the user may edit them), hardlinks within the
    /// tree kept.
    pub fn export_local(
        &self,
        chain: &[Digest],
        open_blob: OpenBlob<'_>,
        dest_dir: &Path,
    ) -> Result<(), SnapshotError> {
        let occupied = match std::fs::symlink_metadata(dest_dir) {
            Ok(meta) if meta.is_dir() => std::fs::read_dir(dest_dir)
                .map_err(io_error(dest_dir))?
                .next()
                .is_some(),
            Ok(_) => true,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => false,
            Err(error) => return Err(io_error(dest_dir)(error)),
        };
        if occupied {
            return Err(SnapshotError::DestinationNotEmpty {
                path: dest_dir.to_path_buf(),
            });
        }
        let rootfs = self.rootfs(chain, open_blob)?;
        let (parent, label) = beside(dest_dir);
        std::fs::create_dir_all(parent).map_err(io_error(parent))?;
        let temp = Temp::dir_beside(parent, &label)?;
        let mut merger = Merger::new(temp.path(), Placement::Copy);
        merger.apply(&rootfs)?;
        merger.finish()?;
        sync_filesystem(temp.path())?;
        temp.rename_into(dest_dir).map_err(|error| {
            if already_there(&error) {
                SnapshotError::DestinationNotEmpty {
                    path: dest_dir.to_path_buf(),
                }
            } else {
                io_error(dest_dir)(error)
            }
        })
    }

    /// Writes the merged tree of `chain` to `dest_file` as one uncompressed tar, in the same
    /// deterministic form as a layer; an existing file is replaced.
    pub fn export_tar(
        &self,
        chain: &[Digest],
        open_blob: OpenBlob<'_>,
        dest_file: &Path,
    ) -> Result<(), SnapshotError> {
        tar_file(dest_file, |file| {
            self.write_tar(chain, open_blob, file, dest_file)
        })
    }

    /// Streams the merged tree of `chain` into `out` as one uncompressed tar (`dest` names
    /// it in errors); returns the writer.
    pub fn write_tar<W: Write>(
        &self,
        chain: &[Digest],
        open_blob: OpenBlob<'_>,
        mut out: W,
        dest: &Path,
    ) -> Result<W, SnapshotError> {
        let rootfs = self.rootfs(chain, open_blob)?;
        let opts = LayerOptions {
            compression: Compression::None,
            source_date_epoch: None,
        };
        write_layer(&rootfs, &mut out, &opts).map_err(|source| SnapshotError::Archive {
            path: dest.to_path_buf(),
            source,
        })?;
        Ok(out)
    }
}

/// Several chains' merged trees, each under its own top directory (a multi-platform
/// build's `linux_amd64/`, `linux_arm64/`).
pub type NamedTrees<'a> = [(&'a str, &'a [Digest], OpenBlob<'a>)];

impl Snapshots {
    /// Writes `trees` as one tar at `dest_file` (replaced atomically), each tree under its
    /// name.
    pub fn export_tars(
        &self,
        trees: &NamedTrees<'_>,
        dest_file: &Path,
    ) -> Result<(), SnapshotError> {
        tar_file(dest_file, |file| self.write_tars(trees, file, dest_file))
    }

    /// Streams `trees` into `out` as one uncompressed tar, each tree under its name: the
    /// trees are copied side by side into a temporary directory first, which is archived.
    pub fn write_tars<W: Write>(
        &self,
        trees: &NamedTrees<'_>,
        mut out: W,
        dest: &Path,
    ) -> Result<W, SnapshotError> {
        let temp = Temp::dir(&self.dir.join(super::TMP), "platforms")?;
        for (name, chain, open_blob) in trees {
            self.export_local(chain, *open_blob, &temp.path().join(name))?;
        }
        let opts = LayerOptions {
            compression: Compression::None,
            source_date_epoch: None,
        };
        write_layer(temp.path(), &mut out, &opts).map_err(|source| SnapshotError::Archive {
            path: dest.to_path_buf(),
            source,
        })?;
        Ok(out)
    }
}

/// Writes `dest_file` through `write` under a temporary name beside it, synced, then renamed
/// into place (replacing what was there).
fn tar_file(
    dest_file: &Path,
    write: impl FnOnce(File) -> Result<File, SnapshotError>,
) -> Result<(), SnapshotError> {
    let (parent, label) = beside(dest_file);
    std::fs::create_dir_all(parent).map_err(io_error(parent))?;
    let temp = Temp::beside(parent, &label);
    let file = File::create_new(temp.path()).map_err(io_error(temp.path()))?;
    let file = write(file)?;
    file.sync_all().map_err(io_error(temp.path()))?;
    drop(file);
    temp.rename_into(dest_file).map_err(io_error(dest_file))
}

/// The directory a destination lives in, and a label for its temporary sibling.
fn beside(dest: &Path) -> (&Path, String) {
    let parent = match dest.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let name = dest
        .file_name()
        .map_or_else(|| "export".into(), |n| n.to_string_lossy().into_owned());
    (parent, name)
}
