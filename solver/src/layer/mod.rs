//! Layer diffs: a directory in overlay-diff form to a deterministic, streamed OCI layer tar, and
//! a layer tar back to a directory through kiln's own, symlink-safe extraction loop.
//!
//! Reading goes through kiln's own tar reader ([`read`]), which takes every dialect the
//! tools people use write, and one applier ([`apply`]) serves base layers, `ADD` archives and
//! cache imports.
//!
//! A diff directory follows overlayfs' conventions, so that a RUN's upperdir can be archived as
//! it is: a 0:0 character device is a deletion and becomes a `.wh.<name>` whiteout, and a
//! directory carrying the opaque xattr gains a `.wh..wh..opq` entry. Extraction does the reverse
//! (or deletes from what lower layers left, or keeps whiteouts as plain files for `ADD`).
//!
//! This module knows nothing of images, manifests or the content store: it reads and writes
//! streams and directories, and hands back digests. Neither a file nor a layer is ever held
//! whole in memory.

mod alongside;
mod apply;
mod compress;
mod decompress;
mod error;
mod hash;
mod header;
mod incompressible;
pub(crate) mod meta;
mod pargz;
mod read;
mod recompress;
mod source;
mod write;
pub(crate) mod xattr;

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;

pub(crate) use alongside::Alongside;
pub use decompress::{decompress_reader, is_archive, layer_media_type};
pub use error::LayerError;
pub(crate) use header::Kind as EntryKind;
pub use read::NumberError;
pub use read::fault::{PaxSyntax, SparseFault, TarFault};
pub use recompress::{compress_tar, recompress};
pub(crate) use source::{Special, entry_header, special, whiteout_header};
pub use write::write_layer;
pub(crate) use write::{Content, TarStream};

pub(crate) use apply::{ApplyOptions, Owners, ParentResolver, WhiteoutMode, apply, apply_with};

use oci_spec::image::Digest;

/// Media type of an uncompressed OCI layer.
pub const MEDIA_TYPE_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// Media type of a gzip-compressed OCI layer.
pub const MEDIA_TYPE_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Media type of a zstd-compressed OCI layer.
pub const MEDIA_TYPE_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Compression {
    /// gzip at the default level (flate2 on zlib-rs, blocks compressed in parallel); what
    /// every registry and runtime reads.
    #[default]
    Gzip,
    /// zstd at its default level; smaller and faster, but not every consumer reads it.
    Zstd,
    /// A plain tar.
    None,
}

impl Compression {
    /// The OCI media type of a layer compressed this way.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Gzip => MEDIA_TYPE_TAR_GZIP,
            Self::Zstd => MEDIA_TYPE_TAR_ZSTD,
            Self::None => MEDIA_TYPE_TAR,
        }
    }
}

/// How [`write_layer`] archives a diff directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerOptions {
    /// Compression of the written blob.
    pub compression: Compression,
    /// `SOURCE_DATE_EPOCH`: mtimes newer than this are clamped to it, as BuildKit's
    /// `rewrite-timestamp` does, so the same inputs give the same layer digest.
    pub source_date_epoch: Option<i64>,
}

/// What [`write_layer`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// sha256 of the uncompressed tar: the image config's `rootfs.diff_ids` entry and the
    /// cache key of the layer.
    pub diff_id: Digest,
    /// sha256 of the bytes written out: the blob's digest in the manifest.
    pub digest: Digest,
    /// Number of bytes written out.
    pub size: u64,
    /// OCI media type of the blob.
    pub media_type: String,
}

/// Extracts the layer tar read from `reader` (gzip, bzip2, xz, zstd or plain, told by its
/// magic bytes) into `dest`, which is created if missing. Nothing is ever written outside
/// `dest`; on error, `dest` may hold part of the layer.
pub fn extract_layer<R: std::io::Read>(
    reader: R,
    dest: &std::path::Path,
    opts: &ExtractOptions,
) -> Result<(), LayerError> {
    let opts = ApplyOptions {
        whiteouts: if opts.whiteouts {
            WhiteoutMode::Apply
        } else {
            WhiteoutMode::Keep
        },
        owners: if opts.same_owner {
            Owners::Archive
        } else {
            Owners::Caller
        },
    };
    apply(reader, dest, &opts).map(|_| ())
}

/// How [`extract_layer`] unpacks a tar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractOptions {
    /// Apply whiteouts (`.wh.<name>` deletes, `.wh..wh..opq` empties a directory of what lower
    /// layers left); true for image layers, false for `ADD` of a local archive, where such
    /// names are ordinary files.
    pub whiteouts: bool,
    /// Keep the archive's uid/gid; false leaves everything owned by the current user.
    pub same_owner: bool,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        Self {
            whiteouts: true,
            same_owner: true,
        }
    }
}
