//! The one error type of layer writing and extraction; every variant names the file or the
//! tar entry at fault.

use super::TarFault;
use std::io;
use std::path::PathBuf;

/// Why a layer could not be written or extracted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayerError {
    /// The diff root is missing or not a directory.
    #[error("diff root {path} is not a directory")]
    NotADirectory {
        /// The diff root given.
        path: PathBuf,
    },
    /// A file of the diff tree could not be listed, stat'ed, read or its xattrs fetched.
    #[error("reading {path}: {source}")]
    Read {
        /// The file being archived.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A file shrank while it was being archived, so its header's size is a lie.
    #[error("{path} changed while it was being archived (expected {expected} bytes)")]
    FileChanged {
        /// The file being archived.
        path: PathBuf,
        /// The size its header announced.
        expected: u64,
    },
    /// Writing or compressing the layer stream failed.
    #[error("writing the layer stream: {source}")]
    Write {
        /// The underlying error.
        source: io::Error,
    },
    /// Reading or decompressing the layer stream failed, or the tar is corrupt.
    #[error("reading the layer stream: {source}")]
    Input {
        /// The underlying error.
        source: io::Error,
    },
    /// The tar stream is malformed: a bad header or field, or a stream cut short.
    #[error("{}", corrupt_message(entry, *offset, reason))]
    Corrupt {
        /// Where the entry's header starts in the uncompressed stream.
        offset: u64,
        /// The entry's name, when it was read before the fault.
        entry: String,
        /// What is wrong (boxed: every layer error stays small).
        reason: Box<TarFault>,
    },
    /// An entry's path is absolute, climbs out with `..`, or is otherwise unusable.
    #[error("tar entry {entry:?}: {reason}")]
    UnsafePath {
        /// The entry's name as stored in the tar.
        entry: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A parent component of an entry exists but is neither a directory nor a symlink to one.
    #[error("tar entry {entry:?}: {path} is not a directory")]
    ParentNotADirectory {
        /// The entry's name as stored in the tar.
        entry: String,
        /// The component in the destination.
        path: PathBuf,
    },
    /// A hardlink entry whose target is unsafe or not (yet) extracted.
    #[error("tar entry {entry:?}: bad hardlink target {target:?}: {reason}")]
    BadHardlink {
        /// The entry's name as stored in the tar.
        entry: String,
        /// The link target as stored in the tar.
        target: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An entry type kiln does not extract (multi-volume continuations, vendor types, …).
    #[error("tar entry {entry:?}: unsupported entry type {kind}")]
    Unsupported {
        /// The entry's name as stored in the tar.
        entry: String,
        /// The entry type, as the tar crate names it.
        kind: String,
    },
    /// Creating an entry or applying its metadata failed.
    #[error("tar entry {entry:?}: {path}: {source}")]
    Extract {
        /// The entry's name as stored in the tar.
        entry: String,
        /// The file in the destination.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A file to sniff for [`is_archive`](super::is_archive) could not be opened or read.
    #[error("reading {path}: {source}")]
    Sniff {
        /// The file being sniffed.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A blob did not decompress to the layer its diff id names.
    #[error("layer blob decompresses to {got}, not its diff id {expected}")]
    DiffIdMismatch {
        /// The diff id the image names (boxed: every layer error stays small).
        expected: Box<oci_spec::image::Digest>,
        /// What the blob holds.
        got: Box<oci_spec::image::Digest>,
    },
    /// The build was cancelled (Ctrl-C, SIGTERM) while the layer was being written.
    #[error("cancelled while writing the layer")]
    Cancelled,
    /// A computed sha256 did not form a valid digest (cannot happen with a sane `oci-spec`).
    #[error("building a sha256 digest: {source}")]
    Digest {
        /// The underlying error.
        source: oci_spec::OciSpecError,
    },
}

fn corrupt_message(entry: &str, offset: u64, reason: &TarFault) -> String {
    if entry.is_empty() {
        format!("tar header at byte {offset}: {reason}")
    } else {
        format!("tar entry {entry:?} (header at byte {offset}): {reason}")
    }
}
